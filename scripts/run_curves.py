"""Training curves of finished runs as a markdown table: windowed means of logged values and periodic evaluations.

For each run directory, every ``--key`` of its ``progress.csv`` (SB3's CSV log; ``rollout/ep_rew_mean`` by
default) is averaged over windows of ``--window`` steps that start at ``--start``, ``--start + --step``, ... up to
``--stop``, and with ``--evals`` the periodic evaluations of its ``evaluations.npz`` (written by SB3's
``EvalCallback``, mean over each evaluation's episodes) in the same range are listed. Rows of ``progress.csv``
without the key (an evaluation-only dump, a pruning event's record) are skipped, and a window with no value
shows as ``-``.

It is how the tuning notes (``results/*.md``) compare pruned and dense runs phase by phase: the training reward
over the cuts and after them, PPO's clip fraction, the action noise (``train/std``).

Examples::

    python scripts/run_curves.py outputs/benchmark/runs/walker2d__ppo__none__seed4_1000000 \\
        outputs/tuning/walker_1m_distill93_fan0/runs/walker2d__ppo__dsp__seed4_1000000 \\
        --start 500000 --stop 1000000 --step 100000 --window 50000 --evals
    python scripts/run_curves.py RUN_DIR --key train/clip_fraction --key train/approx_kl --start 700000
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

STEPS = "time/total_timesteps"


def read_progress(run_dir: Path) -> list[dict[str, str]]:
    """
    :param run_dir: A run directory with a ``progress.csv``.
    :return: Its rows that carry a step count.
    """
    with open(run_dir / "progress.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row.get(STEPS)]


def window_means(rows: list[dict[str, str]], key: str, starts: list[int], window: int) -> list[float | None]:
    """
    Mean of ``key`` over the rows whose step count lies in ``[start, start + window)``, for each start.

    :param rows: Rows of ``progress.csv`` (:func:`read_progress`).
    :param key: A logged value, e.g. ``rollout/ep_rew_mean``.
    :param starts: Window starts, in steps.
    :param window: Window length, in steps.
    :return: One mean per start; None where no row in the window has the key.
    """
    means: list[float | None] = []
    for start in starts:
        values = [float(r[key]) for r in rows if r.get(key) and start <= float(r[STEPS]) < start + window]
        means.append(sum(values) / len(values) if values else None)
    return means


def periodic_evals(run_dir: Path, start: int, stop: int) -> list[tuple[int, float]]:
    """
    :param run_dir: A run directory with an ``evaluations.npz``.
    :param start: First step count to keep.
    :param stop: Last step count to keep.
    :return: ``(steps, mean return)`` of each evaluation in ``[start, stop]``.
    """
    with np.load(run_dir / "evaluations.npz") as data:
        steps, results = data["timesteps"], data["results"]
    return [(int(t), float(r.mean())) for t, r in zip(steps, results, strict=True) if start <= t <= stop]


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.0f}"


def table(run_dirs: list[Path], keys: list[str], start: int, stop: int, step: int, window: int, evals: bool) -> str:
    """
    :return: A markdown table with one row per run and key (and per run for ``evals``).
    """
    starts = list(range(start, stop + 1, step))
    labels = [f"{s // 1000}k" if s and s % 1000 == 0 else str(s) for s in starts]
    lines = ["| run | value | " + " | ".join(labels) + " |"]
    lines.append("|---|---|" + "---|" * len(starts))
    for run_dir in run_dirs:
        rows = read_progress(run_dir)
        name = f"{run_dir.parent.parent.name}/{run_dir.name}" if run_dir.parent.name == "runs" else run_dir.name
        for key in keys:
            means = window_means(rows, key, starts, window)
            lines.append(f"| {name} | {key} | " + " | ".join(_cell(m) for m in means) + " |")
        if evals:
            by_step = dict(periodic_evals(run_dir, start, stop + step))
            cells = [_cell(next((v for t, v in by_step.items() if s <= t < s + step), None)) for s in starts]
            lines.append(f"| {name} | evaluation | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished run directories")
    parser.add_argument("--key", action="append", help="a progress.csv column (repeatable; default: training reward)")
    parser.add_argument("--start", type=int, default=0, help="first window's start, in steps")
    parser.add_argument("--stop", type=int, default=1_000_000, help="last window's start at most, in steps")
    parser.add_argument("--step", type=int, default=100_000, help="steps between window starts")
    parser.add_argument("--window", type=int, default=50_000, help="window length, in steps")
    parser.add_argument("--evals", action="store_true", help="also the periodic evaluations, one per step")
    args = parser.parse_args()
    if args.step < 1 or args.window < 1:
        parser.error("--step and --window must be >= 1")
    keys = args.key or ["rollout/ep_rew_mean"]
    print(table(args.run_dirs, keys, args.start, args.stop, args.step, args.window, args.evals))


if __name__ == "__main__":
    main()
