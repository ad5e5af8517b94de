"""The report's figures, one PNG each, with a panel per (env, algorithm):

- ``returns.png``: the periodic evaluations' mean return over training, each method against dense, the mean over
  seeds with a band of one standard deviation;
- ``neurons.png``: the deployed network's alive neurons over training;
- ``frontier.png``: the compression frontier, final return against the deployed network's kept weights (log
  scale), one point per run, a line per method through its means per target sparsity, dense as a dashed line.

Each ``*_series`` function returns the numbers its figure draws, so they can be checked without reading pixels.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from prune_rl.report.collect import RunRecord

Series = dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]


def label(record: RunRecord) -> str:
    """:return: The run's line in a plot: its method, and its target sparsity for pruned runs (``dsp@0.95``)."""
    return method_label(record.method, record.target)


def method_label(method: str, target: float | str | None) -> str:
    """:return: ``method``, and its target sparsity where it has one (``dsp@0.95``, ``dsp@auto``)."""
    if target is None or method == "none":
        return method
    return f"{method}@{target:g}" if isinstance(target, float) else f"{method}@{target}"


def _panels(records: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    panels: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        panels.setdefault((record.env, record.algo), []).append(record)
    return panels


def over_training(records: list[RunRecord], attr: str) -> Series:
    """
    Curves averaged over seeds: per panel and method, ``(timesteps, mean, std)``.

    Runs are grouped by :func:`label` (method and target sparsity), and by budget when a panel holds several (a
    fine-tuning by ``prune-rl prune`` beside training runs); seeds are aligned on the first run's timesteps (linear
    interpolation where they differ).

    :param records: Runs.
    :param attr: ``curve`` (return) or ``neurons`` (alive neurons of the deployed network).
    :return: ``{(env, algo): {label: (x, mean, std)}}``, labels without data left out.
    """
    out: Series = {}
    for panel, runs in _panels(records).items():
        methods: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        budgets = len({run.n_timesteps for run in runs}) > 1  # e.g. a fine-tuning beside training runs
        for run in runs:
            x, y = getattr(run, attr)
            if len(x):
                name = f"{label(run)} ({run.n_timesteps} steps)" if budgets else label(run)
                methods.setdefault(name, []).append((x, y))
        for method, curves in methods.items():
            grid = curves[0][0]
            ys = np.stack([np.interp(grid, x, y) for x, y in curves])
            out.setdefault(panel, {})[method] = (grid, ys.mean(axis=0), ys.std(axis=0))
    return out


Point = tuple[float, float, float | str]  # (kept weights, return, target sparsity: a fraction or "auto")


def frontier(records: list[RunRecord]) -> dict[tuple[str, str], dict[str, list[Point]]]:
    """
    :param records: Runs.
    :return: ``{(env, algo): {method: [(kept weights, return, target sparsity) per run]}}`` sorted; dense runs (no
        kept weights known) are left out: they are drawn as a line at their mean return.
    """
    out: dict[tuple[str, str], dict[str, list[Point]]] = {}
    for panel, runs in _panels(records).items():
        for run in runs:
            if run.kept_weights is not None:
                point: Point = (float(run.kept_weights), run.final_return, run.target if run.target is not None else 0.0)
                out.setdefault(panel, {}).setdefault(run.method, []).append(point)
        for points in out.get(panel, {}).values():
            points.sort(key=lambda p: (p[0], p[1], str(p[2])))
    return out


def frontier_means(points: list[Point]) -> list[tuple[float, float]]:
    """
    :param points: One method's ``(kept weights, return, target)`` per run.
    :return: Its line: per target sparsity, the mean kept weights and mean return, by kept weights.
    """
    targets = sorted({target for _, _, target in points}, key=str)
    means = [
        (statistics.fmean(k for k, _, t in points if t == target), statistics.fmean(r for _, r, t in points if t == target))
        for target in targets
    ]
    return sorted(means)


def _figure(n: int):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4), squeeze=False)
    return plt, fig, axes[0]


def plot_over_training(series: Series, path: Path, ylabel: str) -> None:
    """Draw :func:`over_training`'s curves, a panel per (env, algo), and write ``path``."""
    plt, fig, axes = _figure(max(len(series), 1))
    for ax, (panel, methods) in zip(axes, sorted(series.items()), strict=False):
        for method, (x, mean, std) in sorted(methods.items(), key=lambda kv: (not kv[0].startswith("none"), kv[0])):
            dense = method.split(" (")[0] == "none"  # "none", or "none (100000 steps)" beside other budgets
            style = {"color": "black", "linestyle": "--"} if dense else {}
            ax.plot(x, mean, label=method.replace("none", "dense", 1) if dense else method, **style)
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=style.get("color"))
        ax.set(title=f"{panel[0]} ({panel[1]})", xlabel="timesteps", ylabel=ylabel)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_frontier(records: list[RunRecord], path: Path) -> None:
    """Draw :func:`frontier` (a line per method through :func:`frontier_means`) and write ``path``."""
    points = frontier(records)
    dense = {
        panel: statistics.fmean(r.final_return for r in runs if r.method == "none")
        for panel, runs in _panels(records).items()
        if any(r.method == "none" for r in runs)
    }
    panels = sorted(set(points) | set(dense))
    plt, fig, axes = _figure(max(len(panels), 1))
    for ax, panel in zip(axes, panels, strict=False):
        for method, pts in sorted(points.get(panel, {}).items()):
            kept, returns, _ = np.array(pts).T
            dots = ax.scatter(kept, returns, s=14, alpha=0.5)
            xs, ys = np.array(frontier_means(pts)).T
            ax.plot(xs, ys, marker="o", color=dots.get_facecolor()[0], label=method)
        if panel in dense:
            ax.axhline(dense[panel], color="black", linestyle="--", label="dense")
        ax.set(title=f"{panel[0]} ({panel[1]})", xlabel="weights kept (deployed network)", ylabel="final return")
        ax.set_xscale("log")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def profile_series(
    records: list[RunRecord], n_taus: int = 101
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """
    The performance profiles across tasks (:func:`prune_rl.report.stats.profile`) of the runs' dense-normalised scores.

    :param records: Runs.
    :param n_taus: Thresholds, evenly from 0 to the largest score (at least 1.2).
    :return: ``{label: (tau, share of runs above tau, band low, band high)}``, a stratified bootstrap 95% band.
    """
    from prune_rl.report.stats import profile, profile_interval
    from prune_rl.report.tables import normalised_scores

    scores = normalised_scores(records)
    top = max([1.2, *(s for tasks in scores.values() for runs in tasks.values() for s in runs)])
    taus = np.linspace(0.0, top, n_taus)
    out = {}
    for (method, target), tasks in scores.items():
        name = method_label(method, target)
        low, high = profile_interval(list(tasks.values()), taus)
        out[name] = (taus, profile(list(tasks.values()), taus), low, high)
    return out


def plot_profile(records: list[RunRecord], path: Path) -> None:
    """Draw :func:`profile_series`, one line and band per method, and write ``path``."""
    plt, fig, axes = _figure(1)
    ax = axes[0]
    for name, (taus, share, low, high) in sorted(profile_series(records).items(), key=lambda kv: (kv[0] != "none", kv[0])):
        style = {"color": "black", "linestyle": "--"} if name == "none" else {}
        (line,) = ax.plot(taus, share, label="dense" if name == "none" else name, **style)
        ax.fill_between(taus, low, high, alpha=0.2, color=line.get_color())
    ax.set(title="performance profile across tasks", xlabel="final return / dense mean (tau)",
           ylabel="share of runs with score > tau", ylim=(0, 1.05))  # fmt: skip
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
