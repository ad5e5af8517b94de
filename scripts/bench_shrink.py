"""Does shrinking make training cheaper? Wall times of dense, masked, shrunk and scratch runs, measured in one run.

For each task, four ``prune-rl train`` runs in fresh processes, one at a time, with no periodic evaluation:

- ``dense``: ``pruning=none``;
- ``masked``: the task's pruning recipe with ``pruning.shrink=false`` (pruned neurons are zeros the kernels still
  multiply);
- ``shrunk``: the same with ``pruning.shrink=true`` (the networks are rebuilt narrower after every cut);
- ``scratch``: ``pruning=scratch`` at the widths the shrunk run ended with (``pruning.from_run``), the limit;
- ``shrunk_value90`` (not run unless asked): ``shrunk`` with ``pruning.value_sparsity=0.9``, for when the value or
  critic networks' default sparsity (0.5) limits the gain.

Times are of ``learn()`` (``results.json`` ``wall_seconds``), split into environment steps, the rest of the
rollouts, gradient phases and pruning events (``phase_seconds``, ``prune_seconds``). Returns are each run's final
deterministic evaluation (``eval.n_episodes``, 10 by default). Writes ``<root>/shrink.md`` and ``shrink.csv``; runs
go to ``<root>/runs/<task>__<variant>`` (a run with a ``results.json`` is kept; delete it to train again).

    python scripts/bench_shrink.py --tasks hopper_sac hopper --root outputs/shrink
    python scripts/bench_shrink.py --tasks cartpole lunarlander walker2d --n-timesteps 200000 --root outputs/shrink_short
    python scripts/bench_shrink.py --root outputs/shrink --table-only
"""

from __future__ import annotations

import argparse
import csv
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
COLUMNS = ("task", "variant", "timesteps", "wall_s", "env_s", "rollout_other_s", "gradient_s", "prune_s", "return",
           "ratio_to_dense", "ratio_to_scratch", "widths")  # fmt: skip


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


def train(task: str, variant: str, root: Path, extra: list[str]) -> dict[str, Any]:
    """Train one run in its own process (or read it back if it finished before)."""
    out = root / "runs" / f"{task}__{variant}"
    if not rundir.is_finished(out):
        if out.exists():
            raise SystemExit(f"{out} holds an unfinished run: delete it to train it again")
        cmd = [sys.executable, "-m", "prune_rl.cli", "train", *overrides(task, variant, root, extra), f"hydra.run.dir='{out}'"]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(root / f"{task}__{variant}.log", "w") as log:
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, check=True)
    return rundir.read_results(out)


def row(task: str, variant: str, results: dict[str, Any], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One line of the table."""
    phases = results.get("phase_seconds", {})
    wall = results["wall_seconds"]
    widths = results.get("widths") or {}

    def ratio(reference: str) -> str:
        return f"{wall / runs[reference]['wall_seconds']:.3f}" if reference in runs else ""

    return {
        "task": task,
        "variant": variant,
        "timesteps": results["timesteps"],
        "wall_s": f"{wall:.1f}",
        "env_s": f"{phases.get('env_seconds', 0.0):.1f}",
        "rollout_other_s": f"{phases.get('rollout_seconds', 0.0) - phases.get('env_seconds', 0.0):.1f}",
        "gradient_s": f"{phases.get('gradient_seconds', 0.0):.1f}",
        "prune_s": f"{results['prune_seconds']:.1f}",
        "return": f"{results['eval']['mean_return']:.1f} ± {results['eval']['std_return']:.1f}",
        "ratio_to_dense": ratio("dense"),
        "ratio_to_scratch": ratio("scratch"),
        "widths": " ".join(f"{name}={'/'.join(map(str, w))}" for name, w in widths.items()),
    }


def write_table(root: Path) -> list[dict[str, Any]]:
    """Write ``shrink.md`` and ``shrink.csv`` from every finished run under ``root``."""
    rows = []
    for task in TASKS:
        runs = {}
        for variant in VARIANTS:
            out = root / "runs" / f"{task}__{variant}"
            if rundir.is_finished(out):
                runs[variant] = rundir.read_results(out)
        rows += [row(task, variant, results, runs) for variant, results in runs.items()]
    with open(root / "shrink.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
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
    parser.add_argument("--table-only", action="store_true", help="only write the table from finished runs")
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. seed=1")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    extra = [*args.overrides, *([f"n_timesteps={args.n_timesteps}"] if args.n_timesteps else [])]
    if not args.table_only:
        for task in args.tasks:
            for variant in VARIANTS:  # scratch needs the shrunk run's widths: always in this order
                if variant in args.variants:
                    train(task, variant, root, extra)
                    write_table(root)
    print((root / "shrink.md").read_text() if (root / "shrink.md").is_file() else "no finished runs")


if __name__ == "__main__":
    main()
