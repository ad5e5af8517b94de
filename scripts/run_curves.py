"""Training curves of finished runs as a markdown table: windowed means of logged values and periodic evaluations.

One column per checkpoint ``--start``, ``--start + --step``, ... up to ``--stop`` (in steps). For each run
directory and each ``--key`` of its ``progress.csv`` (SB3's CSV log; ``rollout/ep_rew_mean`` by default), a cell
is the mean of the values logged in the ``--window`` steps that end at the column's checkpoint,
``(checkpoint - window, checkpoint]``. With ``--evals`` a last row per run gives the periodic evaluation of its
``evaluations.npz`` (SB3's ``EvalCallback``, mean over the evaluation's episodes) taken in the column's step,
``(checkpoint - step, checkpoint]``; SB3 evaluates every ``eval_freq`` steps, so with ``--step`` a multiple of it
that is the evaluation at the checkpoint. Rows of ``progress.csv`` without the key (an evaluation's or a pruning
event's record) are skipped, a window with no value shows as ``-``, and a key that no row of a run has is an
error (a typo, not a curve).

It is how the tuning notes (``results/*.md``) compare pruned and dense runs phase by phase: the training reward
over the cuts and after them, PPO's clip fraction, the action noise (``train/std``).

Examples::

    python scripts/run_curves.py outputs/benchmark/runs/walker2d__ppo__none__seed4_1000000 \\
        outputs/tuning/walker_1m_distill93_fan0/runs/walker2d__ppo__dsp__seed4_1000000 --start 600000 --evals
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
    Read a run's SB3 CSV log.

    :param run_dir: A run directory with a ``progress.csv``.
    :return: Its rows that carry a step count.
    """
    with open(run_dir / "progress.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row.get(STEPS)]


def window_means(rows: list[dict[str, str]], key: str, ends: list[int], window: int) -> list[float | None]:
    """
    Mean of ``key`` over the rows whose step count lies in ``(end - window, end]``, for each end.

    :param rows: Rows of ``progress.csv`` (:func:`read_progress`).
    :param key: A logged value, e.g. ``rollout/ep_rew_mean``.
    :param ends: Window ends (checkpoints), in steps.
    :param window: Window length, in steps.
    :return: One mean per end; None where no row in the window has the key.
    """
    means: list[float | None] = []
    for end in ends:
        values = [float(r[key]) for r in rows if r.get(key) and end - window < float(r[STEPS]) <= end]
        means.append(sum(values) / len(values) if values else None)
    return means


def periodic_evals(run_dir: Path) -> list[tuple[int, float]]:
    """
    Read a run's periodic evaluations.

    :param run_dir: A run directory with an ``evaluations.npz``.
    :return: ``(steps, mean return over the evaluation's episodes)`` of each evaluation, in order.
    """
    with np.load(run_dir / "evaluations.npz") as data:
        steps, results = data["timesteps"], data["results"]
    return [(int(t), float(r.mean())) for t, r in zip(steps, results, strict=True)]


def evals_at(evals: list[tuple[int, float]], ends: list[int], step: int) -> list[float | None]:
    """
    The last evaluation in ``(end - step, end]``, for each end.

    :param evals: ``(steps, mean return)`` pairs (:func:`periodic_evals`).
    :param ends: Checkpoints, in steps.
    :param step: Steps between checkpoints.
    :return: One evaluation per end; None where there is none in its step.
    """
    out: list[float | None] = []
    for end in ends:
        inside = [value for t, value in evals if end - step < t <= end]
        out.append(inside[-1] if inside else None)
    return out


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.0f}"


def _label(steps: int) -> str:
    return f"{steps // 1000}k" if steps and steps % 1000 == 0 else str(steps)


def table(run_dirs: list[Path], keys: list[str], ends: list[int], window: int, step: int, evals: bool) -> str:
    """
    The curves of several runs side by side.

    :param run_dirs: Finished run directories.
    :param keys: ``progress.csv`` columns, one row each per run.
    :param ends: Checkpoints (the columns), in steps.
    :param window: Steps each mean covers, ending at its checkpoint.
    :param step: Steps between checkpoints (where an evaluation is looked for).
    :param evals: Add a row per run with its periodic evaluations.
    :return: A markdown table.
    :raises ValueError: If a run logged none of the values of a key.
    """
    lines = ["| run | value | " + " | ".join(_label(e) for e in ends) + " |", "|---|---|" + "---|" * len(ends)]
    for run_dir in run_dirs:
        rows = read_progress(run_dir)
        resolved = run_dir.resolve()
        name = f"{resolved.parent.parent.name}/{resolved.name}" if resolved.parent.name == "runs" else resolved.name
        for key in keys:
            if not any(r.get(key) for r in rows):
                raise ValueError(f"{run_dir / 'progress.csv'} has no value of {key!r}")
            cells = window_means(rows, key, ends, window)
            lines.append(f"| {name} | {key} | " + " | ".join(_cell(c) for c in cells) + " |")
        if evals:
            cells = evals_at(periodic_evals(run_dir), ends, step)
            lines.append(f"| {name} | evaluation | " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished run directories")
    parser.add_argument("--key", action="append", help="a progress.csv column (repeatable; default: training reward)")
    parser.add_argument("--start", type=int, default=100_000, help="first checkpoint, in steps")
    parser.add_argument("--stop", type=int, default=1_000_000, help="last checkpoint at most, in steps")
    parser.add_argument("--step", type=int, default=100_000, help="steps between checkpoints")
    parser.add_argument("--window", type=int, default=50_000, help="steps each mean covers, ending at its checkpoint")
    parser.add_argument("--evals", action="store_true", help="also each run's periodic evaluation at each checkpoint")
    args = parser.parse_args()
    if args.step < 1 or args.window < 1 or args.start > args.stop:
        parser.error("--step and --window must be >= 1 and --start <= --stop")
    ends = list(range(args.start, args.stop + 1, args.step))
    try:
        print(table(args.run_dirs, args.key or ["rollout/ep_rew_mean"], ends, args.window, args.step, args.evals))
    except ValueError as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
