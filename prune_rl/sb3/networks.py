"""Which Linear layers of an SB3 model form neuron groups, and the net_arch that rebuilds them at other widths.

Each policy class's networks are described once, by its adapter (:mod:`prune_rl.sb3.adapters`); these functions
take a whole model.
"""

from __future__ import annotations

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from prune_rl.core.groups import PrunableNet
from prune_rl.core.surgery import pad_keep
from prune_rl.sb3.adapters import policy_adapter


def prunable_nets(model: BaseAlgorithm) -> list[PrunableNet]:
    """
    Find the prunable networks of an SB3 model, with target networks linked as mirrors.

    :param model: A PPO, A2C, DQN, SAC, TD3 or TQC model with an MLP policy.
    :return: The networks, deployed network first.
    """
    return policy_adapter(model.policy).prunable_nets()


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
    return policy_adapter(model.policy).net_arch(widths)


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
    adapter = policy_adapter(model.policy)
    model.policy_kwargs = {**model.policy_kwargs, "net_arch": adapter.net_arch(widths)}
    adapter.set_net_arch_(widths)
