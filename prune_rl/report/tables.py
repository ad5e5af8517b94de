"""The pruned-vs-dense table: per task, algorithm and method, the final return over seeds and its ratio to dense.

The ratio is the method's mean return over the dense runs' mean return of the same env, algorithm and budget
(``-`` without dense runs there, or where their mean is not positive), with a 95% percentile bootstrap interval over
seeds: both groups' seeds resampled with replacement, independently, 10,000 times (:func:`ratio_interval`). ``std``
is the population standard deviation over seeds. Sparsity and kept weights are of the deployed network, averaged
over seeds; ``guard time`` is the guard's share of the runs' wall time.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prune_rl.report.collect import RunRecord

COLUMNS = ("env", "algo", "timesteps", "method", "target", "seeds", "return", "std", "ratio", "ratio_low", "ratio_high",
           "neuron_sparsity", "weight_sparsity", "kept_weights", "guard_share")  # fmt: skip
N_BOOTSTRAP = 10_000


Key = tuple[str, str, int, str, float | str]


def group_key(record: RunRecord) -> Key:
    """:return: ``(env, algo, n_timesteps, method, target sparsity)``: the runs that differ only in their seed."""
    return record.env, record.algo, record.n_timesteps, record.method, record.target if record.target is not None else 0.0


def ratio_interval(returns: Sequence[float], dense: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """
    A percentile bootstrap interval of ``mean(returns) / mean(dense)`` over seeds.

    :param returns: The method's final return per seed.
    :param dense: The dense runs' final return per seed.
    :param level: Coverage of the interval.
    :return: ``(low, high)``, or ``None`` if a resampled dense mean is not positive (the ratio means nothing there).
    """
    rng = np.random.default_rng(0)  # the same table from the same runs
    ours = np.asarray(returns, dtype=float)[rng.integers(len(returns), size=(N_BOOTSTRAP, len(returns)))].mean(axis=1)
    theirs = np.asarray(dense, dtype=float)[rng.integers(len(dense), size=(N_BOOTSTRAP, len(dense)))].mean(axis=1)
    if not bool((theirs > 0).all()):
        return None
    low, high = np.quantile(ours / theirs, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def rows(records: list[RunRecord]) -> list[dict]:
    """
    :param records: Runs.
    :return: One row per :func:`group_key`, dense first within each task, then by method name.
    """
    groups: dict[Key, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    dense = {key[:3]: [r.final_return for r in runs] for key, runs in groups.items() if key[3] == "none"}
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3] != "none", k[3], str(k[4]))):
        runs = sorted(groups[key], key=lambda r: r.seed)
        returns = [r.final_return for r in runs]
        mean = statistics.fmean(returns)
        reference = statistics.fmean(dense[key[:3]]) if key[:3] in dense else None
        interval = ratio_interval(returns, dense[key[:3]]) if reference is not None and reference > 0 else None
        kept = [r.kept_weights for r in runs if r.kept_weights is not None]
        shares = [r.guard_share for r in runs if r.guard_share is not None]
        out.append({
            "env": key[0], "algo": key[1], "timesteps": key[2], "method": key[3],
            "target": key[4] if key[3] != "none" else None,
            "seeds": ",".join(str(r.seed) for r in runs),
            "return": round(mean, 2), "std": round(statistics.pstdev(returns), 2),
            "ratio": round(mean / reference, 3) if reference is not None and reference > 0 else None,
            "ratio_low": round(interval[0], 3) if interval else None,
            "ratio_high": round(interval[1], 3) if interval else None,
            "neuron_sparsity": round(statistics.fmean(r.neuron_sparsity for r in runs), 4),
            "weight_sparsity": round(statistics.fmean(r.weight_sparsity for r in runs), 4),
            "kept_weights": round(statistics.fmean(kept)) if kept else None,
            "guard_share": round(statistics.fmean(shares), 5) if shares else None,
        })  # fmt: skip
    return out


def markdown(table: list[dict]) -> str:
    """:return: The table in markdown, return as ``mean ± std``, ratio with its interval as ``r [low, high]``."""
    head = ["env", "algo", "timesteps", "method", "target", "seeds", "return", "ratio", "neuron sparsity",
            "weight sparsity", "kept weights", "guard time"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        cells = [row["env"], row["algo"], row["timesteps"], row["method"], row["target"], row["seeds"],
                 f"{row['return']} ± {row['std']}", _ratio(row), row["neuron_sparsity"], row["weight_sparsity"],
                 row["kept_weights"], f"{row['guard_share']:.2%}" if row.get("guard_share") is not None else None]  # fmt: skip
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _ratio(row: dict) -> str | None:
    if row["ratio"] is None:
        return None
    if row.get("ratio_low") is None:
        return str(row["ratio"])
    return f"{row['ratio']} [{row['ratio_low']}, {row['ratio_high']}]"


def write_csv(table: list[dict], path: Path) -> None:
    """Write the rows to ``path`` with :data:`COLUMNS` as header."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
