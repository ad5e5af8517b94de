"""Run directories: never shared, never overwritten, and written so that a kill never leaves half a file.

A run claims its directory before it trains: a directory that already holds a run's files is refused (a repeated
``hydra.run.dir`` would otherwise overwrite it and leave stale files beside new ones), and a lock file created with
``O_EXCL`` refuses a second run started into the same directory at the same time. The default directory names end
in microseconds (``conf/train.yaml``), so runs and sweeps started in the same second get directories of their own.
Result files are written to a temporary name and renamed into place, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prune_rl.config import ConfigError

RUN_FILES = ("results.json", "model.zip", "masks.pt", "pruner.pt", "config.yaml")
LOAD_FILES = ("config.yaml", "model.zip")  # what a run directory must hold to be evaluated, exported or continued
LOCK_FILE = ".prune-rl.lock"


def missing_file(run_dir: str | Path) -> str | None:
    """
    :param run_dir: A directory given as a run.
    :return: The first of :data:`LOAD_FILES` it lacks, or ``None`` if it holds a run that can be loaded.
    """
    return next((name for name in LOAD_FILES if not (Path(run_dir) / name).is_file()), None)


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
