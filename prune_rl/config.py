"""Typed run configuration.

Hydra composes YAML; :func:`train_config` turns the composed config into these dataclasses once, at the
entry point. Code below it receives dataclasses, never a ``DictConfig``. The ``pruning`` section becomes the
config dataclass of the chosen method (:data:`prune_rl.pruners.PRUNERS`), which checks its own values; the keys
every method shares are :class:`PrunerConfig`, here. Importing this module imports neither torch nor SB3 (``prune-rl
--help`` and composing a config stay cheap): the methods are imported when a ``pruning`` section is built.
Fractions of training (``begin``, ``end``, ``interval``) are in ``[0, 1]``; sparsity is the fraction *removed*.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An invalid configuration; its message is shown to the user as one line."""


PROBE_WINDOWS = ("rollout", "interval", "recent")
AUTO = "auto"
"""``sparsity: auto``: cut the deployed network as far as the guard lets it (``prune_rl.sb3.guard``)."""


@dataclass
class PrunerConfig:
    """
    Keys every pruning method shares (``conf/pruning/*.yaml``).

    :param name: The option's name, used in run names (``dsp``, ``magnitude``, or a recipe's own name).
    :param method: Key of :data:`prune_rl.pruners.PRUNERS` that implements it (default: ``name``).
    :param sparsity: Final sparsity of the deployed network (policy, Q-network, actor), or ``auto``: as far as the
        guard allows.
    :param value_sparsity: Final sparsity of value and critic networks.
    :param begin: Fraction of training where pruning starts.
    :param end: Fraction of training where the final sparsity is reached (fine-tuning after it).
    :param interval: Fraction of training between pruning events.
    :param schedule: Shape of the sparsity schedule between ``begin`` and ``end``: ``cubic`` (Zhu & Gupta 2017) or
        ``geometric`` (every event removes the same share of what is left).
    :param min_neurons: Neurons a hidden layer always keeps.
    :param probe_size: Recent states a pruning event may score (and repair) its cut on.
    :param probe_window: Where an on-policy algorithm's probe states come from: ``rollout`` (the last rollout
        before the event), ``interval`` (a uniform sample of every rollout since the previous event) or ``recent``
        (the last ``probe_size`` states). Off-policy algorithms sample their replay buffer either way.
    :param shrink: Rebuild the networks narrower after every cut, so that training gets cheaper as they shrink
        (methods whose removed neurons never come back; see :attr:`Pruner.shrinks`).
    :param guard: Keep a cut only if it changes the deployed policy's actions on the probe states by at most
        ``tolerance``, and cut again only once the training return has recovered to within ``tolerance`` of its
        level before the last cut (``prune_rl.sb3.guard``).
    :param tolerance: The guard's budget: a share of the policy's behaviour (actions changed, or action variance
        lost) per cut, and a share of the return (or of its range, where returns are negative) between cuts.
    """

    name: str = "none"
    method: str = ""
    sparsity: float | str = 0.95
    value_sparsity: float = 0.5
    begin: float = 0.1
    end: float = 0.75
    interval: float = 0.02
    schedule: str = "cubic"
    min_neurons: int = 2
    probe_size: int = 2048
    probe_window: str = "rollout"
    shrink: bool = False
    guard: bool = True
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        self.method = self.method or self.name
        if self.method == "none":
            return
        for key in ("begin", "end", "interval"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"pruning.{key} must be a fraction of training in [0, 1], got {getattr(self, key)}")
        if self.begin >= self.end:
            raise ValueError(f"pruning.begin ({self.begin}) must be before pruning.end ({self.end})")
        if self.sparsity == AUTO and not self.guard:
            raise ValueError("pruning.sparsity=auto needs the guard (pruning.guard=true): it decides how far to cut")
        for key in ("sparsity", "value_sparsity"):
            value = getattr(self, key)
            if (key, value) != ("sparsity", AUTO) and not (isinstance(value, int | float) and 0.0 <= value < 1.0):
                allowed = "[0, 1) or auto" if key == "sparsity" else "[0, 1)"
                raise ValueError(f"pruning.{key} must be in {allowed}, got {value}")
        if not 0.0 < self.tolerance < 1.0:
            raise ValueError(f"pruning.tolerance must be in (0, 1), got {self.tolerance}")
        if self.min_neurons < 1:
            raise ValueError(f"pruning.min_neurons must be >= 1, got {self.min_neurons}")
        if self.probe_size < 1:
            raise ValueError(f"pruning.probe_size must be >= 1, got {self.probe_size}")
        from prune_rl.core.schedule import SCHEDULES  # here: importing this module must not import torch

        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("probe_window", self.probe_window, PROBE_WINDOWS)


def check_choice(key: str, value: str, known: Sequence[str] | dict[str, Any]) -> None:
    """Raise a one-line ``ValueError`` naming ``pruning.<key>`` if ``value`` is not one of ``known``."""
    if value not in known:
        raise ValueError(f"unknown pruning.{key} {value!r} (known: {', '.join(known)})")


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
class CheckpointConfig:
    """
    :param every: Fraction of the training budget between checkpoints (0: only when a stop signal arrives).
    """

    every: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.every <= 1.0:
            raise ValueError(f"checkpoint.every must be a fraction of training in [0, 1], got {self.every}")


@dataclass
class InitConfig:
    """
    A trained agent to start from (``prune-rl prune MODEL``) instead of a new one.

    :param model: Its SB3 ``.zip`` (``None``: train a new agent).
    :param vecnormalize: Its ``VecNormalize`` statistics (with ``env.normalize``).
    :param budget: Unless ``n_timesteps`` is given, the fine-tuning budget is this fraction of the task's training
        budget.
    """

    model: str | None = None
    vecnormalize: str | None = None
    budget: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.budget <= 1.0:
            raise ValueError(f"init.budget must be a fraction of the training budget in (0, 1], got {self.budget}")


@dataclass
class TrainConfig:
    """
    One training run.

    :param env: Environment.
    :param algo: Algorithm.
    :param pruning: Pruning method.
    :param eval: Evaluation.
    :param checkpoint: Checkpoints (``prune-rl resume``).
    :param init: A trained agent to start from (``prune-rl prune``).
    :param seed: Random seed.
    :param n_timesteps: Environment steps of training.
    :param device: Torch device for SB3 (``auto``, ``cpu``, ``cuda``).
    :param torch_threads: ``torch.set_num_threads`` (0 keeps torch's default).
    :param progress_bar: ``auto`` (on a terminal only), ``true`` or ``false``.
    :param run_name: ``{env}__{algo}__{pruning}__seed{k}``.
    :param config_files: The config files Hydra composed the run from (``env/hopper.yaml``,
        ``algo_env/ppo_hopper.yaml``, ...): which per-task values were applied. Set by the app, not in YAML.
    """

    env: EnvConfig
    algo: AlgoConfig
    pruning: PrunerConfig = field(default_factory=PrunerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    init: InitConfig = field(default_factory=InitConfig)
    seed: int = 0
    n_timesteps: int = 100_000
    device: str = "auto"
    torch_threads: int = 1
    progress_bar: bool | str = "auto"
    run_name: str = ""
    config_files: list[str] = field(default_factory=list)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, naming unknown keys clearly."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(known)})")
    hints = typing.get_type_hints(cls)
    data = dict(data)
    for key, value in data.items():
        name = key if where == "config" else f"{where}.{key}"
        if dataclasses.is_dataclass(hints.get(key)) and isinstance(value, dict):
            data[key] = _build(hints[key], value, name)
        elif not _fits(value, hints[key]):
            shown = str(value).lower() if isinstance(value, bool) else value  # as YAML spells it
            raise ConfigError(f"{name} must be {_describe(hints[key])}, got {shown}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError as exc:  # the dataclass's own checks
        raise ConfigError(str(exc)) from None


def _fits(value: Any, hint: Any) -> bool:
    """
    Whether a config value has its field's type, so that ``env.normalize=maybe`` is refused before anything runs.

    Booleans, numbers, mappings, lists, ``None`` and sections are checked (an int is a float; a bool is neither);
    a ``str`` or ``Any`` field takes any value, which its own check then names (``unknown pruning.schedule ...``).

    :param value: The value, as YAML or a Hydra override gave it.
    :param hint: The field's annotation.
    :return: Whether it fits.
    """
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, member) for member in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return isinstance(value, bool)
    if origin in (int, float):
        return isinstance(value, int if origin is int else (int, float)) and not isinstance(value, bool)
    if origin in (dict, list, type(None)) or dataclasses.is_dataclass(origin):
        return isinstance(value, origin)
    return True


def _describe(hint: Any) -> str:
    """:return: What a value of annotation ``hint`` must be, in words (``true or false``, ``an integer``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(_describe(member) for member in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    words = {bool: "true or false", int: "an integer", float: "a number", list: "a list", type(None): "null"}
    return words.get(origin, "a mapping" if origin is dict or dataclasses.is_dataclass(origin) else origin.__name__)


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
    if cfg.torch_threads < 0:
        raise ConfigError(f"torch_threads must be >= 0 (0: torch's default), got {cfg.torch_threads}")
    device = str(cfg.device)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={device}, but torch {torch.__version__} sees no CUDA device here (use device=auto or cpu)"
            )
    elif device not in ("auto", "cpu") and not device.startswith("mps"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:<n>, got {device}")


def train_config(data: dict[str, Any]) -> TrainConfig:
    """
    Turn the composed, resolved config (a plain dict) into a validated :class:`TrainConfig`.

    :param data: ``OmegaConf.to_container(cfg, resolve=True)`` of the root config.
    :return: The typed config.
    :raises ConfigError: On unknown keys or invalid values.
    """
    data = {k: v for k, v in data.items() if k != "hydra"}
    algo = dict(data["algo"])
    sections = {
        "env": _build(EnvConfig, data["env"], "env"),
        "algo": AlgoConfig(name=algo.pop("name"), kwargs=algo),
        "pruning": pruning_config(data.get("pruning", {})),
        "eval": _build(EvalConfig, data.get("eval", {}), "eval"),
        "checkpoint": _build(CheckpointConfig, data.get("checkpoint", {}), "checkpoint"),
        "init": _build(InitConfig, data.get("init") or {}, "init"),
    }
    cfg = _build(TrainConfig, {**data, **sections}, "config")
    validate(cfg)
    return cfg


def pruning_config(data: dict[str, Any]) -> PrunerConfig:
    """
    Build the config dataclass of the method that ``pruning.method`` (or ``pruning.name``) names.

    :param data: The ``pruning`` section.
    :return: ``PrunerConfig`` for dense runs, the method's own subclass otherwise.
    :raises ConfigError: On an unknown method, unknown keys or invalid values.
    """
    from prune_rl.pruners import OLD_NAMES, PRUNERS  # here: the methods import torch (and PuRL SB3)

    data = legacy_pruning(dict(data))
    method = data.get("method") or data.get("name", "none")
    if method == "none":
        return _build(PrunerConfig, {k: v for k, v in data.items() if k in ("name", "method")}, "pruning")
    if method not in PRUNERS:
        known = ", ".join(name for name in PRUNERS if name not in OLD_NAMES)
        raise ConfigError(f"unknown pruning method {method!r} (known: none, {known})")
    return _build(PRUNERS[method].config_class, data, "pruning")


# dsp's keys before its knobs were cut (2026-12-02) -> where they went; runs written before read the same.
_LEGACY_DSP = {
    "compensate": ("repair", "fold"),
    "fan_in_lr": ("repair", "fan_in_lr"),
    "distill_steps": ("repair", "distill_steps"),
    "distill_lr": ("repair", "distill_lr"),
}
_LEGACY_FIXED = {"allocation": "layer", "regularizer.max_weight": 10.0, "regularizer.anchor": "mean"}


def legacy_pruning(data: dict[str, Any]) -> dict[str, Any]:
    """
    Read a ``dsp`` section written before 2026-12-02 (a nested ``regularizer``, ``compensate``, ...) as today's.

    :param data: A ``pruning`` section.
    :return: The section with today's keys (unchanged if it already has them).
    :raises ConfigError: If it used a value that is no longer available.
    """
    if data.get("name") != "dsp" or ("regularizer" not in data and not set(_LEGACY_DSP) & set(data)):
        return data
    regularizer = dict(data.pop("regularizer", {}))
    used = {
        "allocation": data.pop("allocation", "layer"),
        "regularizer.max_weight": regularizer.pop("max_weight", 10.0),
        "regularizer.anchor": regularizer.pop("anchor", "mean"),
    }
    for key, fixed in _LEGACY_FIXED.items():
        if used[key] != fixed:
            raise ConfigError(f"pruning.{key}={used[key]} is no longer available (dsp now always uses {fixed})")
    window = (data.get("begin"), data.get("end"))
    if (regularizer.pop("begin", window[0]), regularizer.pop("end", window[1])) != window:
        raise ConfigError("pruning.regularizer.begin/end other than the pruning window are no longer available")
    for key in ("strength", "value_strength", "gamma"):
        if key in regularizer:
            data[key] = regularizer.pop(key)
    if regularizer:
        raise ConfigError(f"unknown key(s) in pruning.regularizer: {', '.join(sorted(regularizer))}")
    repair = dict(data.pop("repair", {}))
    for old, (_, new) in _LEGACY_DSP.items():
        if old in data:
            repair[new] = data.pop(old)
    if isinstance(repair.get("fold"), bool):  # compensate was a switch for mean replacement until 2026-11-22
        repair["fold"] = "mean" if repair["fold"] else "none"
    data["repair"] = repair
    return data
