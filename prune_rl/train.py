"""One training run: build env -> build model -> attach callbacks -> learn -> save -> evaluate -> write results."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import CSVOutputFormat, HParam, Logger, configure
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

from prune_rl.agent import load_agent, log_loaded
from prune_rl.checkpoint import (
    CheckpointCallback,
    Interrupted,
    StopSignals,
    latest_checkpoint,
    load_env,
    load_rng,
    remove_checkpoints,
)
from prune_rl.config import ConfigError, TrainConfig
from prune_rl.core import compact_weight_count
from prune_rl.environment import action_kind, make_env
from prune_rl.methods import Pruner
from prune_rl.pruners import PRUNERS
from prune_rl.registry import ACTION_SPACES, ALGOS, algo_kwargs
from prune_rl.report.hparams import final_metrics, hparams
from prune_rl.rundir import atomic, missing_file
from prune_rl.sb3.callback import PruningCallback
from prune_rl.sb3.networks import net_arch, prunable_nets
from prune_rl.sb3.divergence import DivergenceCallback, Diverged, distribution_error
from prune_rl.sb3.deployed import widen_
from prune_rl.sb3.timing import PhaseTimeCallback

log = logging.getLogger(__name__)

MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
MASKS_FILE = "masks.pt"
PRUNER_FILE = "pruner.pt"
RESULTS_FILE = "results.json"
DENSE_RESULTS: dict[str, Any] = {
    "guard": None,
    "prune_seconds": 0.0,
    "shrink_seconds": 0.0,
    "widths": None,
    "pruning_events": 0,
    "pruning_summary": {},
    "sparsity": None,
}


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
    run_dir = Path(run_dir)
    where = f"pruning.from_run={run_dir}"
    missing = missing_file(run_dir)
    if missing is not None:
        raise ConfigError(f"{where} is not a run directory ({missing} is missing)")
    try:
        earlier = OmegaConf.load(run_dir / "config.yaml")
        trained = (OmegaConf.select(earlier, "algo.name"), OmegaConf.select(earlier, "env.id"))
    except Exception as exc:  # a truncated or corrupt file: any parser error
        raise ConfigError(f"{where}: config.yaml does not read ({str(exc).splitlines()[0]})") from None
    if trained != (cfg.algo.name, cfg.env.id):
        raise ConfigError(f"{where} trained {trained[0]} on {trained[1]}, not {cfg.algo.name} on {cfg.env.id}")
    if bool(OmegaConf.select(earlier, "env.normalize")) != cfg.env.normalize:
        raise ConfigError(f"{where} trained with env.normalize={not cfg.env.normalize}, this run has {cfg.env.normalize}")
    if isinstance(model, OffPolicyAlgorithm):  # its replay buffer is not saved: the run would restart it empty
        raise ConfigError(f"pruning.from_run needs an on-policy algorithm (ppo, a2c), not {cfg.algo.name}")
    try:
        model.set_parameters(str(run_dir / MODEL_FILE), exact_match=True, device=model.device)
    except Exception as exc:  # a corrupt zip or other network shapes
        try:  # a run shrunk while training: its masked networks at this run's widths
            narrow = ALGOS[cfg.algo.name].load(run_dir / MODEL_FILE, device=model.device)
            widen_(model, narrow, torch.load(run_dir / MASKS_FILE, map_location=model.device, weights_only=True))
        except Exception:
            raise ConfigError(
                f"{where}: its model does not load into this run's networks ({str(exc).splitlines()[0]})"
            ) from None
    if isinstance(env, VecNormalize):
        path = run_dir / VECNORMALIZE_FILE
        if not path.is_file():
            raise ConfigError(f"{where} has no {VECNORMALIZE_FILE}, which env.normalize needs")
        saved = VecNormalize.load(str(path), env.venv)
        env.obs_rms, env.ret_rms = saved.obs_rms, saved.ret_rms
    return int(cfg.pruning.begin * cfg.n_timesteps)


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


def _widths(model: BaseAlgorithm) -> dict[str, list[int]] | None:
    """:return: A dense model's hidden widths per network (reports draw them beside the pruned runs')."""
    try:
        return {net.name: [layer.n_neurons for layer in net.layers] for net in prunable_nets(model)}
    except ValueError:  # a policy without neuron groups (gSDE)
        return None


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


class TimedEvalCallback(EvalCallback):
    """SB3's ``EvalCallback`` that also adds up the seconds it spends evaluating, and continues a resumed run's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = 0.0

    def resume(self, run_dir: Path, n_calls: int) -> None:
        """
        Continue the evaluations of a run that stopped: the same schedule, ``evaluations.npz`` extended.

        :param run_dir: The run directory.
        :param n_calls: Steps the callback had seen.
        """
        self.n_calls = n_calls
        path = run_dir / "evaluations.npz"
        if path.is_file():
            with np.load(path) as saved:
                self.evaluations_timesteps = saved["timesteps"].tolist()
                self.evaluations_results = saved["results"].tolist()
                self.evaluations_length = saved["ep_lengths"].tolist()

    def _on_step(self) -> bool:
        start = time.perf_counter()
        try:
            return super()._on_step()
        finally:
            self.seconds += time.perf_counter() - start


def _show_progress_bar(setting: bool | str) -> bool:
    return sys.stderr.isatty() if setting == "auto" else bool(setting)


def evaluate(model: BaseAlgorithm, cfg: TrainConfig, train_env: Any = None, vecnormalize: str | Path | None = None) -> dict:
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


def provenance(model: BaseAlgorithm) -> dict[str, Any]:
    """
    What reproduces a run besides its config: versions, the git commit of the code, the device it trained on.

    :param model: The trained model.
    :return: ``versions`` (prune_rl, python, torch, stable_baselines3, gymnasium, numpy), ``git_commit`` (``None``
        outside a git checkout; ``+dirty`` when it had uncommitted changes) and ``device``.
    """
    import platform
    import subprocess

    import gymnasium
    import stable_baselines3

    import prune_rl

    root = Path(prune_rl.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, timeout=10)  # fmt: skip
        git_commit = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        git_commit = None
    versions = {
        "prune_rl": prune_rl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }
    return {"versions": versions, "git_commit": git_commit or None, "device": str(model.device)}


def log_hparams(model: BaseAlgorithm, cfg: TrainConfig, results: dict[str, Any]) -> None:
    """
    Write the run's row of TensorBoard's HParams tab: its choices and its ``final/`` metrics, logged as scalars too.

    :param model: The trained model (its logger writes to the run directory).
    :param cfg: The run's config.
    :param results: The run's ``results.json`` content.
    """
    dense_weights = compact_weight_count(prunable_nets(model)[0]) if results["sparsity"] is None else 0
    metrics = final_metrics(results, dense_weights)
    for tag, value in metrics.items():
        model.logger.record(tag, value, exclude=("json", "csv"))  # progress.csv keeps the training's columns
    model.logger.record("hparams", HParam(hparams(cfg), dict(metrics)), exclude=("stdout", "log", "json", "csv"))
    model.logger.dump(model.num_timesteps)


def _logger(run_dir: Path, progress_bar: bool, resumed_at: int | None = None) -> Logger:
    """
    SB3's logger writing TensorBoard events and ``progress.csv``.

    :param run_dir: The run directory.
    :param progress_bar: Whether a progress bar replaces the table printed to stdout.
    :param resumed_at: When a run resumes, the checkpoint's timesteps: ``progress.csv`` keeps its rows up to there
        and continues (rows written after the checkpoint, before the run stopped, are dropped).
    :return: The logger.
    """
    csv_file = run_dir / "progress.csv"
    rows = csv_file.read_text().splitlines() if resumed_at is not None and csv_file.is_file() else []
    logger = configure(str(run_dir), ["tensorboard", "csv"] if progress_bar else ["stdout", "tensorboard", "csv"])
    if rows and resumed_at is not None:  # SB3 opened progress.csv anew: write back the rows up to the checkpoint
        keys = rows[0].split(",")
        column = keys.index("time/total_timesteps") if "time/total_timesteps" in keys else None
        kept = [r for r in rows[1:] if column is None or not r.split(",")[column] or int(r.split(",")[column]) <= resumed_at]
        for fmt in logger.output_formats:
            if isinstance(fmt, CSVOutputFormat):
                fmt.file.write("\n".join([rows[0], *kept]) + "\n")
                fmt.file.flush()
                fmt.keys = keys
    return logger


def _resume_model(cfg: TrainConfig, env: Any, folder: Path) -> tuple[BaseAlgorithm, Any]:
    """Load a checkpoint's model, environments, replay buffer and random states."""
    env, restored = load_env(folder, env)
    if not restored:
        log.warning("%s: the environments could not be saved; the resumed run starts new episodes", folder)
    try:
        model = ALGOS[cfg.algo.name].load(folder / MODEL_FILE, env=env, device=cfg.device, force_reset=not restored)
    except Exception as exc:  # a corrupt zip: any reader error
        raise ConfigError(f"{folder / MODEL_FILE} does not load ({str(exc).splitlines()[0]})") from None
    if isinstance(model, OffPolicyAlgorithm):
        model.load_replay_buffer(folder / "replay_buffer.pkl")
    load_rng(torch.load(folder / "rng.pt", weights_only=False), model)
    return model, env


def _start(cfg: TrainConfig, env: Any, folder: Path | None) -> tuple[BaseAlgorithm, Any, TrainConfig, Pruner | None]:
    """
    The model to train: a checkpoint's (``folder``), a trained agent's (``init.model``) or a new one; and the pruner.

    :return: The model, the environment (a loaded one's own), the config (:func:`prune_after_warmup`), the pruner.
    """
    model: BaseAlgorithm | None = None
    if folder is not None:
        model, env = _resume_model(cfg, env, folder)
    elif cfg.init.model is not None:
        model, env = load_agent(cfg, env)
    if model is not None and cfg.init.model is not None:
        cfg = prune_after_warmup(cfg, model)
    pruner = build_pruner(cfg)
    if model is None:
        model = build_pruned_model(cfg, env, pruner)
    elif folder is None:
        if pruner is not None:
            check_fine_tuning(pruner, model)
        log_loaded(cfg, model)
    return model, env, cfg, pruner


def _evaluator(cfg: TrainConfig, run_dir: Path, resumed_calls: int | None) -> TimedEvalCallback | None:
    """The periodic evaluations (``None`` if ``eval.freq`` is 0), continuing a resumed run's if it is one."""
    if cfg.eval.freq <= 0:
        return None
    evaluator = TimedEvalCallback(
        make_env(cfg.env, seed=cfg.seed + cfg.eval.seed_offset, n_envs=1, training=False),
        eval_freq=max(cfg.n_timesteps // (cfg.eval.freq * cfg.env.n_envs), 1),
        n_eval_episodes=cfg.eval.n_episodes,
        deterministic=cfg.eval.deterministic,
        log_path=str(run_dir),
        verbose=0,
    )
    if resumed_calls is not None:
        evaluator.resume(run_dir, resumed_calls)
    return evaluator


def _learn(
    model: BaseAlgorithm, env: Any, budget: int, callbacks: list[BaseCallback], progress_bar: bool, reset: bool
) -> None:
    """``model.learn`` up to ``budget`` timesteps; a divergence met inside SB3 is raised as :class:`Diverged`."""
    try:
        model.learn(
            total_timesteps=budget - model.num_timesteps,
            callback=callbacks,
            progress_bar=progress_bar,
            reset_num_timesteps=reset,
        )
    except (Diverged, ValueError) as exc:
        env.close()
        found = exc if isinstance(exc, Diverged) else distribution_error(exc, model.num_timesteps)
        if found is None:
            raise
        raise found from None


def run(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> dict:
    """
    Train, save and evaluate one agent, writing everything into ``run_dir``.

    Training writes a checkpoint every ``checkpoint.every`` of the budget, and one when SIGTERM, SIGUSR1 or SIGINT
    arrives, after which it stops and :class:`prune_rl.checkpoint.Interrupted` is raised. A NaN or inf in the
    parameters or losses stops it with :class:`prune_rl.sb3.divergence.Diverged` (the last checkpoint is kept).

    :param cfg: Validated run config.
    :param run_dir: Run directory (created if needed).
    :param resume: Continue from the run directory's latest checkpoint to the configured budget.
    :return: The content of ``results.json``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    folder = latest_checkpoint(run_dir) if resume else None
    if resume and folder is None:
        raise ConfigError(f"{run_dir} has no checkpoint to resume from")
    saved: dict[str, Any] = json.loads((folder / "state.json").read_text()) if folder is not None else {}

    gamma = cfg.algo.kwargs.get("gamma", 0.99)
    env = make_env(cfg.env, seed=cfg.seed, gamma=gamma)
    model, env, cfg, pruner = _start(cfg, env, folder)
    progress_bar = _show_progress_bar(cfg.progress_bar)
    model.set_logger(_logger(run_dir, progress_bar, model.num_timesteps if folder is not None else None))

    phases = PhaseTimeCallback()
    callbacks: list[BaseCallback] = [phases, DivergenceCallback()]  # before pruning and checkpoints act on NaNs
    pruning = PruningCallback(pruner, total_timesteps=cfg.n_timesteps) if pruner is not None else None
    if pruning is not None:
        if folder is not None:
            pruning.load_state_dict(torch.load(folder / "pruning.pt", weights_only=False))
        callbacks.append(pruning)
    evaluator = _evaluator(cfg, run_dir, saved.get("eval_calls") if folder is not None else None)
    if evaluator is not None:
        callbacks.append(evaluator)

    source = saved.get("start_from") if folder is not None else (pruner.start_from() if pruner is not None else None)
    if folder is not None:
        done = int(saved["start_timesteps"])
        log.info("resuming %s in %s at %d of %d timesteps", cfg.run_name, run_dir, model.num_timesteps, cfg.n_timesteps)
    else:
        tuned = f"fine-tuning {cfg.init.model}'s agent for {cfg.n_timesteps} timesteps: " if cfg.init.model else "training "
        log.info("%s%s in %s", tuned, cfg.run_name, run_dir)
        if cfg.config_files:
            log.info("config files: %s", ", ".join(cfg.config_files))
        done = start_from_run(model, env, cfg, source) if source else 0
        if source:
            log.info("starting from %s's agent at %d of %d timesteps", source, done, cfg.n_timesteps)
        model.num_timesteps = done
    spent = {key: float(saved.get(key, 0.0)) for key in ("wall_seconds", "eval_seconds")}
    origin = provenance(model)  # the code this process runs: taken before training, which may outlast commits
    start = time.perf_counter()

    def states() -> dict[str, Any]:
        return {
            "pruning": pruning.state_dict() if pruning is not None else None,
            "start_from": source,
            "start_timesteps": done,
            "wall_seconds": spent["wall_seconds"] + time.perf_counter() - start,
            "eval_seconds": spent["eval_seconds"] + (evaluator.seconds if evaluator is not None else 0.0),
            "eval_calls": evaluator.n_calls if evaluator is not None else 0,
            "phase_seconds": {k: v + saved.get("phase_seconds", {}).get(k, 0.0) for k, v in phases.results().items()},
        }

    with StopSignals() as signals:
        checkpoints = CheckpointCallback(run_dir, cfg.checkpoint.every, cfg.n_timesteps, signals, states)
        callbacks.append(checkpoints)  # last: it saves what the pruning event at a rollout's start did
        _learn(model, env, cfg.n_timesteps, callbacks, progress_bar, reset=folder is None and not done)
    if checkpoints.stopped:
        assert signals.received is not None
        env.close()
        signals.chain()  # e.g. submitit's requeue on SLURM
        raise Interrupted(signals.received, checkpoints.saved_at)
    final_state = states()
    wall = final_state["wall_seconds"]
    eval_seconds = final_state["eval_seconds"]

    with atomic(run_dir / MODEL_FILE) as tmp:
        model.save(tmp)
    if isinstance(env, VecNormalize):
        with atomic(run_dir / VECNORMALIZE_FILE) as tmp:
            env.save(str(tmp))
    if pruning is not None:
        with atomic(run_dir / MASKS_FILE) as tmp:
            pruning.save_masks(tmp)
        with atomic(run_dir / PRUNER_FILE) as tmp:
            pruning.save_state(tmp)

    final = evaluate(model, cfg, train_env=env)
    results: dict[str, Any] = {
        "run_name": cfg.run_name,
        "env_id": cfg.env.id,
        "algo": cfg.algo.name,
        "pruning": cfg.pruning.name,
        "pruning_method": cfg.pruning.method,
        "config_files": cfg.config_files,
        "seed": cfg.seed,
        "n_timesteps": cfg.n_timesteps,
        "timesteps": int(model.num_timesteps),
        "start_from": source,  # a run whose trained agent stood for the first start_timesteps (from_run)
        "init_model": cfg.init.model,  # a trained agent this run fine-tuned (prune-rl prune)
        "start_timesteps": done,
        "wall_seconds": wall,  # all of learn(), periodic evaluations included
        "eval_seconds": eval_seconds,  # of which periodic evaluations
        "train_seconds": wall - eval_seconds,
        "fps": (model.num_timesteps - done) / max(wall - eval_seconds, 1e-9),  # training steps per training second
        "phase_seconds": final_state["phase_seconds"],  # where learn() went: env steps, rollouts (env in), gradients
        "checkpoint_seconds": checkpoints.seconds,
        "resumed": resume,
        "eval": final,
        # of training: pruning events, the method's own figures, sparsity per network (dense: none)
        **(pruning.results() if pruning is not None else {**DENSE_RESULTS, "widths": _widths(model)}),
        **origin,
    }
    with atomic(run_dir / RESULTS_FILE) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    log_hparams(model, cfg, results)
    remove_checkpoints(run_dir)  # the run is complete: its results replace them (a replay buffer can take GBs)
    log.info(
        "%s: return %.1f +- %.1f over %d episodes, %.0f s",
        cfg.run_name,
        final["mean_return"],
        final["std_return"],
        final["n_episodes"],
        wall,
    )
    if (results["guard"] or {}).get("short"):
        log.warning("%s: guard: %s", cfg.run_name, results["guard"]["short"])
    env.close()
    return results
