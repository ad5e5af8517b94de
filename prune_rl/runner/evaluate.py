"""Evaluate an agent: while it trains, at the end of a run, or later from its run directory (``prune-rl evaluate``)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

from prune_rl.config import ConfigError, TrainConfig
from prune_rl.environment import make_env
from prune_rl.runner import rundir


def evaluate(
    model: BaseAlgorithm, cfg: TrainConfig, train_env: Any = None, vecnormalize: str | Path | None = None
) -> dict[str, Any]:
    """
    Evaluate a model on a fresh environment seeded with ``seed + eval.seed_offset``.

    :param model: The model.
    :param cfg: Run config.
    :param train_env: Training env whose normalisation statistics to use, if any.
    :param vecnormalize: Or a saved ``vecnormalize.pkl``.
    :return: ``{mean_return, std_return, n_episodes, deterministic}``.
    """
    eval_env = make_env(cfg.env, seed=cfg.seed + cfg.eval.seed_offset, n_envs=1, training=False)
    if isinstance(eval_env, VecNormalize):
        if train_env is not None:
            sync_envs_normalization(train_env, eval_env)
        elif vecnormalize is not None:
            eval_env = VecNormalize.load(str(vecnormalize), eval_env.venv)
            eval_env.training, eval_env.norm_reward = False, False
    returns, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=cfg.eval.n_episodes, deterministic=cfg.eval.deterministic, return_episode_rewards=True
    )
    eval_env.close()
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "n_episodes": cfg.eval.n_episodes,
        "deterministic": cfg.eval.deterministic,
    }


class TimedEvalCallback(EvalCallback):
    """SB3's ``EvalCallback`` that also adds up the seconds it spends evaluating, and continues a resumed run's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = 0.0

    def resume(self, run_dir: Path, n_calls: int) -> None:
        """
        Continue the evaluations of a run that stopped: the same schedule, its evaluations extended.

        :param run_dir: The run directory.
        :param n_calls: Steps the callback had seen.
        """
        self.n_calls = n_calls
        saved = rundir.read_evaluations(run_dir)
        if saved is not None:
            self.evaluations_timesteps = saved["timesteps"].tolist()
            self.evaluations_results = saved["results"].tolist()
            self.evaluations_length = saved["ep_lengths"].tolist()

    def _on_step(self) -> bool:
        start = time.perf_counter()
        try:
            return super()._on_step()
        finally:
            self.seconds += time.perf_counter() - start


def evaluate_run(
    run_dir: str | Path, n_episodes: int | None = None, seed: int | None = None, deterministic: bool = True
) -> dict[str, Any]:
    """
    Load a run directory's model (and its normalisation statistics) and evaluate it.

    :param run_dir: The run directory.
    :param n_episodes: Episodes (default: the run's ``eval.n_episodes``).
    :param seed: Seed of the evaluation env (default: the run's ``seed + eval.seed_offset``).
    :param deterministic: Act deterministically.
    :return: ``{env_id, algo, mean_return, std_return, n_episodes, deterministic}``.
    :raises ConfigError: If ``n_episodes`` is below 1 (a mean over no episode is ``nan``), or the run does not load.
    :raises FileNotFoundError: If ``run_dir`` is not a run directory.
    """
    if n_episodes is not None and n_episodes < 1:
        raise ConfigError(f"n_episodes must be >= 1, got {n_episodes}")
    missing = rundir.missing_file(run_dir)
    if missing is not None:
        raise FileNotFoundError(f"{run_dir} is not a run directory: {missing} is missing")
    cfg = rundir.read_config(run_dir, lenient_pruning=True)
    eval_cfg = dataclasses.replace(
        cfg.eval,
        n_episodes=cfg.eval.n_episodes if n_episodes is None else n_episodes,
        deterministic=deterministic,
        seed_offset=cfg.eval.seed_offset if seed is None else seed - cfg.seed,
    )
    cfg = dataclasses.replace(cfg, eval=eval_cfg)
    model = rundir.load_model(run_dir, cfg)
    result = evaluate(model, cfg, vecnormalize=rundir.vecnormalize_file(run_dir, cfg))
    return {"env_id": cfg.env.id, "algo": cfg.algo.name, **result}
