"""Does shrinking make training cheaper? Wall times of dense, masked, shrunk and scratch runs, measured in one run.

For each task, four ``prune-rl train`` runs in fresh processes, one at a time, with no periodic evaluation:

- ``dense``: ``pruning=none``;
- ``masked``: the task's pruning recipe with ``pruning.shrink=false`` (pruned neurons are zeros the kernels still
  multiply);
- ``shrunk``: the same with ``pruning.shrink=true`` (the networks are rebuilt narrower after every cut);
- ``scratch``: ``pruning=scratch`` at the widths the shrunk run ended with (``pruning.from_run``), the limit;
- ``shrunk_value90`` (not run unless asked): ``shrunk`` with ``pruning.value_sparsity=0.9``, for when the value or
  critic networks' default sparsity (0.5) limits the gain.

Each run is repeated ``--repeats`` times (3 by default, the same seed, one after another), and every time is the
median of the repeats with its range ``[min, max]``: times of ``learn()`` (``results.json`` ``wall_seconds``), split
into environment steps, the rest of the rollouts, gradient phases and pruning events (``phase_seconds``,
``prune_seconds``); ratios are of medians. Returns are the first repeat's final deterministic evaluation
(``eval.n_episodes``, 10 by default). Writes ``<root>/shrink.md`` (headed by the command) and ``shrink.csv``; runs go
to ``<root>/runs/<task>__<variant>`` and ``..._rep<k>`` (a run with a ``results.json`` is kept; delete it to train
again).

    python scripts/bench_shrink.py --tasks hopper_sac hopper --root outputs/shrink
    python scripts/bench_shrink.py --tasks cartpole lunarlander walker2d --n-timesteps 200000 --root outputs/shrink_short
    python scripts/bench_shrink.py --root outputs/shrink --table-only
"""

from __future__ import annotations

import argparse
import csv
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from prune_rl.runner import rundir

REPO = Path(__file__).resolve().parents[1]
TASKS: dict[str, list[str]] = {
    "cartpole": ["env=cartpole", "pruning=dsp"],
    "lunarlander": ["env=lunarlander", "pruning=dsp"],
    "hopper": ["env=hopper", "pruning=dsp_masks_early"],
    "walker2d": ["env=walker2d", "pruning=dsp_masks_distill"],
    # SAC at a budget a 2-core machine runs in minutes (about 13 updates a second with [256, 256] networks), learning
    # from 10% of it on; the cuts come after that, not on the random network.
    "hopper_sac": [
        "env=hopper",
        "algo=sac",
        "n_timesteps=20000",
        "algo.learning_starts=2000",
        "pruning=dsp_masks_early",
        "pruning.begin=0.15",
        "pruning.end=0.3",
    ],
}
VARIANTS = ("dense", "masked", "shrunk", "scratch", "shrunk_value90")
COLUMNS = ("task", "variant", "timesteps", "repeats", "wall_s", "env_s", "rollout_other_s", "gradient_s", "prune_s",
           "return", "ratio_to_dense", "ratio_to_scratch", "widths")  # fmt: skip


def overrides(task: str, variant: str, root: Path, extra: list[str]) -> list[str]:
    """The ``prune-rl train`` arguments of one run."""
    base = [a for a in TASKS[task] if not a.startswith("pruning")]
    recipe = [a for a in TASKS[task] if a.startswith("pruning")]
    common = [*base, "eval.freq=0", "progress_bar=false", *extra]
    if variant == "dense":  # pruning=none has no pruning keys
        return [*[a for a in common if not a.startswith("pruning.")], "pruning=none"]
    if variant == "scratch":
        return [*common, "pruning=scratch", f"pruning.from_run='{(root / 'runs' / f'{task}__shrunk').resolve()}'"]
    if variant == "shrunk_value90":
        return [*common, *recipe, "pruning.shrink=true", "pruning.value_sparsity=0.9"]
    return [*common, *recipe, f"pruning.shrink={variant == 'shrunk'}"]


def run_dir(root: Path, task: str, variant: str, repeat: int = 0) -> Path:
    """:return: Where one repeat of one run lives (the first without a suffix: ``scratch`` reads its widths)."""
    return root / "runs" / (f"{task}__{variant}" + (f"_rep{repeat}" if repeat else ""))


def train(task: str, variant: str, root: Path, extra: list[str], repeat: int = 0) -> dict[str, Any]:
    """Train one run in its own process (or read it back if it finished before)."""
    out = run_dir(root, task, variant, repeat)
    if not rundir.is_finished(out):
        if out.exists():
            raise SystemExit(f"{out} holds an unfinished run: delete it to train it again")
        cmd = [sys.executable, "-m", "prune_rl.cli", "train", *overrides(task, variant, root, extra), f"hydra.run.dir='{out}'"]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent.parent / f"{out.name}.log", "w") as log:
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, check=True)
    return rundir.read_results(out)


def median_range(values: list[float]) -> str:
    """:return: ``median [min, max]`` of repeated measurements, in seconds to 0.1."""
    return f"{statistics.median(values):.1f} [{min(values):.1f}, {max(values):.1f}]"


def row(task: str, variant: str, repeats: list[dict[str, Any]], medians: dict[str, float]) -> dict[str, Any]:
    """One line of the table: the repeats of one run."""
    first = repeats[0]
    widths = first.get("widths") or {}

    def phase(key: str, minus: str | None = None) -> str:
        return median_range([r.get("phase_seconds", {}).get(key, 0.0) - (r.get("phase_seconds", {}).get(minus, 0.0)
                             if minus else 0.0) for r in repeats])  # fmt: skip

    def ratio(reference: str) -> str:
        return f"{medians[variant] / medians[reference]:.3f}" if reference in medians else ""

    return {
        "task": task,
        "variant": variant,
        "timesteps": first["timesteps"],
        "repeats": len(repeats),
        "wall_s": median_range([r["wall_seconds"] for r in repeats]),
        "env_s": phase("env_seconds"),
        "rollout_other_s": phase("rollout_seconds", "env_seconds"),
        "gradient_s": phase("gradient_seconds"),
        "prune_s": median_range([r["prune_seconds"] for r in repeats]),
        "return": f"{first['eval']['mean_return']:.1f} ± {first['eval']['std_return']:.1f}",
        "ratio_to_dense": ratio("dense"),
        "ratio_to_scratch": ratio("scratch"),
        "widths": " ".join(f"{name}={'/'.join(map(str, w))}" for name, w in widths.items()),
    }


def write_table(root: Path, command: str = "python scripts/bench_shrink.py") -> list[dict[str, Any]]:
    """Write ``shrink.md`` (headed by ``command``) and ``shrink.csv`` from every finished run under ``root``."""
    rows = []
    for task in TASKS:
        runs: dict[str, list[dict[str, Any]]] = {}
        for variant in VARIANTS:
            repeat = 0
            while (out := run_dir(root, task, variant, repeat)).is_dir():
                if rundir.is_finished(out):
                    runs.setdefault(variant, []).append(rundir.read_results(out))
                repeat += 1
        medians = {variant: statistics.median(r["wall_seconds"] for r in repeats) for variant, repeats in runs.items()}
        rows += [row(task, variant, repeats, medians) for variant, repeats in runs.items()]
    with open(root / "shrink.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"<!-- written by: {command} -->", "", "Times in seconds: median [min, max] over the repeats.", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    (root / "shrink.md").write_text("\n".join(lines) + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Train what is missing, then write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:4]))
    parser.add_argument("--n-timesteps", type=int, default=None, help="every task's budget (default: the task's own)")
    parser.add_argument("--root", type=Path, default=Path("outputs/shrink"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (median and range reported)")
    parser.add_argument("--table-only", action="store_true", help="only write the table from finished runs")
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. seed=1")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    command = shlex.join(["python", "scripts/bench_shrink.py", *(sys.argv[1:] if argv is None else argv)])
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    extra = [*args.overrides, *([f"n_timesteps={args.n_timesteps}"] if args.n_timesteps else [])]
    if not args.table_only:
        for task in args.tasks:
            for variant in VARIANTS:  # scratch needs the shrunk run's widths: always in this order
                if variant in args.variants:
                    for repeat in range(args.repeats):
                        train(task, variant, root, extra, repeat)
                    write_table(root, command)
    if args.table_only:
        write_table(root, command)
    print((root / "shrink.md").read_text() if (root / "shrink.md").is_file() else "no finished runs")


if __name__ == "__main__":
    main()
