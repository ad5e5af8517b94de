"""Explicit registries from config strings to objects (never ``eval`` of config strings).

``algo`` keys are SB3 constructor arguments verbatim; a few values need building, as in rl-baselines3-zoo:

- ``learning_rate`` / ``clip_range`` as ``lin_<x>``: a linear schedule from ``x`` to 0 (SB3 ``LinearSchedule``);
- ``policy_kwargs.activation_fn`` as a name: ``relu``, ``tanh``, ``elu``, ``leaky_relu``;
- ``action_noise`` as ``{type: normal|ornstein_uhlenbeck, std: s}``: noise over the env's action dims.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sb3_contrib import TQC
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.utils import LinearSchedule
from torch import nn

from prune_rl.config import ConfigError

# sb3-contrib's TQC (the zoo's choice on MuJoCo) builds SAC's actor and MLP critics; its critics output quantiles.
ALGOS: dict[str, type[BaseAlgorithm]] = {"a2c": A2C, "dqn": DQN, "ppo": PPO, "sac": SAC, "td3": TD3, "tqc": TQC}

# Which action spaces each algorithm supports ("discrete" means gymnasium.spaces.Discrete).
ACTION_SPACES: dict[str, tuple[str, ...]] = {
    "a2c": ("discrete", "continuous"),
    "ppo": ("discrete", "continuous"),
    "dqn": ("discrete",),
    "sac": ("continuous",),
    "td3": ("continuous",),
    "tqc": ("continuous",),
}

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}

NOISES: dict[str, type[NormalActionNoise] | type[OrnsteinUhlenbeckActionNoise]] = {
    "normal": NormalActionNoise,
    "ornstein_uhlenbeck": OrnsteinUhlenbeckActionNoise,
}

SCHEDULED_KEYS = ("learning_rate", "clip_range", "clip_range_vf")
# SB3 arguments that must be positive (a schedule's start value for the scheduled ones), at least 0, or a fraction.
POSITIVE = ("learning_rate", "clip_range", "batch_size", "n_steps", "n_epochs", "buffer_size", "max_grad_norm",
            "target_update_interval", "policy_delay")  # fmt: skip
NON_NEGATIVE = ("learning_starts", "ent_coef", "vf_coef", "target_noise_clip", "target_policy_noise")
FRACTIONS = ("gamma", "gae_lambda", "tau", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps")


def check_ranges(kwargs: dict[str, Any]) -> None:
    """
    Refuse out-of-range SB3 arguments in one line, before SB3 fails on them with a traceback (or trains on them).

    :param kwargs: The ``algo`` config without its ``name`` (schedules still as ``lin_<x>``).
    :raises ConfigError: Naming the key, the value and what is allowed.
    """

    def number(key: str) -> float | None:
        value = kwargs.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            value = value[len("lin_") :]
        if value is None or isinstance(value, bool) or (key == "ent_coef" and isinstance(value, str)):  # ent_coef: auto
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"algo.{key}: expected a number, got {kwargs.get(key)!r}") from None

    for key in POSITIVE:
        value = number(key)
        if value is not None and not value > 0:
            raise ConfigError(f"algo.{key} must be > 0, got {kwargs[key]}")
    for key in NON_NEGATIVE:
        value = number(key)
        if value is not None and not value >= 0:
            raise ConfigError(f"algo.{key} must be >= 0, got {kwargs[key]}")
    for key in FRACTIONS:
        value = number(key)
        if value is not None and not 0 <= value <= 1:
            raise ConfigError(f"algo.{key} must be in [0, 1], got {kwargs[key]}")
    train_freq = kwargs.get("train_freq")
    if isinstance(train_freq, int) and train_freq < 1:
        raise ConfigError(f"algo.train_freq must be >= 1, got {train_freq}")
    gradient_steps = kwargs.get("gradient_steps")
    if isinstance(gradient_steps, int) and (gradient_steps == 0 or gradient_steps < -1):
        raise ConfigError(f"algo.gradient_steps must be >= 1 (or -1: as many as steps collected), got {gradient_steps}")


def _schedule(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ConfigError(f"algo.{key}: expected a number or 'lin_<number>', got {value!r}")
        try:
            start = float(value[len("lin_") :])
        except ValueError:
            raise ConfigError(f"algo.{key}: expected a number or 'lin_<number>', got {value!r}") from None
        return LinearSchedule(start, 0.0, 1.0)
    return value


def _policy_kwargs(value: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(value)
    name = kwargs.get("activation_fn")
    if isinstance(name, str):
        if name not in ACTIVATIONS:
            raise ConfigError(f"algo.policy_kwargs.activation_fn: unknown {name!r} (known: {', '.join(ACTIVATIONS)})")
        kwargs["activation_fn"] = ACTIVATIONS[name]
    return kwargs


def _action_noise(value: dict[str, Any], n_actions: int) -> ActionNoise:
    spec = dict(value)
    kind = spec.pop("type", "normal")
    if kind not in NOISES:
        raise ConfigError(f"algo.action_noise.type: unknown {kind!r} (known: {', '.join(NOISES)})")
    std = float(spec.pop("std", 0.1))
    if spec:
        raise ConfigError(f"algo.action_noise: unknown key(s) {', '.join(sorted(spec))} (known: type, std)")
    return NOISES[kind](mean=np.zeros(n_actions), sigma=std * np.ones(n_actions))


def algo_kwargs(kwargs: dict[str, Any], n_actions: int | None) -> dict[str, Any]:
    """
    Build SB3 constructor arguments from the ``algo`` config.

    :param kwargs: The ``algo`` config without its ``name``.
    :param n_actions: Action dimensions (continuous spaces), for ``action_noise``.
    :return: Arguments ready for the algorithm class.
    """
    check_ranges(kwargs)
    out = dict(kwargs)
    for key in SCHEDULED_KEYS:
        if key in out:
            out[key] = _schedule(key, out[key])
    if out.get("policy_kwargs"):
        out["policy_kwargs"] = _policy_kwargs(out["policy_kwargs"])
    noise = out.pop("action_noise", None)
    if noise:
        if n_actions is None:
            raise ConfigError("algo.action_noise needs a continuous action space")
        out["action_noise"] = _action_noise(noise, n_actions)
    return out
