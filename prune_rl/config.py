"""Typed run configuration.

Hydra composes YAML; :func:`train_config` turns the composed config into these dataclasses once, at the
entry point. Code below it receives dataclasses, never a ``DictConfig``. Fractions of training
(``begin``, ``end``, ``interval``) are in ``[0, 1]``; sparsity is the fraction of neurons *removed*.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An invalid configuration; its message is shown to the user as one line."""


@dataclass
class EnvConfig:
    """
    :param name: Short name used in run names (``cartpole``).
    :param id: Gymnasium id (``CartPole-v1``).
    :param n_envs: Number of parallel training environments.
    :param normalize: Wrap in ``VecNormalize`` (observations and rewards), as rl-baselines3-zoo does for MuJoCo.
    :param normalize_kwargs: Extra ``VecNormalize`` arguments.
    :param vec_env: ``dummy`` or ``subproc``.
    :param kwargs: Extra ``gymnasium.make`` arguments.
    :param n_timesteps: Default training budget for this task (the root ``n_timesteps`` reads it).
    """

    name: str
    id: str
    n_envs: int = 1
    normalize: bool = False
    normalize_kwargs: dict[str, Any] = field(default_factory=dict)
    vec_env: str = "dummy"
    kwargs: dict[str, Any] = field(default_factory=dict)
    n_timesteps: int = 1_000_000


@dataclass
class AlgoConfig:
    """
    :param name: Key of :data:`prune_rl.registry.ALGOS`.
    :param kwargs: SB3 constructor arguments, verbatim (``policy``, ``learning_rate``, ``policy_kwargs``, ...).
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegularizerConfig:
    """
    Importance-weighted group lasso (see :class:`prune_rl.pruning.GroupLasso`).

    :param strength: ``lambda`` for the deployed (policy) network.
    :param value_strength: ``lambda`` for value/critic networks.
    :param gamma: Exponent of the importance weights (0: plain group lasso).
    :param max_weight: Importance weights are clipped to ``[1/max_weight, max_weight]``.
    :param anchor: The score that gets importance weight 1: ``mean`` (the layer's mean) or ``keep`` (the
        last neuron the final sparsity keeps).
    :param begin: Fraction of training where the penalty starts.
    :param end: Fraction of training where it stops (fine-tuning after it).
    """

    strength: float = 3.0
    value_strength: float = 0.0
    gamma: float = 1.0
    max_weight: float = 10.0
    anchor: str = "mean"
    begin: float = 0.1
    end: float = 0.75


@dataclass
class PruningConfig:
    """
    :param name: ``none`` (dense) or a key of :data:`prune_rl.registry.PRUNERS`.
    :param importance: Neuron importance criterion: ``activation``, ``deviation``, ``taylor``, ``magnitude`` or
        ``reconstruction``.
    :param sparsity: Final neuron sparsity of the deployed (policy) network.
    :param value_sparsity: Final neuron sparsity of value/critic networks.
    :param begin: Fraction of training where pruning starts.
    :param end: Fraction of training where the final sparsity is reached.
    :param schedule: Shape of the sparsity schedule between ``begin`` and ``end``: ``cubic`` (Zhu & Gupta) or
        ``geometric`` (every step removes the same fraction of the neurons left).
    :param interval: Fraction of training between threshold recomputations.
    :param min_neurons: Neurons a hidden layer always keeps.
    :param allocation: How kept neurons are shared among a network's layers: ``layer`` (each layer reaches
        the sparsity) or ``global`` (one network-wide ranking).
    :param probe_size: Recent states used to score importance (and to fold and distill a cut).
    :param probe_window: Where an on-policy algorithm's probe states come from: ``rollout`` (the last rollout
        before the pruning event), ``interval`` (every rollout since the previous event) or ``recent`` (the last
        ``probe_size`` states). Off-policy algorithms sample their replay buffer either way.
    :param compensate: What a cut folds into the layers the cut neurons fed: ``none``, ``mean`` (their mean
        activation, into the next bias: mean replacement) or ``linear`` (their least-squares estimate from the
        kept neurons, into the next weights and bias). ``false`` and ``true``, from configs written before
        ``linear`` existed, read as ``none`` and ``mean``.
    :param fan_in_lr: Multiply the updates of every layer fed by a pruned layer by ``(n_neurons / n_alive) **
        fan_in_lr`` (1: muP's Adam rule, so a narrowed layer learns as fast as the dense one; 0: off).
    :param distill_steps: Full-batch Adam steps after every cut that fit the networks back to their outputs
        before the cut, on the states that scored it (0: off).
    :param distill_lr: Their learning rate.
    :param regularizer: The group-sparse regularizer.
    """

    name: str = "none"
    importance: str = "activation"
    sparsity: float = 0.95
    value_sparsity: float = 0.5
    begin: float = 0.1
    end: float = 0.75
    schedule: str = "cubic"
    interval: float = 0.02
    min_neurons: int = 2
    allocation: str = "layer"
    probe_size: int = 2048
    probe_window: str = "rollout"
    compensate: str = "none"
    fan_in_lr: float = 0.0
    distill_steps: int = 0
    distill_lr: float = 1e-3
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)


@dataclass
class EvalConfig:
    """
    :param n_episodes: Episodes of the final evaluation (and of each periodic one).
    :param freq: Periodic evaluations per run (0 disables them).
    :param deterministic: Act deterministically when evaluating.
    :param seed_offset: Evaluation envs are seeded with ``seed + seed_offset``.
    """

    n_episodes: int = 10
    freq: int = 10
    deterministic: bool = True
    seed_offset: int = 10_000


@dataclass
class TrainConfig:
    """
    One training run.

    :param env: Environment.
    :param algo: Algorithm.
    :param pruning: Pruning method.
    :param eval: Evaluation.
    :param seed: Random seed.
    :param n_timesteps: Environment steps of training.
    :param device: Torch device for SB3 (``auto``, ``cpu``, ``cuda``).
    :param torch_threads: ``torch.set_num_threads`` (0 keeps torch's default).
    :param progress_bar: ``auto`` (on a terminal only), ``true`` or ``false``.
    :param run_name: ``{env}__{algo}__{pruning}__seed{k}``.
    """

    env: EnvConfig
    algo: AlgoConfig
    pruning: PruningConfig = field(default_factory=PruningConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    n_timesteps: int = 100_000
    device: str = "auto"
    torch_threads: int = 1
    progress_bar: bool | str = "auto"
    run_name: str = ""


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, naming unknown keys clearly."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(known)})")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a fraction of training in [0, 1], got {value}")


def validate(cfg: TrainConfig) -> None:
    """
    Check values that no type can express.

    :param cfg: The run configuration.
    :raises ConfigError: On the first invalid value.
    """
    if not isinstance(cfg.n_timesteps, int) or cfg.n_timesteps <= 0:
        raise ConfigError(f"n_timesteps must be a positive integer, got {cfg.n_timesteps}")
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {cfg.seed}")
    if cfg.env.n_envs < 1:
        raise ConfigError(f"env.n_envs must be >= 1, got {cfg.env.n_envs}")
    if cfg.eval.n_episodes < 1:
        raise ConfigError(f"eval.n_episodes must be >= 1, got {cfg.eval.n_episodes}")
    if cfg.eval.freq < 0:
        raise ConfigError(f"eval.freq must be >= 0, got {cfg.eval.freq}")
    if cfg.progress_bar not in ("auto", True, False):
        raise ConfigError(f"progress_bar must be auto, true or false, got {cfg.progress_bar}")
    _validate_pruning(cfg.pruning)


def _validate_pruning(p: PruningConfig) -> None:
    for name in ("begin", "end", "interval"):
        _check_fraction(f"pruning.{name}", getattr(p, name))
    for name in ("begin", "end"):
        _check_fraction(f"pruning.regularizer.{name}", getattr(p.regularizer, name))
    if p.begin >= p.end:
        raise ConfigError(f"pruning.begin ({p.begin}) must be before pruning.end ({p.end})")
    if p.regularizer.begin >= p.regularizer.end:
        raise ConfigError(f"pruning.regularizer.begin ({p.regularizer.begin}) must be before its end ({p.regularizer.end})")
    for name in ("sparsity", "value_sparsity"):
        if not 0.0 <= getattr(p, name) < 1.0:
            raise ConfigError(f"pruning.{name} must be in [0, 1), got {getattr(p, name)}")
    if p.min_neurons < 1:
        raise ConfigError(f"pruning.min_neurons must be >= 1, got {p.min_neurons}")
    if p.regularizer.strength < 0 or p.regularizer.value_strength < 0:
        raise ConfigError("pruning.regularizer strengths must be >= 0")
    if p.probe_size < 1:
        raise ConfigError(f"pruning.probe_size must be >= 1, got {p.probe_size}")
    if not 0.0 <= p.fan_in_lr <= 1.0:
        raise ConfigError(f"pruning.fan_in_lr must be in [0, 1], got {p.fan_in_lr}")
    if p.distill_steps < 0 or p.distill_lr <= 0:
        raise ConfigError(f"pruning.distill_steps must be >= 0 and distill_lr > 0, got {p.distill_steps}, {p.distill_lr}")


def train_config(data: dict[str, Any]) -> TrainConfig:
    """
    Turn the composed, resolved config (a plain dict) into a validated :class:`TrainConfig`.

    :param data: ``OmegaConf.to_container(cfg, resolve=True)`` of the root config.
    :return: The typed config.
    :raises ConfigError: On unknown keys or invalid values.
    """
    data = {k: v for k, v in data.items() if k != "hydra"}
    algo = dict(data["algo"])
    pruning = dict(data.get("pruning", {}))
    if isinstance(pruning.get("compensate"), bool):  # the key was a switch for mean replacement until 2026-11-22
        pruning["compensate"] = "mean" if pruning["compensate"] else "none"
    if "regularizer" in pruning:
        pruning["regularizer"] = _build(RegularizerConfig, pruning["regularizer"], "pruning.regularizer")
    sections = {
        "env": _build(EnvConfig, data["env"], "env"),
        "algo": AlgoConfig(name=algo.pop("name"), kwargs=algo),
        "pruning": _build(PruningConfig, pruning, "pruning"),
        "eval": _build(EvalConfig, data.get("eval", {}), "eval"),
    }
    cfg = _build(TrainConfig, {**data, **sections}, "config")
    validate(cfg)
    return cfg
