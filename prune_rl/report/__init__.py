"""Reading run directories, never training: tables, plots, TensorBoard (HParams, pruned against dense) and the cost of
deployed policies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prune_rl.report.board import write_tensorboard
from prune_rl.report.collect import RunRecord, collect, find_runs, read_run
from prune_rl.report.plots import over_training, plot_frontier, plot_over_training
from prune_rl.report.tables import markdown, rows, write_csv

FILES = ("results.md", "results.csv", "returns.png", "neurons.png", "frontier.png")


def write_report(paths: Sequence[str | Path], out: str | Path, tensorboard: str | Path | None = None) -> list[dict]:
    """
    Write the report of every run under ``paths`` into ``out``: the table (markdown and CSV) and the three plots.

    :param paths: Run directories or folders holding them.
    :param out: The report folder (created).
    :param tensorboard: Also write, into this folder, the runs of each task on the same TensorBoard charts with the
        table and plots (:func:`prune_rl.report.board.write_tensorboard`).
    :return: The table's rows.
    """
    records = collect(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = rows(records)
    (out / "results.md").write_text(markdown(table))
    write_csv(table, out / "results.csv")
    plot_over_training(over_training(records, "curve"), out / "returns.png", "mean return (evaluation)")
    plot_over_training(over_training(records, "neurons"), out / "neurons.png", "alive neurons (deployed network)")
    plot_frontier(records, out / "frontier.png")
    if tensorboard is not None:
        images = [out / name for name in FILES if name.endswith(".png")]
        write_tensorboard(records, tensorboard, markdown(table), images)
    return table


__all__ = ["FILES", "RunRecord", "collect", "find_runs", "read_run", "write_report", "write_tensorboard"]
