"""One training run, in three steps: :func:`prepare` a fresh or resumed run, :func:`learn`, :func:`finish`.

Prepare builds the environment and the model (new, a trained agent's to fine-tune, or a checkpoint's to resume) and
the callbacks; learn runs ``model.learn`` to the budget, writing checkpoints; finish saves the agent, evaluates it and
writes ``results.json`` (:class:`TrainResults`). Every file goes through :mod:`prune_rl.runner.rundir`.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, HParam, Logger, configure

from prune_rl.agent import load_agent, log_loaded
from prune_rl.config import ConfigError, TrainConfig
from prune_rl.core import compact_weight_count
from prune_rl.environment import make_env
from prune_rl.methods import Pruner
from prune_rl.registry import ALGOS
from prune_rl.report.hparams import final_metrics, hparams
from prune_rl.runner import rundir
from prune_rl.runner.build import (
    build_pruned_model,
    build_pruner,
    check_fine_tuning,
    dense_widths,
    prune_after_warmup,
    start_from_run,
)
from prune_rl.runner.checkpoint import (
    CheckpointCallback,
    Interrupted,
    StopSignals,
    latest_checkpoint,
    load_checkpoint,
    load_pruning,
    read_state,
    remove_checkpoints,
)
from prune_rl.runner.evaluate import TimedEvalCallback, evaluate
from prune_rl.sb3.callback import PruningCallback
from prune_rl.sb3.divergence import DivergenceCallback, Diverged, distribution_error
from prune_rl.sb3.networks import prunable_nets
from prune_rl.sb3.timing import PhaseTimeCallback

log = logging.getLogger(__name__)


@dataclass
class TrainResults:
    """
    What a run measured: the content of its ``results.json``, in this order.

    :param run_name: ``{env}__{algo}__{pruning}__seed{k}``.
    :param env_id: Gymnasium id.
    :param algo: Algorithm name.
    :param pruning: The ``pruning`` option.
    :param pruning_method: Its method (``none`` for dense runs).
    :param config_files: The config files the composition read.
    :param seed: Seed.
    :param n_timesteps: Training budget.
    :param timesteps: Timesteps trained (the model's counter).
    :param start_from: A run whose trained agent stood for the first ``start_timesteps`` (``pruning.from_run``).
    :param init_model: A trained agent this run fine-tuned (``prune-rl prune``).
    :param start_timesteps: Where training started.
    :param wall_seconds: All of ``learn()``, periodic evaluations included, over every resumption.
    :param eval_seconds: Of which periodic evaluations.
    :param train_seconds: ``wall_seconds - eval_seconds``.
    :param fps: Training steps per training second.
    :param phase_seconds: Where ``learn()`` went: env steps, rollouts (env in), gradients.
    :param checkpoint_seconds: Spent writing checkpoints (in the last process).
    :param resumed: Whether the run was resumed from a checkpoint.
    :param eval: The final evaluation: ``mean_return``, ``std_return``, ``n_episodes``, ``deterministic``.
    :param guard: The guard's decisions (``None`` without it).
    :param prune_seconds: Spent in pruning events.
    :param shrink_seconds: Spent shrinking networks.
    :param widths: Hidden widths per network at the end.
    :param pruning_events: Pruning events.
    :param pruning_summary: The method's own figures.
    :param sparsity: Per network (``None`` for dense runs).
    :param versions: Of prune_rl, python, torch, stable_baselines3, gymnasium, numpy.
    :param git_commit: Of the code (``+dirty`` with uncommitted changes; ``None`` outside git).
    :param device: Where it trained.
    """

    run_name: str
    env_id: str
    algo: str
    pruning: str
    pruning_method: str
    config_files: list[str]
    seed: int
    n_timesteps: int
    timesteps: int
    start_from: str | None
    init_model: str | None
    start_timesteps: int
    wall_seconds: float
    eval_seconds: float
    train_seconds: float
    fps: float
    phase_seconds: dict[str, float]
    checkpoint_seconds: float
    resumed: bool
    eval: dict[str, Any]
    guard: dict[str, Any] | None = None
    prune_seconds: float = 0.0
    shrink_seconds: float = 0.0
    widths: dict[str, list[int]] | None = None
    pruning_events: int = 0
    pruning_summary: dict[str, Any] = field(default_factory=dict)
    sparsity: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        """:return: The content of ``results.json``."""
        return dataclasses.asdict(self)


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


def make_logger(run_dir: Path, progress_bar: bool, resumed_at: int | None = None) -> Logger:
    """
    SB3's logger writing TensorBoard events and the CSV log into the run directory.

    :param run_dir: The run directory.
    :param progress_bar: Whether a progress bar replaces the table printed to stdout.
    :param resumed_at: When a run resumes, the checkpoint's timesteps: the CSV log keeps its rows up to there and
        continues (:func:`prune_rl.runner.rundir.progress_until`).
    :return: The logger.
    """
    kept = rundir.progress_until(run_dir, resumed_at) if resumed_at is not None else []
    logger = configure(str(run_dir), ["tensorboard", "csv"] if progress_bar else ["stdout", "tensorboard", "csv"])
    if kept:  # SB3 opened the CSV log anew: write back the rows up to the checkpoint
        for fmt in logger.output_formats:
            if isinstance(fmt, CSVOutputFormat):
                fmt.file.write("\n".join(kept) + "\n")
                fmt.file.flush()
                fmt.keys = kept[0].split(",")
    return logger


def _show_progress_bar(setting: bool | str) -> bool:
    return sys.stderr.isatty() if setting == "auto" else bool(setting)


@dataclass
class PreparedRun:
    """
    A run ready to learn: its model, environment and callbacks, and where it starts.

    :param cfg: The run's config (``pruning.begin`` moved past an off-policy warm-up, see :func:`prune_after_warmup`).
    :param run_dir: The run directory.
    :param model: The model to train.
    :param env: Its training environment.
    :param callbacks: Timing, divergence, pruning and evaluation callbacks, in the order they act.
    :param phases: The timing callback.
    :param pruning: The pruning callback (``None`` for dense runs).
    :param evaluator: The periodic evaluations (``None`` with ``eval.freq=0``).
    :param start_from: An earlier run whose agent this one continues (``pruning.from_run``).
    :param start_timesteps: Where training started.
    :param resumed: Whether it continues from a checkpoint.
    :param spent: What the checkpoint says was spent before (``wall_seconds``, ``eval_seconds``, ``phase_seconds``).
    :param origin: :func:`provenance` of the code this process runs.
    """

    cfg: TrainConfig
    run_dir: Path
    model: BaseAlgorithm
    env: Any
    callbacks: list[BaseCallback]
    phases: PhaseTimeCallback
    pruning: PruningCallback | None
    evaluator: TimedEvalCallback | None
    start_from: str | None
    start_timesteps: int
    resumed: bool
    spent: dict[str, Any]
    origin: dict[str, Any]
    started: float = 0.0  # time.perf_counter() when learn() began
    checkpoint_seconds: float = 0.0

    def state(self) -> dict[str, Any]:
        """:return: What a checkpoint holds besides the model (and the final results' timings)."""
        before = self.spent.get("phase_seconds", {})
        return {
            "pruning": self.pruning.state_dict() if self.pruning is not None else None,
            "start_from": self.start_from,
            "start_timesteps": self.start_timesteps,
            "wall_seconds": float(self.spent.get("wall_seconds", 0.0)) + time.perf_counter() - self.started,
            "eval_seconds": float(self.spent.get("eval_seconds", 0.0))
            + (self.evaluator.seconds if self.evaluator is not None else 0.0),
            "eval_calls": self.evaluator.n_calls if self.evaluator is not None else 0,
            "phase_seconds": {k: v + before.get(k, 0.0) for k, v in self.phases.results().items()},
        }


def _model(cfg: TrainConfig, env: Any, folder: Path | None) -> tuple[BaseAlgorithm, Any, TrainConfig, Pruner | None]:
    """
    The model to train: a checkpoint's (``folder``), a trained agent's (``init.model``) or a new one; and the pruner.

    :return: The model, the environment (a loaded one's own), the config (:func:`prune_after_warmup`), the pruner.
    """
    model: BaseAlgorithm | None = None
    if folder is not None:
        model, env = load_checkpoint(folder, ALGOS[cfg.algo.name], env, cfg.device)
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
        log_path=str(run_dir),  # SB3 writes its evaluations there (rundir.EVALUATIONS_FILE)
        verbose=0,
    )
    if resumed_calls is not None:
        evaluator.resume(run_dir, resumed_calls)
    return evaluator


def prepare(cfg: TrainConfig, run_dir: Path, resume: bool = False) -> PreparedRun:
    """
    Build a fresh run, or load a stopped one from its latest checkpoint.

    :param cfg: Validated run config.
    :param run_dir: The run directory.
    :param resume: Continue from the run directory's latest checkpoint.
    :return: The run, ready to learn.
    :raises ConfigError: If there is no checkpoint to resume from, or a check refuses the run (one line).
    """
    folder = latest_checkpoint(run_dir) if resume else None
    if resume and folder is None:
        raise ConfigError(f"{run_dir} has no checkpoint to resume from")
    saved = read_state(folder) if folder is not None else {}
    env = make_env(cfg.env, seed=cfg.seed, gamma=cfg.algo.kwargs.get("gamma", 0.99))
    model, env, cfg, pruner = _model(cfg, env, folder)
    model.set_logger(make_logger(run_dir, _show_progress_bar(cfg.progress_bar), saved.get("timesteps")))

    phases = PhaseTimeCallback()
    callbacks: list[BaseCallback] = [phases, DivergenceCallback()]  # before pruning and checkpoints act on NaNs
    pruning = PruningCallback(pruner, total_timesteps=cfg.n_timesteps) if pruner is not None else None
    if pruning is not None:
        if folder is not None:
            pruning.load_state_dict(load_pruning(folder))
        callbacks.append(pruning)
    evaluator = _evaluator(cfg, run_dir, saved.get("eval_calls") if folder is not None else None)
    if evaluator is not None:
        callbacks.append(evaluator)

    if folder is not None:
        source, done = saved.get("start_from"), int(saved["start_timesteps"])
        log.info("resuming %s in %s at %d of %d timesteps", cfg.run_name, run_dir, model.num_timesteps, cfg.n_timesteps)
    else:
        source = pruner.start_from() if pruner is not None else None
        tuned = f"fine-tuning {cfg.init.model}'s agent for {cfg.n_timesteps} timesteps: " if cfg.init.model else "training "
        log.info("%s%s in %s", tuned, cfg.run_name, run_dir)
        if cfg.config_files:
            log.info("config files: %s", ", ".join(cfg.config_files))
        done = start_from_run(model, env, cfg, source) if source else 0
        if source:
            log.info("starting from %s's agent at %d of %d timesteps", source, done, cfg.n_timesteps)
        model.num_timesteps = done
    return PreparedRun(
        cfg=cfg,
        run_dir=run_dir,
        model=model,
        env=env,
        callbacks=callbacks,
        phases=phases,
        pruning=pruning,
        evaluator=evaluator,
        start_from=source,
        start_timesteps=done,
        resumed=folder is not None,
        spent=saved,
        origin=provenance(model),  # the code this process runs: taken before training, which may outlast commits
    )


def learn(run: PreparedRun) -> None:
    """
    ``model.learn`` up to the budget, writing a checkpoint every ``checkpoint.every`` of it.

    :param run: A prepared run.
    :raises Interrupted: If a stop signal came (after a checkpoint was written).
    :raises Diverged: If a NaN or inf appeared in the parameters or losses (the last checkpoint is kept).
    """
    cfg, model = run.cfg, run.model
    run.started = time.perf_counter()
    with StopSignals() as signals:
        checkpoints = CheckpointCallback(run.run_dir, cfg.checkpoint.every, cfg.n_timesteps, signals, run.state)
        try:
            model.learn(
                total_timesteps=cfg.n_timesteps - model.num_timesteps,
                callback=[*run.callbacks, checkpoints],  # checkpoints last: after the pruning event at a rollout's start
                progress_bar=_show_progress_bar(cfg.progress_bar),
                reset_num_timesteps=not run.resumed and not run.start_timesteps,
            )
        except (Diverged, ValueError) as exc:
            run.env.close()
            found = exc if isinstance(exc, Diverged) else distribution_error(exc, model.num_timesteps)
            if found is None:
                raise
            raise found from None
    run.checkpoint_seconds = checkpoints.seconds
    if checkpoints.stopped:
        assert signals.received is not None
        run.env.close()
        signals.chain()  # e.g. submitit's requeue on SLURM
        raise Interrupted(signals.received, checkpoints.saved_at)


def finish(run: PreparedRun) -> TrainResults:
    """
    Save the trained agent, evaluate it, and write its results; the checkpoints go.

    :param run: A run that learned to its budget.
    :return: Its results (also in ``results.json``).
    """
    cfg, model = run.cfg, run.model
    state = run.state()
    wall, eval_seconds = state["wall_seconds"], state["eval_seconds"]
    rundir.save_agent(run.run_dir, model, run.env, run.pruning)
    final = evaluate(model, cfg, train_env=run.env)
    pruned = run.pruning.results() if run.pruning is not None else {"widths": dense_widths(model)}
    results = TrainResults(
        run_name=cfg.run_name,
        env_id=cfg.env.id,
        algo=cfg.algo.name,
        pruning=cfg.pruning.name,
        pruning_method=cfg.pruning.method,
        config_files=cfg.config_files,
        seed=cfg.seed,
        n_timesteps=cfg.n_timesteps,
        timesteps=int(model.num_timesteps),
        start_from=run.start_from,
        init_model=cfg.init.model,
        start_timesteps=run.start_timesteps,
        wall_seconds=wall,
        eval_seconds=eval_seconds,
        train_seconds=wall - eval_seconds,
        fps=(model.num_timesteps - run.start_timesteps) / max(wall - eval_seconds, 1e-9),
        phase_seconds=state["phase_seconds"],
        checkpoint_seconds=run.checkpoint_seconds,
        resumed=run.resumed,
        eval=final,
        **pruned,
        **run.origin,
    )
    rundir.write_results(run.run_dir, results.to_dict())
    log_hparams(model, cfg, results.to_dict())
    remove_checkpoints(run.run_dir)  # the run is complete: its results replace them (a replay buffer can take GBs)
    log.info(
        "%s: return %.1f +- %.1f over %d episodes, %.0f s",
        cfg.run_name,
        final["mean_return"],
        final["std_return"],
        final["n_episodes"],
        wall,
    )
    short = (results.guard or {}).get("short")
    if short:
        log.warning("%s: guard: %s", cfg.run_name, short)
    run.env.close()
    return results


def run(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResults:
    """
    Train, save and evaluate one agent, writing everything into ``run_dir``.

    Training writes a checkpoint every ``checkpoint.every`` of the budget, and one when SIGTERM, SIGUSR1 or SIGINT
    arrives, after which it stops and :class:`prune_rl.runner.checkpoint.Interrupted` is raised. A NaN or inf in the
    parameters or losses stops it with :class:`prune_rl.sb3.divergence.Diverged` (the last checkpoint is kept).

    :param cfg: Validated run config.
    :param run_dir: Run directory (created if needed).
    :param resume: Continue from the run directory's latest checkpoint to the configured budget.
    :return: Its results (also in ``results.json``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    prepared = prepare(cfg, run_dir, resume)
    learn(prepared)
    return finish(prepared)


def resume(run_dir: Path) -> TrainResults:
    """
    Continue a stopped run from its latest checkpoint, in its own directory, to its configured budget
    (``prune-rl resume``), appending to its ``train.log``.

    :param run_dir: The run directory.
    :return: Its results.
    :raises ConfigError: If it is not a run directory, finished already, or has no checkpoint (one line).
    """
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory")
    if not (run_dir / rundir.CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run directory ({rundir.CONFIG_FILE} is missing)")
    if rundir.is_finished(run_dir) and rundir.missing_file(run_dir) is None:
        raise ConfigError(f"{run_dir} finished already (it has {rundir.RESULTS_FILE}); nothing to resume")
    if latest_checkpoint(run_dir) is None:
        raise ConfigError(f"{run_dir} has no checkpoint to resume from (checkpoint.every was 0 and no signal came)")
    cfg = rundir.read_config(run_dir)
    file_log = logging.FileHandler(run_dir / rundir.LOG_FILE)
    file_log.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(file_log)
    logging.getLogger().setLevel(logging.INFO)
    try:
        return run(cfg, run_dir, resume=True)
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()
