"""Run summaries: the few small files of a run directory that ``prune-rl report`` reads, copied without models or
logs, so that a report's tables can be committed beside the runs they were made from and written again by anyone.

A summary is a folder named as its run directory holding ``results.json``, ``config.yaml``, ``evaluations.npz`` (the
periodic evaluations) and ``progress.csv`` cut to the columns the report draws (timesteps and alive neurons): a few
kilobytes a run.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from pathlib import Path

from prune_rl.report.collect import RunRecord
from prune_rl.runner.rundir import PROGRESS_FILE, SUMMARY_FILES

PROGRESS_COLUMNS = ("time/total_timesteps", "prune/alive/")  # a name, and the prefix of the alive-neuron columns


def is_summary(folder: Path) -> bool:
    """:return: Whether ``folder`` holds a run summary and nothing else (so replacing it loses nothing)."""
    names = {p.name for p in folder.iterdir()}
    return SUMMARY_FILES[0] in names and names <= {*SUMMARY_FILES, PROGRESS_FILE}


def _trim_progress(source: Path, target: Path) -> None:
    with source.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c == PROGRESS_COLUMNS[0] or c.startswith(PROGRESS_COLUMNS[1])]
        rows = [{c: row[c] for c in columns} for row in reader if any(row[c] for c in columns[1:])]
    with target.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_summaries(records: Sequence[RunRecord], folder: str | Path) -> list[Path]:
    """
    Write the summary of each run into ``folder``, replacing the summaries already there (and nothing else).

    :param records: The runs (:func:`prune_rl.report.collect.collect`).
    :param folder: Where the summaries go, one subfolder per run, named as its run directory.
    :return: The summaries written.
    :raises ValueError: If two runs have the same directory name, or ``folder`` holds a folder that is not a summary
        with a run's name.
    """
    folder = Path(folder)
    names = [record.path.name for record in records]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"two runs named {twice[0]}: a summary folder holds one run per name")
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_dir() and is_summary(old):
                shutil.rmtree(old)
            elif old.name in names:
                raise ValueError(f"{old} is in the way and is not a run summary")
    written = []
    for record in records:
        target = folder / record.path.name
        target.mkdir(parents=True)
        for name in SUMMARY_FILES:
            if (record.path / name).is_file():
                shutil.copyfile(record.path / name, target / name)
        if (record.path / PROGRESS_FILE).is_file() and len(record.neurons[0]):
            _trim_progress(record.path / PROGRESS_FILE, target / PROGRESS_FILE)
        written.append(target)
    return written
