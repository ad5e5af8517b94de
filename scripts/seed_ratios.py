"""Per-seed pruned/dense returns of one benchmark row, with a bootstrap interval over seeds for its ratio.

Reads the per-run records that ``scripts/benchmark_pruning.py`` keeps beside its table
(``results/pruning_benchmark_runs.csv``). Only seeds with both a dense and a pruned run count, and the two runs of
a seed stay together when seeds are resampled (a paired bootstrap): the table's ratio is the pruned mean over the
dense mean, and the interval says how far that ratio could move with other seeds of the same spread.

``--pruned-runs`` takes the pruned records from another file, e.g. a tuning root's, and the dense ones from
``--runs``: a variant trained in its own root is then compared with the dense runs of the same seeds.

Examples::

    python scripts/seed_ratios.py --env Walker2d-v5 --timesteps 1000000
    python scripts/seed_ratios.py --env Walker2d-v5 --timesteps 1000000 \\
        --pruned-runs outputs/tuning/walker_1m_distill/pruning_benchmark_runs.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
from pathlib import Path


def paired_returns(records: list[dict], env: str, algo: str, timesteps: int) -> dict[int, tuple[float, float]]:
    """
    ``{seed: (dense return, pruned return)}`` for the seeds of one task that have both runs.

    :param records: Run records (``benchmark_pruning.read_records``).
    :param env: Environment id, e.g. ``Walker2d-v5``.
    :param algo: Algorithm, e.g. ``ppo``.
    :param timesteps: The budget.
    """
    by_method: dict[str, dict[int, float]] = {"none": {}, "dsp": {}}
    for r in records:
        if (r["env"], r["algo"], int(r["timesteps"])) == (env, algo, timesteps) and r["method"] in by_method:
            by_method[r["method"]][int(r["seed"])] = float(r["mean_return"])
    seeds = sorted(set(by_method["none"]) & set(by_method["dsp"]))
    return {s: (by_method["none"][s], by_method["dsp"][s]) for s in seeds}


def ratio_of_means(pairs: list[tuple[float, float]]) -> float:
    """The pruned mean over the dense mean (the benchmark table's ``return_ratio``)."""
    return statistics.mean(p for _, p in pairs) / statistics.mean(d for d, _ in pairs)


def bootstrap(pairs: list[tuple[float, float]], n: int = 10000, seed: int = 0) -> list[float]:
    """
    The ratio of means over ``n`` resamples of the seeds, with replacement, each seed's two runs together.

    :param pairs: ``(dense, pruned)`` per seed.
    :param n: Resamples.
    :param seed: Seed of the resampling.
    :return: The ``n`` ratios, sorted.
    """
    rng = random.Random(seed)
    return sorted(ratio_of_means(rng.choices(pairs, k=len(pairs))) for _ in range(n))


def read(path: Path) -> list[dict]:
    """:return: The run records of a ``*_runs.csv`` file."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("results/pruning_benchmark_runs.csv"))
    parser.add_argument("--pruned-runs", type=Path, help="read the pruned records from here instead of --runs")
    parser.add_argument("--env", required=True, help="environment id, e.g. Walker2d-v5")
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--timesteps", type=int, required=True)
    parser.add_argument("--target", type=float, default=0.95, help="the ratio the row is held to")
    parser.add_argument("--n-boot", type=int, default=10000)
    args = parser.parse_args()
    records = read(args.runs)
    if args.pruned_runs is not None:
        records = [r for r in records if r["method"] == "none"] + [r for r in read(args.pruned_runs) if r["method"] != "none"]
    returns = paired_returns(records, args.env, args.algo, args.timesteps)
    if len(returns) < 2:
        source = args.runs if args.pruned_runs is None else f"{args.runs} + {args.pruned_runs}"
        raise SystemExit(f"{source}: {len(returns)} seed(s) of {args.env} {args.algo} {args.timesteps} with both runs")
    print("| seed | dense | pruned | pruned / dense |\n|---|---|---|---|")
    for seed, (dense, pruned) in returns.items():
        print(f"| {seed} | {dense:.1f} | {pruned:.1f} | {pruned / dense:.3f} |")
    pairs = list(returns.values())
    ratios = bootstrap(pairs, args.n_boot)
    low, high = ratios[int(0.05 * len(ratios))], ratios[int(0.95 * len(ratios)) - 1]
    above = sum(r >= args.target for r in ratios) / len(ratios)
    print(
        f"\n{len(pairs)} seeds: ratio of means {ratio_of_means(pairs):.3f}, mean of the per-seed ratios "
        f"{statistics.mean(p / d for d, p in pairs):.3f}"
    )
    print(
        f"paired bootstrap over seeds ({args.n_boot} resamples): 90% interval {low:.3f}-{high:.3f}; "
        f"{above:.1%} of resamples at or above {args.target}"
    )


if __name__ == "__main__":
    main()
