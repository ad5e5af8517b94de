"""The run directory: every file a run writes, its name, and how it is read and written. Nothing else names them.

::

    RUN_DIR/
      config.yaml         the composed config, written before training (read back by evaluate, resume, export)
      model.zip           the trained SB3 model
      vecnormalize.pkl    its VecNormalize statistics (runs with env.normalize)
      masks.pt            the pruner's neuron masks (pruned runs)
      pruner.pt           the pruner's state_dict (pruned runs)
      results.json        what the run measured, written last: a run with it is finished
      evaluations.npz     the periodic evaluations (SB3's EvalCallback)
      progress.csv        SB3's CSV log; events.out.tfevents.* its TensorBoard log
      train.log           the log (Hydra's ``<job>.log`` for train; ``prune-rl resume`` appends to train.log)
      error.txt           why a job of a sweep was refused
      checkpoint/         the latest checkpoint of an unfinished run (:mod:`prune_rl.runner.checkpoint`)
      export/             what ``prune-rl export`` writes (:mod:`prune_rl.runner.export`)

Run directories are never shared, never overwritten, and written so that a kill never leaves half a file. A run
claims its directory before it trains: a directory that already holds a run's files is refused (a repeated
``hydra.run.dir`` would otherwise overwrite it and leave stale files beside new ones), and a lock file created with
``O_EXCL`` refuses a second run started into the same directory at the same time. The default directory names end
in microseconds (``conf/train.yaml``), so runs and sweeps started in the same second get directories of their own.
Result files are written to a temporary name and renamed into place, which is atomic on POSIX file systems.

Importing this module stays cheap (no torch or SB3): the CLI and the report use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prune_rl.config import ConfigError, TrainConfig, train_config

if TYPE_CHECKING:
    import numpy as np
    import torch
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from prune_rl.sb3.callback import PruningCallback

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
MASKS_FILE = "masks.pt"
PRUNER_FILE = "pruner.pt"
RESULTS_FILE = "results.json"
EVALUATIONS_FILE = "evaluations.npz"  # SB3's EvalCallback names it after its log_path
PROGRESS_FILE = "progress.csv"  # SB3's CSV logger's name
LOG_FILE = "train.log"
ERROR_FILE = "error.txt"
CHECKPOINT_DIR = "checkpoint"
EXPORT_DIR = "export"
LOCK_FILE = ".prune-rl.lock"

RUN_FILES = (RESULTS_FILE, MODEL_FILE, MASKS_FILE, PRUNER_FILE, CONFIG_FILE)  # a directory holding one holds a run
LOAD_FILES = (CONFIG_FILE, MODEL_FILE)  # what a run directory must hold to be evaluated, exported or continued
SUMMARY_FILES = (RESULTS_FILE, CONFIG_FILE, EVALUATIONS_FILE)  # what a run summary keeps, with PROGRESS_FILE trimmed


def missing_file(run_dir: str | Path) -> str | None:
    """
    :param run_dir: A directory given as a run.
    :return: The first of :data:`LOAD_FILES` it lacks, or ``None`` if it holds a run that can be loaded.
    """
    return next((name for name in LOAD_FILES if not (Path(run_dir) / name).is_file()), None)


def is_finished(run_dir: str | Path) -> bool:
    """:return: Whether the run in ``run_dir`` wrote its results (``results.json`` is written last)."""
    return (Path(run_dir) / RESULTS_FILE).is_file()


def is_run(run_dir: str | Path) -> bool:
    """:return: Whether ``run_dir`` holds a finished run the report can read (results and config)."""
    return is_finished(run_dir) and (Path(run_dir) / CONFIG_FILE).is_file()


def find_finished(path: str | Path) -> list[Path]:
    """
    :param path: A run directory, or a folder holding run directories at any depth.
    :return: The finished runs (:func:`is_run`) it is or holds.
    """
    path = Path(path)
    if is_finished(path):
        return [path] if is_run(path) else []
    return [found.parent for found in path.rglob(RESULTS_FILE) if is_run(found.parent)]


def claim(run_dir: str | Path) -> None:
    """
    Take ``run_dir`` for a new run.

    :param run_dir: The run directory (created if needed).
    :raises ConfigError: If it holds another run's files, or another run is claiming it now (one line).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    held = next((name for name in RUN_FILES if (run_dir / name).exists()), None)
    if held is not None:
        raise ConfigError(f"{run_dir} already holds a run ({held}): pass another hydra.run.dir, or remove it")
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ConfigError(f"{run_dir} is taken by another run started into it: pass another hydra.run.dir") from None
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")


@contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """
    Write a file under a temporary name and rename it into place once complete.

    :param path: The file to write.
    :return: (as a context manager) The temporary path to write to.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --- the config ---


def write_config(run_dir: str | Path, data: dict[str, Any]) -> None:
    """
    :param run_dir: A claimed run directory.
    :param data: The run's resolved config.
    """
    from omegaconf import OmegaConf

    with atomic(Path(run_dir) / CONFIG_FILE) as tmp:
        OmegaConf.save(OmegaConf.create(data), tmp)


def read_config_data(run_dir: str | Path) -> dict[str, Any]:
    """
    :param run_dir: A run directory.
    :return: Its ``config.yaml`` as plain data, unvalidated (enough to read one value of an older run's config).
    :raises ConfigError: If it is missing, does not parse, or holds no mapping (one line).
    """
    from omegaconf import OmegaConf

    path = Path(run_dir) / CONFIG_FILE
    try:
        container = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # a missing, truncated or corrupt file: any reader or parser error
        raise ConfigError(f"{path} does not read ({str(exc).splitlines()[0]})") from None
    if not isinstance(container, dict):
        raise ConfigError(f"{path} does not hold a run's config")
    return {str(k): v for k, v in container.items()}


def read_config(run_dir: str | Path, lenient_pruning: bool = False) -> TrainConfig:
    """
    :param run_dir: A run directory.
    :param lenient_pruning: If the ``pruning`` section no longer reads (a run made with a value since retired),
        keep only its name: enough to evaluate the saved model, which needs no pruning.
    :return: Its saved ``config.yaml``, validated into a :class:`prune_rl.config.TrainConfig`.
    :raises ConfigError: If it does not read or is not a run's config (one line).
    """
    data = read_config_data(run_dir)
    if "env" not in data or "algo" not in data:
        raise ConfigError(f"{Path(run_dir) / CONFIG_FILE} does not hold a run's config (no env or algo section)")
    try:
        return train_config(data)
    except ConfigError:
        pruning = data.get("pruning")
        if not lenient_pruning or not isinstance(pruning, dict):
            raise
        return train_config({**data, "pruning": {"name": pruning.get("name", "none"), "method": "none"}})


# --- the results ---


def write_results(run_dir: str | Path, results: dict[str, Any]) -> None:
    """
    Write ``results.json`` atomically; it is the run's last file, so a run with it is finished.

    :param run_dir: The run directory.
    :param results: What the run measured (JSON-serialisable).
    """
    with atomic(Path(run_dir) / RESULTS_FILE) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """
    :param run_dir: A finished run directory.
    :return: Its ``results.json``.
    """
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def write_error(run_dir: str | Path, message: str) -> None:
    """:param run_dir: The directory of a refused job of a sweep. :param message: Why, in one line."""
    (Path(run_dir) / ERROR_FILE).write_text(message + "\n")


def read_evaluations(run_dir: str | Path) -> dict[str, np.ndarray] | None:
    """
    :param run_dir: A run directory.
    :return: Its periodic evaluations, as SB3's ``EvalCallback`` saved them (``timesteps``, ``results`` and
        ``ep_lengths`` per episode), or ``None``.
    """
    import numpy as np

    path = Path(run_dir) / EVALUATIONS_FILE
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def progress_file(run_dir: str | Path) -> Path:
    """:return: The path of the run's ``progress.csv`` (SB3's CSV log; it may not exist)."""
    return Path(run_dir) / PROGRESS_FILE


def read_progress(run_dir: str | Path) -> list[dict[str, str]]:
    """
    :param run_dir: A run directory.
    :return: The rows of its ``progress.csv`` that have ``time/total_timesteps`` (none without the file).
    """
    import csv

    path = progress_file(run_dir)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("time/total_timesteps")]


def progress_until(run_dir: str | Path, timesteps: int) -> list[str]:
    """
    The lines of ``progress.csv`` a resumed run keeps: its header and the rows up to the checkpoint (rows written
    after the checkpoint, before the run stopped, are dropped).

    :param run_dir: The run directory.
    :param timesteps: The checkpoint's timesteps.
    :return: The header and the kept rows, as lines (none without the file).
    """
    path = progress_file(run_dir)
    rows = path.read_text().splitlines() if path.is_file() else []
    if not rows:
        return []
    keys = rows[0].split(",")
    column = keys.index("time/total_timesteps") if "time/total_timesteps" in keys else None
    kept = [r for r in rows[1:] if column is None or not r.split(",")[column] or int(r.split(",")[column]) <= timesteps]
    return [rows[0], *kept]


# --- the trained agent ---


def save_agent(run_dir: str | Path, model: BaseAlgorithm, env: VecEnv, pruning: PruningCallback | None) -> None:
    """
    Write the trained agent, each file atomically: the model, the VecNormalize statistics, the masks and the
    pruner's state.

    :param run_dir: The run directory.
    :param model: The trained model.
    :param env: The training env (its statistics are saved if it normalises).
    :param pruning: The pruning callback (``None`` for dense runs).
    """
    from stable_baselines3.common.vec_env import VecNormalize

    run_dir = Path(run_dir)
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


def model_file(run_dir: str | Path) -> Path:
    """:return: The path of the run's ``model.zip``."""
    return Path(run_dir) / MODEL_FILE


def load_model(run_dir: str | Path, cfg: TrainConfig) -> BaseAlgorithm:
    """
    :param run_dir: A run directory.
    :param cfg: Its config (:func:`read_config`).
    :return: Its ``model.zip``, on the CPU.
    :raises ConfigError: If the file does not load as the run's algorithm, or acts on other spaces than the run's env.
    """
    from prune_rl.environment import make_env
    from prune_rl.registry import ALGOS

    path = model_file(run_dir)
    if cfg.algo.name not in ALGOS:
        raise ConfigError(f"unknown algo {cfg.algo.name!r} in {Path(run_dir) / CONFIG_FILE}")
    try:
        model = ALGOS[cfg.algo.name].load(path, device="cpu")
    except Exception as exc:  # a truncated or corrupt zip, or another algorithm's: any reader error
        raise ConfigError(f"{path} does not load as {cfg.algo.name} ({str(exc).splitlines()[0]})") from None
    env = make_env(cfg.env, seed=0, n_envs=1, training=False)
    spaces = (env.observation_space, env.action_space)
    env.close()
    if (model.observation_space, model.action_space) != spaces:
        raise ConfigError(
            f"{path} acts on {model.observation_space} -> {model.action_space}, "
            f"but {cfg.env.id} has {spaces[0]} -> {spaces[1]}"
        )
    return model


def vecnormalize_file(run_dir: str | Path, cfg: TrainConfig) -> Path | None:
    """
    :param run_dir: A run directory.
    :param cfg: Its config.
    :return: Its ``vecnormalize.pkl`` if the run normalised its observations, else ``None``.
    :raises ConfigError: If it normalised and the file is missing.
    """
    if not cfg.env.normalize:
        return None
    path = Path(run_dir) / VECNORMALIZE_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} trained with env.normalize but {VECNORMALIZE_FILE} is missing")
    return path


def has_masks(run_dir: str | Path) -> bool:
    """:return: Whether the run was pruned (it saved its masks)."""
    return (Path(run_dir) / MASKS_FILE).is_file()


def load_masks(run_dir: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """
    :param run_dir: A pruned run directory.
    :param device: Where to load them.
    :return: Its ``masks.pt``: per network, which neurons are alive.
    """
    import torch

    return torch.load(Path(run_dir) / MASKS_FILE, map_location=device, weights_only=True)


def load_pruner_state(run_dir: str | Path) -> dict[str, Any]:
    """
    :param run_dir: A pruned run directory.
    :return: Its ``pruner.pt``: the pruner's ``state_dict`` (masks, schedule position, the method's own state).
    """
    import torch

    return torch.load(Path(run_dir) / PRUNER_FILE, map_location="cpu", weights_only=True)
