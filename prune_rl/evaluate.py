"""Re-evaluate a saved run directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from omegaconf import OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm

from prune_rl.config import ConfigError, TrainConfig, train_config
from prune_rl.environment import make_env
from prune_rl.registry import ALGOS
from prune_rl.rundir import missing_file
from prune_rl.train import MODEL_FILE, VECNORMALIZE_FILE, evaluate


def load_run_config(run_dir: str | Path, lenient_pruning: bool = False) -> TrainConfig:
    """
    :param run_dir: A run directory.
    :param lenient_pruning: If the ``pruning`` section no longer reads (a run made with a value since retired),
        keep only its name: enough to evaluate the saved model, which needs no pruning.
    :return: Its saved ``config.yaml``, validated into a :class:`prune_rl.config.TrainConfig`.
    """
    path = Path(run_dir) / "config.yaml"
    try:
        container = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # a truncated or corrupt file: any parser error
        raise ConfigError(f"{path} does not read ({str(exc).splitlines()[0]})") from None
    if not isinstance(container, dict) or "env" not in container or "algo" not in container:
        raise ConfigError(f"{path} does not hold a run's config (no env or algo section)")
    data = {str(k): v for k, v in container.items()}
    try:
        return train_config(data)
    except ConfigError:
        pruning = data.get("pruning")
        if not lenient_pruning or not isinstance(pruning, dict):
            raise
        return train_config({**data, "pruning": {"name": pruning.get("name", "none"), "method": "none"}})


def load_run_model(run_dir: str | Path, cfg: TrainConfig) -> BaseAlgorithm:
    """
    :param run_dir: A run directory.
    :param cfg: Its config (:func:`load_run_config`).
    :return: Its ``model.zip``, on the CPU.
    :raises ConfigError: If the file does not load as the run's algorithm, or acts on other spaces than the run's env.
    """
    run_dir = Path(run_dir)
    try:
        model = ALGOS[cfg.algo.name].load(run_dir / MODEL_FILE, device="cpu")
    except Exception as exc:  # a truncated or corrupt zip, or another algorithm's: any reader error
        raise ConfigError(f"{run_dir / MODEL_FILE} does not load as {cfg.algo.name} ({str(exc).splitlines()[0]})") from None
    env = make_env(cfg.env, seed=0, n_envs=1, training=False)
    spaces = (env.observation_space, env.action_space)
    env.close()
    if (model.observation_space, model.action_space) != spaces:
        raise ConfigError(
            f"{run_dir / MODEL_FILE} acts on {model.observation_space} -> {model.action_space}, "
            f"but {cfg.env.id} has {spaces[0]} -> {spaces[1]}"
        )
    return model


def evaluate_run(
    run_dir: str | Path, n_episodes: int | None = None, seed: int | None = None, deterministic: bool = True
) -> dict:
    """
    Load ``model.zip`` (and ``vecnormalize.pkl``) from a run directory and evaluate it.

    :param run_dir: The run directory.
    :param n_episodes: Episodes (default: the run's ``eval.n_episodes``).
    :param seed: Seed of the evaluation env (default: the run's ``seed + eval.seed_offset``).
    :param deterministic: Act deterministically.
    :return: ``{env_id, algo, mean_return, std_return, n_episodes, deterministic}``.
    :raises ConfigError: If ``n_episodes`` is below 1 (a mean over no episode is ``nan``), or the run does not load.
    """
    if n_episodes is not None and n_episodes < 1:
        raise ConfigError(f"n_episodes must be >= 1, got {n_episodes}")
    run_dir = Path(run_dir)
    missing = missing_file(run_dir)
    if missing is not None:
        raise FileNotFoundError(f"{run_dir} is not a run directory: {missing} is missing")
    cfg = load_run_config(run_dir, lenient_pruning=True)
    if cfg.algo.name not in ALGOS:
        raise ConfigError(f"unknown algo {cfg.algo.name!r} in {run_dir / 'config.yaml'}")
    eval_cfg = dataclasses.replace(
        cfg.eval,
        n_episodes=cfg.eval.n_episodes if n_episodes is None else n_episodes,
        deterministic=deterministic,
        seed_offset=cfg.eval.seed_offset if seed is None else seed - cfg.seed,
    )
    cfg = dataclasses.replace(cfg, eval=eval_cfg)
    model = load_run_model(run_dir, cfg)
    vecnorm = run_dir / VECNORMALIZE_FILE
    if cfg.env.normalize and not vecnorm.is_file():
        raise FileNotFoundError(f"{run_dir} trained with env.normalize but {VECNORMALIZE_FILE} is missing")
    result = evaluate(model, cfg, vecnormalize=vecnorm if cfg.env.normalize else None)
    return {"env_id": cfg.env.id, "algo": cfg.algo.name, **result}
