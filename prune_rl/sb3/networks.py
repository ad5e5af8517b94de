"""Which Linear layers of which SB3 policy form neuron groups, and the net_arch that rebuilds them at other widths.

Supported MLP policies (SB3 >= 2.0, where ``net_arch`` has no shared layers):

========  ===========================================  ===============================
algo      deployed network (role ``policy``)           value networks (role ``value``)
========  ===========================================  ===============================
PPO/A2C   ``mlp_extractor.policy_net`` + ``action_net``  ``mlp_extractor.value_net`` + ``value_net``
DQN       ``q_net.q_net`` (target: ``q_net_target``)     --
SAC, TQC  ``actor.latent_pi`` + ``mu``, ``log_std``      ``critic.qf*`` (targets: ``critic_target``)
TD3       ``actor.mu`` (target: ``actor_target``)        ``critic.qf*`` (targets: ``critic_target``)
========  ===========================================  ===============================
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

from prune_rl.core.groups import PrunableNet, link_mirrors, mlp_layers
from prune_rl.core.surgery import pad_keep


def _net(
    name: str, role: str, body: torch.nn.Module, heads: list[torch.nn.Module] | None = None, discrete: bool = False
) -> PrunableNet:
    layers, linears = mlp_layers(name, body, heads)
    return PrunableNet(name=name, role=role, layers=layers, linears=linears, discrete=discrete)


def _critics(policy: SACPolicy | TD3Policy | TQCPolicy) -> list[PrunableNet]:
    nets = []
    for i, (qf, qf_target) in enumerate(zip(policy.critic.q_networks, policy.critic_target.q_networks, strict=True)):
        online = _net(f"qf{i}", "value", qf)
        link_mirrors(online, _net(f"qf{i}_target", "value", qf_target))
        nets.append(online)
    return nets


def prunable_nets(model: BaseAlgorithm) -> list[PrunableNet]:
    """
    Find the prunable networks of an SB3 model, with target networks linked as mirrors.

    :param model: A PPO, A2C, DQN, SAC, TD3 or TQC model with an MLP policy.
    :return: The networks, deployed network first.
    """
    policy = model.policy
    if isinstance(policy, ActorCriticPolicy):
        extractor = policy.mlp_extractor
        return [
            _net("pi", "policy", extractor.policy_net, [policy.action_net], isinstance(policy.action_space, spaces.Discrete)),
            _net("vf", "value", extractor.value_net, [policy.value_net]),
        ]
    if isinstance(policy, DQNPolicy):
        q = _net("q", "policy", policy.q_net.q_net, discrete=True)
        link_mirrors(q, _net("q_target", "policy", policy.q_net_target.q_net, discrete=True))
        return [q]
    if isinstance(policy, SACPolicy | TQCPolicy):
        if policy.actor.use_sde:
            raise ValueError(f"neuron pruning does not support {type(model).__name__} with gSDE (use_sde=True)")
        actor = _net("actor", "policy", policy.actor.latent_pi, [policy.actor.mu, policy.actor.log_std])  # type: ignore[list-item]
        return [actor, *_critics(policy)]
    if isinstance(policy, TD3Policy):
        actor = _net("actor", "policy", policy.actor.mu)
        link_mirrors(actor, _net("actor_target", "policy", policy.actor_target.mu))
        return [actor, *_critics(policy)]
    raise ValueError(f"no neuron groups known for policy {type(policy).__name__}")


def activation(model: BaseAlgorithm) -> torch.nn.Module:
    """
    :param model: An SB3 model with an MLP policy.
    :return: Its hidden activation, e.g. ``nn.ReLU()`` (what a constant neuron outputs is ``act(bias)``).
    """
    policy = model.policy
    fn = getattr(policy, "activation_fn", None) or getattr(policy, "net_args", {}).get("activation_fn")
    if fn is None:
        raise ValueError(f"no activation known for policy {type(policy).__name__}")
    return fn()


def optimizers(model: BaseAlgorithm) -> list[torch.optim.Optimizer]:
    """
    :param model: An SB3 model.
    :return: Every optimizer of its policy (e.g. PPO's one, SAC's actor and critic optimizers).
    """
    found: dict[int, torch.optim.Optimizer] = {}
    for module in model.policy.modules():
        opt = getattr(module, "optimizer", None)
        if isinstance(opt, torch.optim.Optimizer):
            found[id(opt)] = opt
    return list(found.values())


def net_arch(model: BaseAlgorithm, widths: dict[str, list[int]]) -> list[int] | dict[str, list[int]]:
    """
    The ``policy_kwargs.net_arch`` that builds ``model``'s prunable networks with other hidden widths.

    :param model: A model of the algorithm (its policy tells how ``net_arch`` is read).
    :param widths: ``{net name: [width per hidden layer]}`` for the names :func:`prunable_nets` gives.
    :return: ``{pi, vf}`` (PPO, A2C), a list (DQN) or ``{pi, qf}`` (SAC, TD3, TQC; every critic takes ``qf0``'s).
    """
    policy = model.policy
    if isinstance(policy, ActorCriticPolicy):
        return {"pi": widths["pi"], "vf": widths["vf"]}
    if isinstance(policy, DQNPolicy):
        return widths["q"]
    if isinstance(policy, SACPolicy | TD3Policy | TQCPolicy):
        return {"pi": widths["actor"], "qf": widths["qf0"]}
    raise ValueError(f"no net_arch known for policy {type(policy).__name__}")


def uniform_critics(keeps: dict[str, list[torch.Tensor]]) -> dict[str, list[torch.Tensor]]:
    """
    Pad SAC's and TD3's critics to the widest of them, per layer, with removed neurons (SB3 builds them all from one
    ``qf`` list, so a narrower model loads only if they share their widths).

    :param keeps: ``{net name: [keep mask per hidden layer]}`` for the names :func:`prunable_nets` gives.
    :return: The same masks, the critics' (``qf0``, ``qf1``, ...) padded.
    """
    critics = [name for name in keeps if name.startswith("qf")]
    if not critics:
        return dict(keeps)
    widest = [max(int(keeps[name][i].sum()) for name in critics) for i in range(len(keeps[critics[0]]))]
    padded = {name: [pad_keep(keep, width) for keep, width in zip(keeps[name], widest, strict=True)] for name in critics}
    return {**keeps, **padded}


def set_net_arch(model: BaseAlgorithm, widths: dict[str, list[int]]) -> None:
    """
    Record the hidden widths of ``model``'s networks after they were shrunk in place, so that ``save`` -> ``load``
    rebuilds them at those widths.

    :param model: The model whose networks were shrunk.
    :param widths: ``{net name: [width per hidden layer]}`` for the names :func:`prunable_nets` gives.
    """
    arch = net_arch(model, widths)
    model.policy_kwargs = {**model.policy_kwargs, "net_arch": arch}
    model.policy.net_arch = arch  # type: ignore[assignment]  # what the policy's own save() records
    policy = model.policy
    if isinstance(policy, ActorCriticPolicy):
        policy.mlp_extractor.latent_dim_pi = widths["pi"][-1] if widths["pi"] else policy.features_dim
        policy.mlp_extractor.latent_dim_vf = widths["vf"][-1] if widths["vf"] else policy.features_dim
