"""Find run directories and read what each one measured, without training or loading a model.

A run directory is any folder holding ``results.json`` and ``config.yaml`` (what ``prune-rl train`` writes), at any
depth below the paths given: a multirun folder, one run, several, or shell globs of them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_FILE = "results.json"
SUMMARY_FILES = (RESULTS_FILE, "config.yaml", "evaluations.npz")  # what a run summary keeps (report/summary.py)


@dataclass
class RunRecord:
    """
    What one run measured.

    :param path: The run directory.
    :param env: Gymnasium id.
    :param algo: Algorithm name.
    :param method: The ``pruning`` option (``none`` for dense runs).
    :param target: Its target sparsity of the deployed network (``pruning.sparsity``, a fraction or ``auto``; ``None``
        for dense runs).
    :param seed: Seed.
    :param n_timesteps: Training budget.
    :param final_return: Mean return of the final evaluation.
    :param neuron_sparsity: Of the deployed network (0 for dense runs).
    :param weight_sparsity: Of the deployed network.
    :param kept_weights: Weights the deployed network keeps (all of them for dense runs: ``None`` if unknown).
    :param curve: ``(timesteps, mean return)`` of the periodic evaluations (empty without them).
    :param neurons: ``(timesteps, alive neurons of the deployed network)`` over training (empty for dense runs).
    :param guard_share: The guard's share of the run's wall time (``None`` for unguarded runs).
    """

    path: Path
    env: str
    algo: str
    method: str
    target: float | str | None
    seed: int
    n_timesteps: int
    final_return: float
    neuron_sparsity: float = 0.0
    weight_sparsity: float = 0.0
    kept_weights: int | None = None
    curve: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.empty(0), np.empty(0)))
    neurons: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.empty(0), np.empty(0)))
    guard_share: float | None = None


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """
    :param paths: Folders (searched recursively) or run directories.
    :return: Every run directory found, sorted, each once.
    :raises ValueError: If a path does not exist or no run is found (one line).
    """
    found: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise ValueError(f"{path} does not exist")
        candidates = [path / RESULTS_FILE] if (path / RESULTS_FILE).is_file() else path.rglob(RESULTS_FILE)
        found.update(r.parent for r in candidates if (r.parent / "config.yaml").is_file())
    if not found:
        raise ValueError(f"no run directory (with {RESULTS_FILE} and config.yaml) under {', '.join(map(str, paths))}")
    return sorted(found)


def _neurons(run: Path, layers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The deployed network's alive neurons at every row of ``progress.csv`` that logged them all."""
    path = run / "progress.csv"
    if not layers or not path.is_file():
        return np.empty(0), np.empty(0)
    steps, alive = [], []
    with path.open() as f:
        for row in csv.DictReader(f):
            values = [row.get(f"prune/alive/{layer}") for layer in layers]
            if all(values) and row.get("time/total_timesteps"):
                steps.append(float(row["time/total_timesteps"]))
                alive.append(sum(float(v) for v in values if v))
    return np.array(steps), np.array(alive)


def _target(run: Path) -> float | str | None:
    """The run's ``pruning.sparsity`` from its ``config.yaml`` (a fraction, ``auto``, or ``None`` if absent)."""
    import yaml

    try:
        config = yaml.safe_load((run / "config.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{run / 'config.yaml'} does not read ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{run / 'config.yaml'} does not hold a run's config")
    value = (config.get("pruning") or {}).get("sparsity")
    return float(value) if isinstance(value, int | float) else "auto" if value == "auto" else None


def read_run(run: Path) -> RunRecord:
    """
    :param run: A run directory.
    :return: Its record.
    :raises ValueError: If ``results.json`` does not read.
    """
    try:
        results: dict[str, Any] = json.loads((run / RESULTS_FILE).read_text())
        record = RunRecord(
            path=run,
            env=results["env_id"],
            algo=results["algo"],
            method=results.get("pruning", "none"),
            target=_target(run) if results.get("sparsity") else None,
            seed=int(results["seed"]),
            n_timesteps=int(results["n_timesteps"]),
            final_return=float(results["eval"]["mean_return"]),
        )
        deployed = next((s for s in (results.get("sparsity") or {}).values() if s.get("role") == "policy"), None)
        if deployed is not None:
            record.neuron_sparsity = float(deployed["neuron_sparsity"])
            record.weight_sparsity = float(deployed["weight_sparsity"])
            record.kept_weights = int(deployed["compact_weights"])
            record.neurons = _neurons(run, list(deployed.get("alive_per_layer", {})))
        guard = results.get("guard")
        if guard:
            record.guard_share = float(guard["seconds"]) / max(float(results["wall_seconds"]), 1e-9)
        evaluations = run / "evaluations.npz"
        if evaluations.is_file():
            data = np.load(evaluations)
            record.curve = (data["timesteps"].astype(float), data["results"].mean(axis=1))
    except Exception as exc:  # any unreadable file of the run (JSON, YAML, CSV, npz): one line naming the run
        raise ValueError(f"{run} does not read as a run ({type(exc).__name__}: {exc})") from None
    return record


def collect(paths: Sequence[str | Path]) -> list[RunRecord]:
    """:return: The records of every run directory under ``paths`` (see :func:`find_runs`)."""
    return [read_run(run) for run in find_runs(paths)]
