"""The pruned-vs-dense table: per task, algorithm and method, the final return over seeds and its ratio to dense.

The return is the mean over seeds with its sample standard deviation (``-`` for one seed) and ``n``. The ratio is the
method's mean return over the dense runs' mean return of the same env, algorithm and budget (``-`` without dense runs
there), with a 95% percentile bootstrap interval over seeds: both groups' seeds resampled with replacement,
independently, 10,000 times (:func:`prune_rl.report.stats.ratio_interval`; none with one seed). Where the dense mean
is not positive, the ratio is of the returns' improvements over a random policy's (``from`` that return;
:mod:`prune_rl.report.baseline`). Sparsity and kept weights are of the deployed network, averaged over seeds;
``guard time`` is the guard's share of the runs' wall time.

Across tasks (:func:`aggregate_rows`), each method's final returns normalised to dense (a run's return over its task's
dense mean) give the interquartile mean with a stratified bootstrap 95% interval (:mod:`prune_rl.report.stats`).

A table holds one run per configuration and seed: two runs of the same task, budget, method, target and seed (a
rerun, or the same dense baseline from two sweeps) are refused, never averaged.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from prune_rl.report.baseline import ratio_zero
from prune_rl.report.collect import RunRecord
from prune_rl.report.stats import iqm_interval, mean_std, ratio_interval

COLUMNS = ("env", "algo", "timesteps", "method", "target", "seeds", "n", "return", "std", "ratio", "ratio_low",
           "ratio_high", "ratio_zero", "neuron_sparsity", "weight_sparsity", "kept_weights", "guard_share")  # fmt: skip
AGGREGATE_COLUMNS = ("method", "target", "tasks", "runs", "iqm", "iqm_low", "iqm_high")


Key = tuple[str, str, int, str, float | str]


def group_key(record: RunRecord) -> Key:
    """:return: ``(env, algo, n_timesteps, method, target sparsity)``: the runs that differ only in their seed."""
    return record.env, record.algo, record.n_timesteps, record.method, record.target if record.target is not None else 0.0


def check_one_run_per_seed(records: list[RunRecord]) -> None:
    """
    :param records: Runs.
    :raises ValueError: If two runs share a configuration and seed (one line naming both).
    """
    seen: dict[tuple, Path] = {}
    for record in records:
        key = (*group_key(record), record.seed)
        if key in seen:
            raise ValueError(
                f"two runs of {record.env} {record.algo} {record.method} seed {record.seed} at {record.n_timesteps} steps: "
                f"{seen[key]} and {record.path}; report one of them"
            )
        seen[key] = record.path


def rows(records: list[RunRecord]) -> list[dict]:
    """
    :param records: Runs.
    :return: One row per :func:`group_key`, dense first within each task, then by method name.
    """
    check_one_run_per_seed(records)
    groups: dict[Key, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    dense = {key[:3]: [r.final_return for r in runs] for key, runs in groups.items() if key[3] == "none"}
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3] != "none", k[3], str(k[4]))):
        runs = sorted(groups[key], key=lambda r: r.seed)
        returns = [r.final_return for r in runs]
        mean, std, n = mean_std(returns)
        reference = statistics.fmean(dense[key[:3]]) if key[:3] in dense else None
        zero = ratio_zero(key[0], reference) if reference is not None else None
        ratio, interval = None, None
        if reference is not None and zero is not None:
            ratio = (mean - zero) / (reference - zero)
            interval = ratio_interval([x - zero for x in returns], [x - zero for x in dense[key[:3]]])
        kept = [r.kept_weights for r in runs if r.kept_weights is not None]
        shares = [r.guard_share for r in runs if r.guard_share is not None]
        out.append({
            "env": key[0], "algo": key[1], "timesteps": key[2], "method": key[3],
            "target": key[4] if key[3] != "none" else None,
            "seeds": ",".join(str(r.seed) for r in runs), "n": n,
            "return": round(mean, 2), "std": round(std, 2) if std is not None else None,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "ratio_low": round(interval[0], 3) if interval else None,
            "ratio_high": round(interval[1], 3) if interval else None,
            "ratio_zero": round(zero, 1) if zero else None,
            "neuron_sparsity": round(statistics.fmean(r.neuron_sparsity for r in runs), 4),
            "weight_sparsity": round(statistics.fmean(r.weight_sparsity for r in runs), 4),
            "kept_weights": round(statistics.fmean(kept)) if kept else None,
            "guard_share": round(statistics.fmean(shares), 5) if shares else None,
        })  # fmt: skip
    return out


def markdown(table: list[dict]) -> str:
    """:return: The table in markdown, return as ``mean ± sample std``, ratio with its interval as ``r [low, high]``."""
    head = ["env", "algo", "timesteps", "method", "target", "seeds", "n", "return (mean ± sample std)",
            "ratio to dense [95% CI]", "neuron sparsity", "weight sparsity", "kept weights", "guard time"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        std = "-" if row["std"] is None else row["std"]
        cells = [row["env"], row["algo"], row["timesteps"], row["method"], row["target"], row["seeds"], row["n"],
                 f"{row['return']} ± {std}", _ratio(row), row["neuron_sparsity"], row["weight_sparsity"],
                 row["kept_weights"], f"{row['guard_share']:.2%}" if row.get("guard_share") is not None else None]  # fmt: skip
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _ratio(row: dict) -> str | None:
    if row["ratio"] is None:
        return None
    cell = str(row["ratio"]) if row.get("ratio_low") is None else f"{row['ratio']} [{row['ratio_low']}, {row['ratio_high']}]"
    return cell if row.get("ratio_zero") is None else f"{cell} from {row['ratio_zero']}"


def normalised_scores(records: list[RunRecord]) -> dict[tuple[str, float | str | None], dict[tuple, list[float]]]:
    """
    :param records: Runs.
    :return: ``{(method, target): {(env, algo, budget): [final return / the task's dense mean return, per run]}}``,
        dense included (its scores average 1); where the dense mean is not positive, both counted from a random
        policy's return (:func:`prune_rl.report.baseline.ratio_zero`), tasks without one left out.
    """
    dense: dict[tuple, list[float]] = {}
    for record in records:
        if record.method == "none":
            dense.setdefault(group_key(record)[:3], []).append(record.final_return)
    out: dict[tuple[str, float | str | None], dict[tuple, list[float]]] = {}
    for record in sorted(records, key=lambda r: (*map(str, group_key(r)), r.seed)):
        task = group_key(record)[:3]
        reference = statistics.fmean(dense[task]) if task in dense else None
        zero = ratio_zero(record.env, reference) if reference is not None else None
        if reference is not None and zero is not None:
            method = (record.method, record.target if record.method != "none" else None)
            out.setdefault(method, {}).setdefault(task, []).append((record.final_return - zero) / (reference - zero))
    return out


def aggregate_rows(records: list[RunRecord]) -> list[dict]:
    """
    :param records: Runs.
    :return: Per method and target, across the tasks it ran: the interquartile mean of its dense-normalised scores
        with a stratified bootstrap 95% interval (:func:`prune_rl.report.stats.iqm_interval`), dense first.
    """
    out = []
    scores = normalised_scores(records)
    for (method, target), tasks in sorted(scores.items(), key=lambda kv: (kv[0][0] != "none", kv[0][0], str(kv[0][1]))):
        value, low, high = iqm_interval(list(tasks.values()))
        out.append({"method": method, "target": target, "tasks": len(tasks), "runs": sum(map(len, tasks.values())),
                    "iqm": round(value, 3), "iqm_low": round(low, 3), "iqm_high": round(high, 3)})  # fmt: skip
    return out


def aggregate_markdown(table: list[dict]) -> str:
    """:return: :func:`aggregate_rows` in markdown."""
    head = ["method", "target", "tasks", "runs", "IQM of return / dense [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        cells = [
            row["method"],
            row["target"],
            row["tasks"],
            row["runs"],
            f"{row['iqm']} [{row['iqm_low']}, {row['iqm_high']}]",
        ]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(table: list[dict], path: Path, columns: tuple[str, ...] = COLUMNS) -> None:
    """Write the rows to ``path`` with ``columns`` (:data:`COLUMNS` by default) as header."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
