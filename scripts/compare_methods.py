"""Every pruning method against dense on one budget: the comparison table of issue 26.

Trains each (task, method, seed) with ``prune-rl train`` in its own process, into
``<root>/runs/<env>__<algo>__<method>__seed<k>`` (resumable: a run with a ``results.json`` is skipped; delete it
to train it again), then writes ``<root>/methods.md`` and ``methods.csv``: per task and method, the return over
seeds (each run's final evaluation, ``eval.n_episodes`` episodes, or ``--eval-episodes N`` evaluated again from the
saved model), its ratio to dense, and the deployed network's neuron and weight sparsity and kept weights.

A method may carry overrides of its own, ``METHOD@key=value[,key=value]`` (keys under ``pruning.``), for ablations:
``dsp@strength=0`` is ``dsp`` without its regularizer, in its own run directories and its own row.

Structured methods prune 95% of the deployed network's neurons (the configs' default); unstructured ones
(``magnitude``, ``global_magnitude``) run with ``pruning.matched=true``, so they keep as many weights as the
structured methods do. Recipes (``dsp_masks_early``, ``dsp_masks_distill``) are ordinary ``pruning=`` options.

Examples::

    python scripts/compare_methods.py --envs cartpole --seeds 0 1 2 --jobs 2
    python scripts/compare_methods.py --envs lunarlander --seeds 0 --methods none dsp l1_structured --jobs 2
    python scripts/compare_methods.py --envs lunarlander --seeds 0 --methods dsp@strength=0 --jobs 2
    python scripts/compare_methods.py --table-only --table results/methods.md
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ("none", "dsp", "l1_structured", "random_structured", "magnitude", "global_magnitude", "scratch", "purl")
UNSTRUCTURED = ("magnitude", "global_magnitude")
COLUMNS = (
    "env",
    "algo",
    "timesteps",
    "method",
    "seeds",
    "eval_episodes",
    "return",
    "ratio",
    "policy_neuron_sparsity",
    "policy_weight_sparsity",
    "policy_kept_weights",
    "value_weight_sparsity",
)


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
    if (out / "results.json").is_file():
        print(f"skip (done): {out.name}", flush=True)
        return True
    out.mkdir(parents=True, exist_ok=True)
    args = [f"env={env}", f"algo={algo}", *method_overrides(method), f"seed={seed}", "progress_bar=false", *extra]
    # quoted: a spec's `=` and `,` would otherwise be parsed as Hydra override syntax
    cmd = [sys.executable, "-m", "prune_rl.cli", "train", *args, f"hydra.run.dir='{out.resolve()}'"]
    print("run:", " ".join(args), flush=True)
    with open(out / "stdout.log", "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if code != 0:
        print(f"FAILED ({code}): {out}/stdout.log", flush=True)
    return code == 0


def record(path: Path, eval_episodes: int | None) -> dict:
    """:return: One finished run's return and its deployed and value networks' sparsity."""
    r = json.loads(path.read_text())
    evaluation = r["eval"]
    if eval_episodes:
        cached = path.parent / f"eval_{eval_episodes}ep.json"
        if not cached.is_file():
            from prune_rl.evaluate import evaluate_run

            cached.write_text(json.dumps(evaluate_run(path.parent, n_episodes=eval_episodes)))
        evaluation = json.loads(cached.read_text())
    nets = list((r.get("sparsity") or {}).values())
    policy = next((s for s in nets if s["role"] == "policy"), None)
    values = [s for s in nets if s["role"] == "value"]
    return {
        "env": r["env_id"],
        "algo": r["algo"],
        "timesteps": r["n_timesteps"],
        "method": path.parent.name.split("__")[2],  # run_dir's naming: the spec, overrides included
        "seed": r["seed"],
        "eval_episodes": evaluation["n_episodes"],
        "return": evaluation["mean_return"],
        "policy_neuron_sparsity": policy["neuron_sparsity"] if policy else 0.0,
        "policy_weight_sparsity": policy["weight_sparsity"] if policy else 0.0,
        "policy_kept_weights": policy["compact_weights"] if policy else None,
        "value_weight_sparsity": statistics.mean(s["weight_sparsity"] for s in values) if values else 0.0,
    }


def rows(records: list[dict]) -> list[dict]:
    """:return: One row per (task, budget, method), with the ratio of its mean return to dense's."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["env"], r["algo"], r["timesteps"], r["method"]), []).append(r)
    out = []
    order = {m: i for i, m in enumerate(METHODS)}
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], order.get(k[3], len(order)), k[3])):
        runs = sorted(groups[key], key=lambda r: r["seed"])
        returns = [r["return"] for r in runs]
        dense = [r["return"] for r in groups.get((*key[:3], "none"), [])]
        ratio = statistics.mean(returns) / statistics.mean(dense) if dense and statistics.mean(dense) else None
        std = statistics.stdev(returns) if len(returns) > 1 else 0.0
        kept = [r["policy_kept_weights"] for r in runs if r["policy_kept_weights"] is not None]
        out.append(
            {
                "env": key[0],
                "algo": key[1],
                "timesteps": key[2],
                "method": key[3],
                "seeds": ",".join(str(r["seed"]) for r in runs),
                "eval_episodes": "/".join(sorted({str(r["eval_episodes"]) for r in runs})),
                "return": f"{statistics.mean(returns):.1f}" + (f" ± {std:.1f}" if len(returns) > 1 else ""),
                "ratio": f"{ratio:.3f}" if ratio is not None else "-",
                "policy_neuron_sparsity": f"{statistics.mean(r['policy_neuron_sparsity'] for r in runs):.3f}",
                "policy_weight_sparsity": f"{statistics.mean(r['policy_weight_sparsity'] for r in runs):.4f}",
                "policy_kept_weights": f"{statistics.mean(kept):.0f}" if kept else "-",
                "value_weight_sparsity": f"{statistics.mean(r['value_weight_sparsity'] for r in runs):.3f}",
            }
        )
    return out


def write(table: list[dict], out: Path, command: str) -> None:
    """Write the table as markdown (``out``) and CSV (``out`` with ``.csv``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"<!-- written by: {command} -->", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in table]
    out.write_text("\n".join(lines) + "\n")
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)


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
    records = [record(p, args.eval_episodes) for p in sorted((args.root / "runs").glob("*/results.json"))]
    command = "python scripts/compare_methods.py " + " ".join(sys.argv[1:])
    out = args.table or args.root / "methods.md"
    write(rows(records), out, command)
    print(out.read_text())


if __name__ == "__main__":
    main()
