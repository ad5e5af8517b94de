"""Every pruning method against dense on one budget: the comparison table of issue 26.

Trains each (task, method, seed) with ``prune-rl train`` in its own process, into
``<root>/runs/<env>__<algo>__<method>__seed<k>`` (resumable: a run with a ``results.json`` is skipped, delete it
to train it again; one stopped with a checkpoint is continued with ``prune-rl resume``), then writes
``<root>/methods.md`` and ``methods.csv`` with ``prune-rl report``'s table (:mod:`prune_rl.report.tables`): per
task and method, the return over seeds (each run's final evaluation, or ``--eval-episodes N`` evaluated again
from the saved model), its ratio to dense, and the deployed network's sparsity and kept weights.
``prune-rl report <root>/runs`` draws the plots of the same runs.

A method may carry overrides of its own, ``METHOD@key=value[,key=value]`` (keys under ``pruning.``), for ablations:
``dsp@strength=0`` is ``dsp`` without its regularizer, in its own run directories and its own row.

``scratch`` trains, from scratch, the widths that the same seed's ``dsp`` run ended with (``pruning.from_run``; the
``dsp`` run must be finished first, so list ``dsp`` before ``scratch``).

Structured methods prune 95% of the deployed network's neurons (the configs' default); unstructured ones
(``magnitude``, ``global_magnitude``) run with ``pruning.matched=true``, so they keep as many weights as the
structured methods do. Recipes (``dsp_masks_early``, ``dsp_masks_distill``) are ordinary ``pruning=`` options.

Examples::

    python scripts/compare_methods.py --envs cartpole --seeds 0 1 2 --jobs 2
    python scripts/compare_methods.py --envs lunarlander --seeds 0 --methods none dsp l1_structured --jobs 2
    python scripts/compare_methods.py --envs lunarlander --seeds 0 --methods dsp@strength=0 --jobs 2
    python scripts/compare_methods.py --table-only --root outputs/compare

The committed results are ``prune-rl report``'s over run summaries (the README's Results)::

    prune-rl report outputs/compare/runs --summaries results/runs --out results/report

That report names a row by ``pruning=`` and its target, so a spec's other overrides (``dsp@strength=0`` beside
``dsp``) are refused there as a second run of the same seed; give such ablations a ``conf/pruning/`` option.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prune_rl.runner import rundir
from prune_rl.runner.checkpoint import latest_checkpoint

REPO = Path(__file__).resolve().parents[1]
METHODS = ("none", "dsp", "l1_structured", "random_structured", "magnitude", "global_magnitude", "scratch", "purl")
UNSTRUCTURED = ("magnitude", "global_magnitude")


def run_dir(root: Path, env: str, algo: str, method: str, seed: int) -> Path:
    """:return: Where one run of the comparison lives."""
    return root / "runs" / f"{env}__{algo}__{method}__seed{seed}"


def method_overrides(spec: str) -> list[str]:
    """
    :param spec: ``METHOD`` or ``METHOD@key=value[,key=value]``.
    :return: Its Hydra overrides: the option, ``matched`` kept weights for unstructured methods, its own keys.
    """
    method, _, own = spec.partition("@")
    matched = ["pruning.matched=true"] if method in UNSTRUCTURED else []
    return [f"pruning={method}", *matched, *(f"pruning.{kv}" for kv in own.split(",") if kv)]


def train(root: Path, env: str, algo: str, method: str, seed: int, extra: list[str]) -> bool:
    """
    Train one run unless it is done.

    :param method: ``METHOD`` or ``METHOD@key=value[,key=value]`` (see :func:`method_overrides`).
    :return: Whether the run has its ``results.json`` now.
    """
    out = run_dir(root, env, algo, method, seed)
    if rundir.is_finished(out):
        print(f"skip (done): {out.name}", flush=True)
        return True
    if out.is_dir() and latest_checkpoint(out) is not None:  # stopped with a checkpoint: continue it to its budget
        print(f"resume: {out.name}", flush=True)
        with open(out / "stdout.log", "a") as log:
            code = subprocess.call([sys.executable, "-m", "prune_rl.cli", "resume", str(out)], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=REPO)  # fmt: skip
        if code != 0:
            print(f"FAILED ({code}): {out}/stdout.log", flush=True)
        return code == 0
    if out.is_dir() and any(out.iterdir()):  # an attempt that did not finish: `train` refuses a used directory
        aside = root / "unfinished" / f"{out.name}.{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        out.rename(aside)
        print(f"unfinished: {out.name} moved to {aside}, trained again", flush=True)
    own = method_overrides(method)
    if method == "scratch":  # the control of the default: its final widths, trained from the start
        pruned = run_dir(root, env, algo, "dsp", seed)
        if not rundir.is_finished(pruned):
            print(f"skip (its dsp run is not finished): {out.name}", flush=True)
            return False
        own.append(f"pruning.from_run='{pruned.resolve()}'")
    out.mkdir(parents=True, exist_ok=True)
    args = [f"env={env}", f"algo={algo}", *own, f"seed={seed}", "progress_bar=false", *extra]
    # quoted: a spec's `=` and `,` would otherwise be parsed as Hydra override syntax
    cmd = [sys.executable, "-m", "prune_rl.cli", "train", *args, f"hydra.run.dir='{out.resolve()}'"]
    print("run:", " ".join(args), flush=True)
    with open(out / "stdout.log", "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if code != 0:
        print(f"FAILED ({code}): {out}/stdout.log", flush=True)
    return code == 0


def table(root: Path, eval_episodes: int | None) -> list[dict]:
    """
    The comparison table of the finished runs under ``root``: :func:`prune_rl.report.tables.rows`, one row per
    task, budget and method spec (a spec's overrides make a row of their own).

    :param eval_episodes: Evaluate every run again over this many episodes (cached as ``eval_<N>ep.json``).
    """
    from prune_rl.report import collect
    from prune_rl.report.tables import rows

    records = collect([root / "runs"])
    for record in records:
        record.method = record.path.name.split("__")[2]  # run_dir's naming: the spec, overrides included
        if eval_episodes:
            cached = record.path / f"eval_{eval_episodes}ep.json"
            if not cached.is_file():
                from prune_rl.runner.evaluate import evaluate_run

                cached.write_text(json.dumps(evaluate_run(record.path, n_episodes=eval_episodes)))
            record.final_return = json.loads(cached.read_text())["mean_return"]
    return rows(records)


def write(rows: list[dict], out: Path, command: str) -> None:
    """Write the table as markdown (``out``, headed by the command) and CSV (``out`` with ``.csv``)."""
    from prune_rl.report.tables import markdown, write_csv

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"<!-- written by: {command} -->\n\n" + markdown(rows))
    write_csv(rows, out.with_suffix(".csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["cartpole", "lunarlander"])
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--root", type=Path, default=Path("outputs/compare"))
    parser.add_argument("--table", type=Path, help="where to write the table (default: <root>/methods.md)")
    parser.add_argument("--eval-episodes", type=int, help="evaluate every run again over this many episodes")
    parser.add_argument("--table-only", action="store_true", help="only write the table from finished runs")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (e.g. n_timesteps=50000)")
    args = parser.parse_args()
    if not args.table_only:
        todo = list(itertools.product(args.envs, args.methods, args.seeds))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(lambda t: train(args.root, t[0], args.algo, t[1], t[2], args.overrides), todo))
    command = "python scripts/compare_methods.py " + " ".join(sys.argv[1:])
    out = args.table or args.root / "methods.md"
    write(table(args.root, args.eval_episodes), out, command)
    print(out.read_text())


if __name__ == "__main__":
    main()
