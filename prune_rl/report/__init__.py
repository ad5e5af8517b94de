"""Reading run directories, never training: tables, plots, TensorBoard (HParams, pruned against dense) and the cost of
deployed policies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prune_rl.report.board import write_tensorboard
from prune_rl.report.collect import RunRecord, collect, find_runs, read_run
from prune_rl.report.plots import over_training, plot_frontier, plot_over_training, plot_profile
from prune_rl.report.summary import is_summary, write_summaries
from prune_rl.report.tables import AGGREGATE_COLUMNS, aggregate_markdown, aggregate_rows, markdown, rows, write_csv

FILES = ("results.md", "results.csv", "aggregate.csv", "returns.png", "neurons.png", "frontier.png", "profile.png")


def write_report(
    paths: Sequence[str | Path],
    out: str | Path,
    tensorboard: str | Path | None = None,
    summaries: str | Path | None = None,
) -> list[dict]:
    """
    Write the report of every run under ``paths`` into ``out``: the tables (markdown and CSV) and the four plots.

    ``results.md`` starts with the command that writes it again (over summaries, also how to write them from new
    runs), and holds the per-task table
    (:func:`prune_rl.report.tables.rows`) and the across-task one (:func:`prune_rl.report.tables.aggregate_rows`).

    :param paths: Run directories or folders holding them.
    :param out: The report folder (created).
    :param tensorboard: Also write, into this folder, the runs of each task on the same TensorBoard charts with the
        table and plots (:func:`prune_rl.report.board.write_tensorboard`).
    :param summaries: First write the runs' summaries into this folder (:func:`prune_rl.report.summary.write_summaries`)
        and report from them, so that the report can be committed beside them and written again from them.
    :return: The per-task table's rows.
    """
    records = collect(paths)
    if summaries is not None:
        rows(records)  # refuse two runs of one configuration and seed before writing anything
        write_summaries(records, summaries)
        paths = [summaries]
        records = collect(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = rows(records)
    aggregate = aggregate_rows(records)
    command = f"prune-rl report {' '.join(map(str, paths))} --out {out}"
    if len(paths) == 1 and all(is_summary(record.path) for record in records):  # say how to write them from new runs
        command += f"; from new runs: prune-rl report RUN_DIRS... --summaries {paths[0]} --out {out}"
    (out / "results.md").write_text(
        f"<!-- written by: {command} -->\n\n{markdown(table)}\n"
        "Where a task's dense mean return is negative, its ratio counts returns from a random policy's (`from`). "
        "Across tasks: the interquartile mean (IQM) of each run's final return over its task's dense mean return, "
        "with a stratified bootstrap 95% interval (rliable's definitions, Agarwal et al. 2021); `profile.png` draws "
        "the performance profiles.\n\n" + aggregate_markdown(aggregate)
    )
    write_csv(table, out / "results.csv")
    write_csv(aggregate, out / "aggregate.csv", AGGREGATE_COLUMNS)
    plot_over_training(over_training(records, "curve"), out / "returns.png", "mean return (evaluation)")
    plot_over_training(over_training(records, "neurons"), out / "neurons.png", "alive neurons (deployed network)")
    plot_frontier(records, out / "frontier.png")
    plot_profile(records, out / "profile.png")
    if tensorboard is not None:
        images = [out / name for name in FILES if name.endswith(".png")]
        write_tensorboard(records, tensorboard, markdown(table), images)
    return table


__all__ = [
    "FILES",
    "RunRecord",
    "collect",
    "find_runs",
    "read_run",
    "write_report",
    "write_summaries",
    "write_tensorboard",
]
