"""One adapter per SB3 policy class: everything prune-rl needs to know about a policy's networks, in one place.

An adapter says which networks of its policy are prunable (their names, roles and layers), what they output on a
batch of observations (the probe), what the deployed network computes before SB3's action post-processing (export),
and how ``net_arch`` is written for other hidden widths (shrinking, widening). :func:`policy_adapter` looks the
adapter up by the policy's class, walking its MRO, so subclasses (SB3's ``MultiInputPolicy``) use their base's.

Supported MLP policies (SB3 >= 2.0, where ``net_arch`` has no shared layers):

=========  ==============================================  ===================================================
adapter    deployed network (role ``policy``)              value networks (role ``value``)
=========  ==============================================  ===================================================
PPO/A2C    ``mlp_extractor.policy_net`` + ``action_net``   ``mlp_extractor.value_net`` + ``value_net``
DQN        ``q_net.q_net`` (target: ``q_net_target``)      --
SAC, TQC   ``actor.latent_pi`` + ``mu``, ``log_std``       ``critic.qf*`` (targets: ``critic_target``)
TD3        ``actor.mu`` (target: ``actor_target``)         ``critic.qf*`` (targets: ``critic_target``)
=========  ==============================================  ===================================================

A new policy class is one adapter here and one entry in :data:`ADAPTERS`.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import torch
from gymnasium import spaces
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from prune_rl.core.groups import PrunableNet, link_mirrors, mlp_layers

P = TypeVar("P", bound=BasePolicy)


def _net(name: str, role: str, body: nn.Module, heads: list[nn.Module] | None = None, discrete: bool = False) -> PrunableNet:
    layers, linears = mlp_layers(name, body, heads)
    return PrunableNet(name=name, role=role, layers=layers, linears=linears, discrete=discrete)


class PolicyAdapter(Generic[P]):
    """
    What prune-rl needs to know about one SB3 policy class (the base of every adapter).

    :param policy: The policy (used, not copied).
    """

    def __init__(self, policy: P) -> None:
        self.policy = policy

    def post(self) -> str:
        """
        :return: SB3's action post-processing after :meth:`deployed`: ``argmax`` (discrete actions), ``clip`` (to the
            action bounds) or ``unscale`` (``[-1, 1]`` to the action bounds; the default).
        """
        return "unscale"

    def prunable_nets(self) -> list[PrunableNet]:
        """
        :return: The prunable networks, deployed network first, target networks linked as mirrors.
        :raises ValueError: If this policy's networks can't be pruned (SAC with gSDE).
        """
        raise NotImplementedError

    def outputs(self, obs: Any, actions: torch.Tensor | None) -> list[torch.Tensor]:
        """
        Run every prunable network on a batch (the probe; the caller sets the policy's mode).

        :param obs: Observations, ``(batch, *obs_shape)`` (normalised as in training).
        :param actions: Actions, for critics (off-policy), ``(batch, action_dim)``.
        :return: The networks' outputs, deployed network first.
        """
        raise NotImplementedError

    def deployed(self, obs: torch.Tensor) -> torch.Tensor:
        """
        What the deployed network computes for the deterministic action, before :meth:`post`: logits or Q-values
        (argmax), the mean action (clip) or the squashed action in ``[-1, 1]`` (unscale).

        :param obs: Flat normalised observations, ``(batch, obs_dim)``.
        :return: ``(batch, n_actions)`` or ``(batch, action_dim)``.
        """
        raise NotImplementedError

    def deployed_layers(self) -> tuple[nn.Module, list[nn.Module]]:
        """
        :return: The deployed network's features extractor, and its body as a chain of plain modules (``nn.Linear``
            layers and activations, in order, ending where :meth:`post` takes over).
        """
        raise NotImplementedError

    def net_arch(self, widths: dict[str, list[int]]) -> list[int] | dict[str, list[int]]:
        """
        The ``policy_kwargs.net_arch`` that builds this policy's prunable networks with other hidden widths.

        :param widths: ``{net name: [width per hidden layer]}`` for the names :meth:`prunable_nets` gives.
        :return: The ``net_arch`` as this policy class reads it.
        """
        raise NotImplementedError

    def set_net_arch_(self, widths: dict[str, list[int]]) -> None:
        """
        Record new hidden widths on the policy after its networks were shrunk in place (what its ``save()`` records).

        :param widths: ``{net name: [width per hidden layer]}`` for the names :meth:`prunable_nets` gives.
        """
        self.policy.net_arch = self.net_arch(widths)  # type: ignore[assignment]


class ActorCriticAdapter(PolicyAdapter[ActorCriticPolicy]):
    """PPO and A2C: the policy network ``pi`` (deployed) and the value network ``vf``."""

    def post(self) -> str:
        """:return: ``argmax`` of logits (discrete actions) or ``clip`` of the mean to the action bounds."""
        return "argmax" if isinstance(self.policy.action_space, spaces.Discrete) else "clip"

    def prunable_nets(self) -> list[PrunableNet]:
        policy = self.policy
        extractor = policy.mlp_extractor
        return [
            _net("pi", "policy", extractor.policy_net, [policy.action_net], isinstance(policy.action_space, spaces.Discrete)),
            _net("vf", "value", extractor.value_net, [policy.value_net]),
        ]

    def outputs(self, obs: Any, actions: torch.Tensor | None) -> list[torch.Tensor]:
        policy = self.policy
        features = policy.extract_features(obs)
        if isinstance(features, tuple):  # share_features_extractor=False
            latent_pi = policy.mlp_extractor.forward_actor(features[0])
            latent_vf = policy.mlp_extractor.forward_critic(features[1])
        else:
            latent_pi, latent_vf = policy.mlp_extractor(features)
        return [policy.action_net(latent_pi), policy.value_net(latent_vf)]

    def deployed(self, obs: torch.Tensor) -> torch.Tensor:
        policy = self.policy
        features = policy.extract_features(obs)
        latent = policy.mlp_extractor.forward_actor(features[0] if isinstance(features, tuple) else features)
        return policy.action_net(latent)

    def deployed_layers(self) -> tuple[nn.Module, list[nn.Module]]:
        policy = self.policy
        return policy.pi_features_extractor, [*policy.mlp_extractor.policy_net, policy.action_net]

    def net_arch(self, widths: dict[str, list[int]]) -> dict[str, list[int]]:
        return {"pi": widths["pi"], "vf": widths["vf"]}

    def set_net_arch_(self, widths: dict[str, list[int]]) -> None:
        super().set_net_arch_(widths)
        policy = self.policy
        policy.mlp_extractor.latent_dim_pi = widths["pi"][-1] if widths["pi"] else policy.features_dim
        policy.mlp_extractor.latent_dim_vf = widths["vf"][-1] if widths["vf"] else policy.features_dim


class DQNAdapter(PolicyAdapter[DQNPolicy]):
    """DQN: the Q-network ``q`` (deployed), its target network mirrored."""

    def post(self) -> str:
        """:return: ``argmax`` of Q-values."""
        return "argmax"

    def prunable_nets(self) -> list[PrunableNet]:
        q = _net("q", "policy", self.policy.q_net.q_net, discrete=True)
        link_mirrors(q, _net("q_target", "policy", self.policy.q_net_target.q_net, discrete=True))
        return [q]

    def outputs(self, obs: Any, actions: torch.Tensor | None) -> list[torch.Tensor]:
        return [self.policy.q_net(obs)]

    def deployed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.q_net(obs)

    def deployed_layers(self) -> tuple[nn.Module, list[nn.Module]]:
        return self.policy.q_net.features_extractor, list(self.policy.q_net.q_net)

    def net_arch(self, widths: dict[str, list[int]]) -> list[int]:
        return widths["q"]


class _ActorCriticsAdapter(PolicyAdapter[P]):
    """The off-policy actor-critics (SAC, TQC, TD3): an ``actor`` (deployed) and critics ``qf0``, ``qf1``, ..."""

    def critics(self) -> list[PrunableNet]:
        """:return: The critics, each with its target network mirrored."""
        policy: Any = self.policy
        nets = []
        for i, (qf, qf_target) in enumerate(zip(policy.critic.q_networks, policy.critic_target.q_networks, strict=True)):
            online = _net(f"qf{i}", "value", qf)
            link_mirrors(online, _net(f"qf{i}_target", "value", qf_target))
            nets.append(online)
        return nets

    def net_arch(self, widths: dict[str, list[int]]) -> dict[str, list[int]]:
        """:return: ``{pi, qf}``: every critic takes ``qf0``'s widths (SB3 builds them all from one list)."""
        return {"pi": widths["actor"], "qf": widths["qf0"]}


class SACAdapter(_ActorCriticsAdapter[SACPolicy]):
    """SAC: the Gaussian actor (``latent_pi`` + ``mu``, ``log_std``) and its critics."""

    def prunable_nets(self) -> list[PrunableNet]:
        actor = self.policy.actor
        if actor.use_sde:
            raise ValueError(f"neuron pruning does not support {type(self.policy).__name__} with gSDE (use_sde=True)")
        return [_net("actor", "policy", actor.latent_pi, [actor.mu, actor.log_std]), *self.critics()]  # type: ignore[list-item]

    def outputs(self, obs: Any, actions: torch.Tensor | None) -> list[torch.Tensor]:
        mean, log_std, _ = self.policy.actor.get_action_dist_params(obs)
        return [mean, log_std, *self.policy.critic(obs, actions)]

    def deployed(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _, _ = self.policy.actor.get_action_dist_params(obs)
        return torch.tanh(mean)

    def deployed_layers(self) -> tuple[nn.Module, list[nn.Module]]:
        actor = self.policy.actor
        return actor.features_extractor, [*actor.latent_pi, actor.mu, nn.Tanh()]


class TQCAdapter(SACAdapter):
    """sb3-contrib's TQC: SAC's actor; its critics output quantiles, stacked ``(batch, n_critics, n_quantiles)``."""

    policy: TQCPolicy  # type: ignore[assignment]

    def outputs(self, obs: Any, actions: torch.Tensor | None) -> list[torch.Tensor]:
        mean, log_std, _ = self.policy.actor.get_action_dist_params(obs)
        return [mean, log_std, *self.policy.critic(obs, actions).unbind(1)]


class TD3Adapter(_ActorCriticsAdapter[TD3Policy]):
    """TD3: the deterministic actor ``mu`` (its target mirrored) and its critics."""

    def prunable_nets(self) -> list[PrunableNet]:
        actor = _net("actor", "policy", self.policy.actor.mu)
        link_mirrors(actor, _net("actor_target", "policy", self.policy.actor_target.mu))
        return [actor, *self.critics()]

    def outputs(self, obs: Any, actions: torch.Tensor | None) -> list[torch.Tensor]:
        return [self.policy.actor(obs), *self.policy.critic(obs, actions)]

    def deployed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.actor(obs)

    def deployed_layers(self) -> tuple[nn.Module, list[nn.Module]]:
        return self.policy.actor.features_extractor, list(self.policy.actor.mu)


ADAPTERS: dict[type[BasePolicy], type[PolicyAdapter[Any]]] = {
    ActorCriticPolicy: ActorCriticAdapter,
    DQNPolicy: DQNAdapter,
    SACPolicy: SACAdapter,
    TQCPolicy: TQCAdapter,
    TD3Policy: TD3Adapter,
}
"""SB3 policy class -> its adapter; subclasses resolve to the nearest base listed here."""


def policy_adapter(policy: BasePolicy) -> PolicyAdapter[Any]:
    """
    The adapter of ``policy``'s class, or of its nearest base class that has one.

    :param policy: An SB3 policy.
    :return: Its adapter.
    :raises ValueError: In one line, if prune-rl knows no adapter for the policy's class.
    """
    for cls in type(policy).__mro__:
        if cls in ADAPTERS:
            return ADAPTERS[cls](policy)
    known = ", ".join(cls.__name__ for cls in ADAPTERS)
    raise ValueError(f"prune-rl does not support the policy class {type(policy).__name__} (supported: {known})")
