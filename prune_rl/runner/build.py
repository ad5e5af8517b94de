"""What a run trains: the SB3 model, the pruning method, and an earlier run's agent to start from.

Every check that can refuse a run in one line (an algorithm that does not fit the action space, a method that cannot
prune the networks, an earlier run of another task) is made here, before any step is taken.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from prune_rl.config import ConfigError, TrainConfig
from prune_rl.environment import action_kind
from prune_rl.methods import Pruner
from prune_rl.pruners import PRUNERS
from prune_rl.registry import ACTION_SPACES, ALGOS, algo_kwargs
from prune_rl.runner import rundir
from prune_rl.sb3.deployed import widen_
from prune_rl.sb3.networks import net_arch, prunable_nets

log = logging.getLogger(__name__)


def build_model(cfg: TrainConfig, env: Any, arch: list[int] | dict[str, list[int]] | None = None) -> BaseAlgorithm:
    """
    Build the SB3 model described by ``cfg``, checking that the algorithm fits the action space.

    :param cfg: Run config.
    :param env: The training environment.
    :param arch: A ``policy_kwargs.net_arch`` to use instead of the configured one.
    :return: An untrained model.
    """
    if cfg.algo.name not in ALGOS:
        raise ConfigError(f"unknown algo {cfg.algo.name!r} (known: {', '.join(ALGOS)})")
    kind, n_actions = action_kind(env.action_space)
    if kind not in ACTION_SPACES[cfg.algo.name]:
        raise ConfigError(
            f"algo={cfg.algo.name} needs a {' or '.join(ACTION_SPACES[cfg.algo.name])} action space, "
            f"but {cfg.env.id} is {kind}"
        )
    kwargs = algo_kwargs(cfg.algo.kwargs, n_actions)
    kwargs.setdefault("policy", "MlpPolicy")
    if arch is not None:
        kwargs["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), "net_arch": arch}
    try:
        return ALGOS[cfg.algo.name](env=env, seed=cfg.seed, device=cfg.device, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"algo={cfg.algo.name}: {exc}") from None


def build_pruner(cfg: TrainConfig) -> Pruner | None:
    """
    :param cfg: Run config.
    :return: The pruning method chosen by ``pruning.method`` (``None`` for dense runs), seeded with the run's seed.
    """
    if cfg.pruning.method == "none":
        return None
    pruner_class = PRUNERS[cfg.pruning.method]
    if cfg.pruning.shrink and not pruner_class.shrinks:
        raise ConfigError(
            f"pruning.shrink=true needs a method that removes whole neurons for good, which {cfg.pruning.method} does not "
            f"(shrinking methods: {', '.join(name for name, cls in PRUNERS.items() if cls.shrinks)})"
        )
    return pruner_class(cfg.pruning, seed=cfg.seed)


def build_pruned_model(cfg: TrainConfig, env: Any, pruner: Pruner | None) -> BaseAlgorithm:
    """
    Build the model, at the widths the pruner asks for if it asks (``scratch``).

    :param cfg: Run config.
    :param env: The training environment.
    :param pruner: The pruning method, if any.
    :return: An untrained model.
    """
    model = build_model(cfg, env)
    if pruner is None:
        return model
    try:
        pruner.check(prunable_nets(model))
        widths = pruner.architecture(prunable_nets(model))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return model if widths is None else build_model(cfg, env, net_arch(model, widths))


def check_fine_tuning(pruner: Pruner, model: BaseAlgorithm) -> None:
    """
    :param pruner: The pruning method.
    :param model: A trained agent loaded to fine-tune.
    :raises ConfigError: If the method cannot prune it as asked, or builds its own networks (``scratch``).
    """
    try:
        pruner.check(prunable_nets(model))
        widths = pruner.architecture(prunable_nets(model))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if widths is not None or pruner.start_from() is not None:
        raise ConfigError(
            f"pruning={pruner.cfg.name} builds or loads its own networks, so it cannot start from a trained agent"
        )


def prune_after_warmup(cfg: TrainConfig, model: BaseAlgorithm) -> TrainConfig:
    """
    An off-policy agent loaded to fine-tune starts with an empty replay buffer: pruning begins once it has been
    filled for ``learning_starts`` steps, so that the first event scores states the agent met.

    :param cfg: The run's config.
    :param model: The loaded model.
    :return: The config, with ``pruning.begin`` moved to ``learning_starts`` if it was earlier.
    :raises ConfigError: If filling the buffer takes up the budget up to ``pruning.end``.
    """
    if not isinstance(model, OffPolicyAlgorithm) or cfg.pruning.method == "none":
        return cfg
    warmup = model.learning_starts / cfg.n_timesteps
    if warmup <= cfg.pruning.begin:
        return cfg
    if warmup >= cfg.pruning.end:
        raise ConfigError(
            f"n_timesteps={cfg.n_timesteps} leaves no room to prune after filling the replay buffer "
            f"(learning_starts={model.learning_starts} reaches pruning.end={cfg.pruning.end}): raise n_timesteps"
        )
    log.info("pruning begins at %.3f of the budget, once the replay buffer holds learning_starts steps", warmup)
    return dataclasses.replace(cfg, pruning=dataclasses.replace(cfg.pruning, begin=warmup))


def dense_widths(model: BaseAlgorithm) -> dict[str, list[int]] | None:
    """:return: A dense model's hidden widths per network (reports draw them beside the pruned runs')."""
    try:
        return {net.name: [layer.n_neurons for layer in net.layers] for net in prunable_nets(model)}
    except ValueError:  # a policy without neuron groups (gSDE)
        return None


def start_from_run(model: BaseAlgorithm, env: Any, cfg: TrainConfig, run_dir: str | Path) -> int:
    """
    Load an earlier run's trained agent (and its normalisation statistics) to continue from ``pruning.begin``.

    :param model: The freshly built model, of the same shape as the earlier run's.
    :param env: The training environment.
    :param cfg: This run's config.
    :param run_dir: The earlier run directory.
    :return: The timesteps it stands for (``begin * n_timesteps``), where training resumes.
    :raises ConfigError: If it is not a run directory, or trained another algorithm, task, normalisation or network
        shape, or the algorithm is off-policy (the replay buffer is not saved with a run).
    """
    where = f"pruning.from_run={run_dir}"
    missing = rundir.missing_file(run_dir)
    if missing is not None:
        raise ConfigError(f"{where} is not a run directory ({missing} is missing)")
    try:
        earlier = rundir.read_config_data(run_dir)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    env_section, algo_section = earlier.get("env") or {}, earlier.get("algo") or {}
    trained = (algo_section.get("name"), env_section.get("id"))
    if trained != (cfg.algo.name, cfg.env.id):
        raise ConfigError(f"{where} trained {trained[0]} on {trained[1]}, not {cfg.algo.name} on {cfg.env.id}")
    if bool(env_section.get("normalize")) != cfg.env.normalize:
        raise ConfigError(f"{where} trained with env.normalize={not cfg.env.normalize}, this run has {cfg.env.normalize}")
    if isinstance(model, OffPolicyAlgorithm):  # its replay buffer is not saved: the run would restart it empty
        raise ConfigError(f"pruning.from_run needs an on-policy algorithm (ppo, a2c), not {cfg.algo.name}")
    path = rundir.model_file(run_dir)
    try:
        model.set_parameters(str(path), exact_match=True, device=model.device)
    except Exception as exc:  # a corrupt zip or other network shapes
        try:  # a run shrunk while training: its masked networks at this run's widths
            narrow = ALGOS[cfg.algo.name].load(path, device=model.device)
            widen_(model, narrow, rundir.load_masks(run_dir, model.device))
        except Exception:
            raise ConfigError(
                f"{where}: its model does not load into this run's networks ({str(exc).splitlines()[0]})"
            ) from None
    if isinstance(env, VecNormalize):
        try:
            stats = rundir.vecnormalize_file(run_dir, cfg)
        except ConfigError:
            raise ConfigError(f"{where} has no {rundir.VECNORMALIZE_FILE}, which env.normalize needs") from None
        assert stats is not None
        saved = VecNormalize.load(str(stats), env.venv)
        env.obs_rms, env.ret_rms = saved.obs_rms, saved.ret_rms
    return int(cfg.pruning.begin * cfg.n_timesteps)
