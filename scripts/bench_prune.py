"""Pruning a trained agent against pruning while training: `prune-rl prune` on converged agents, per method.

For each task, runs in fresh processes, one at a time (seed 0 unless an override says otherwise):

- ``dense``: ``prune-rl train pruning=none`` at the task's budget: the trained agent (an ordinary SB3 zip);
- ``after__<method>``: ``prune-rl prune <dense>/model.zip pruning=<method>``, fine-tuned for ``--finetune`` of the
  task's budget (``init.budget``, the command's default 0.1), the agent's own hyperparameters;
- ``after__none`` (with ``none`` among the methods): the same fine-tuning without pruning, the control;
- ``during__<method>``: ``prune-rl train pruning=<method>`` at the task's budget, pruned while it trains.

The table gives, per task and method, the dense agent's return, then for pruning after training and during training
the final return (``eval.n_episodes`` deterministic episodes) and its ratio to dense, the deployed network's neuron
and weight sparsity and the environment steps. It compares returns, not times (one run each): wall times are
``scripts/bench_shrink.py``'s, the median of repeats. ``scratch`` cannot start from a trained network and is not a method here.
Overrides after the options apply to every run, except that ``algo.*`` keys are not passed to ``prune`` (a trained
agent keeps its hyperparameters), ``n_timesteps=N`` becomes ``--finetune`` of N there, and ``pruning.*`` keys are
not passed to runs without pruning. Writes ``--table`` (first line: the command) and the same rows beside it as CSV;
runs go to ``<root>/runs/<task>__<variant>`` (a run with a ``results.json`` is kept; delete it to run it again).

    python scripts/bench_prune.py --root outputs/bench_prune --table results/bench_prune.md
    python scripts/bench_prune.py --tasks cartpole_ppo --variants dense after --root outputs/bench_prune_cartpole
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from prune_rl.runner import rundir

REPO = Path(__file__).resolve().parents[1]
TASKS: dict[str, list[str]] = {
    "cartpole_ppo": ["env=cartpole", "algo=ppo"],
    "lunarlander_ppo": ["env=lunarlander", "algo=ppo"],
    "lunarlander_dqn": ["env=lunarlander", "algo=dqn"],
    "hopper_ppo": ["env=hopper", "algo=ppo"],
    "hopper_sac": ["env=hopper", "algo=sac"],
}
METHODS = ("dsp", "dsp_masks_early", "dsp_masks_distill", "l1_structured", "random_structured", "magnitude",
           "global_magnitude", "purl", "none")  # fmt: skip
COLUMNS = ("task", "method", "dense_return", "after_return", "after_ratio", "after_neuron_sparsity",
           "after_weight_sparsity", "after_steps", "during_return", "during_ratio", "during_neuron_sparsity",
           "during_weight_sparsity", "during_steps")  # fmt: skip


def commands(task: str, variant: str, root: Path, finetune: float, extra: list[str]) -> list[str]:
    """The ``prune-rl`` arguments of one run (``variant``: ``dense``, ``after__<method>`` or ``during__<method>``)."""
    common = ["eval.freq=5", "progress_bar=false"]
    kind, method = variant.split("__") if "__" in variant else (variant, "none")
    if method == "none":  # pruning=none has no pruning keys
        extra = [a for a in extra if not a.lstrip("+~").startswith("pruning.")]
    if kind != "after":
        return ["train", *TASKS[task], *common, *extra, f"pruning={method}"]
    model = rundir.model_file(root / "runs" / f"{task}__dense")
    kept = [a for a in extra if not a.lstrip("+~").startswith(("algo.", "n_timesteps="))]
    budget = [f"n_timesteps={int(finetune * int(a.split('=')[1]))}" for a in extra if a.startswith("n_timesteps=")]
    env = [a for a in TASKS[task] if a.startswith("env=")]
    return ["prune", str(model), *env, *common, *kept, *budget, f"init.budget={finetune}", f"pruning={method}"]


def run(task: str, variant: str, root: Path, finetune: float, extra: list[str]) -> dict[str, Any]:
    """One run in its own process (or read back if it finished before)."""
    out = root / "runs" / f"{task}__{variant}"
    if not rundir.is_finished(out):
        if out.exists():
            raise SystemExit(f"{out} holds an unfinished run: delete it to run it again")
        cmd = [sys.executable, "-m", "prune_rl.cli", *commands(task, variant, root, finetune, extra), f"hydra.run.dir='{out}'"]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(root / f"{task}__{variant}.log", "w") as log:
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, check=True)
    return rundir.read_results(out)


def _side(results: dict[str, Any] | None, dense: float) -> dict[str, str]:
    if results is None:
        return {key: "" for key in ("return", "ratio", "neuron_sparsity", "weight_sparsity", "steps")}
    deployed = next((s for s in (results.get("sparsity") or {}).values() if s.get("role") == "policy"), None)
    mean = results["eval"]["mean_return"]
    return {
        "return": f"{mean:.1f} ± {results['eval']['std_return']:.1f}",
        "ratio": f"{mean / dense:.3f}" if dense else "",
        "neuron_sparsity": f"{deployed['neuron_sparsity']:.3f}" if deployed else "0",
        "weight_sparsity": f"{deployed['weight_sparsity']:.3f}" if deployed else "0",
        "steps": str(results["timesteps"] - results.get("start_timesteps", 0)),
    }


def write_table(root: Path, table: Path, command: str) -> list[dict[str, str]]:
    """Write ``table`` (markdown, first line the command) and the same rows beside it as CSV, from the finished runs."""

    def read(task: str, variant: str) -> dict[str, Any] | None:
        out = root / "runs" / f"{task}__{variant}"
        return rundir.read_results(out) if rundir.is_finished(out) else None

    rows = []
    for task in TASKS:
        dense = read(task, "dense")
        if dense is None:
            continue
        reference = dense["eval"]["mean_return"]
        for method in METHODS:
            after, during = read(task, f"after__{method}"), read(task, f"during__{method}")
            if after is None and during is None:
                continue
            row = {"task": task, "method": method, "dense_return": f"{reference:.1f} ± {dense['eval']['std_return']:.1f}"}
            row.update({f"after_{k}": v for k, v in _side(after, reference).items()})
            row.update({f"during_{k}": v for k, v in _side(during, reference).items()})
            rows.append(row)
    table.parent.mkdir(parents=True, exist_ok=True)
    with open(table.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"<!-- written by: {command} -->", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
    table.write_text("\n".join(lines) + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run what is missing, then write the table."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--variants", nargs="+", choices=("dense", "after", "during"), default=["dense", "after", "during"])
    parser.add_argument("--finetune", type=float, default=0.1, help="fine-tuning budget, a fraction of the task's")
    parser.add_argument("--root", type=Path, default=Path("outputs/bench_prune"))
    parser.add_argument("--table", type=Path, default=None, help="the markdown table (default: <root>/bench_prune.md)")
    parser.add_argument("--table-only", action="store_true", help="only write the table from finished runs")
    parser.add_argument("overrides", nargs="*", help="more overrides for every run, e.g. seed=1 n_timesteps=50000")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    table = args.table or root / "bench_prune.md"
    command = " ".join(["python scripts/bench_prune.py", *map(shlex.quote, argv)])
    if not args.table_only:
        for task in args.tasks:
            if "dense" in args.variants or not rundir.is_finished(root / "runs" / f"{task}__dense"):
                run(task, "dense", root, args.finetune, args.overrides)  # every fine-tuning starts from it
            for method in args.methods:
                for kind in ("after", "during"):
                    if kind in args.variants and not (kind == "during" and method == "none"):  # that is dense
                        run(task, f"{kind}__{method}", root, args.finetune, args.overrides)
                        write_table(root, table, command)
    write_table(root, table, command)
    print(table.read_text())


if __name__ == "__main__":
    main()
