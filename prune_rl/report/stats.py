"""Statistics over seeds and tasks that RL reviewers accept (Agarwal et al. 2021, "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", arXiv 2108.13264; their library is ``rliable``).

- One task: the mean over seeds with the *sample* standard deviation (``n - 1`` in the denominator) and ``n``.
- Across tasks: the interquartile mean (IQM) of all runs' normalised scores pooled, with a 95% percentile interval
  from the stratified bootstrap (each task's runs resampled with replacement, on their own), and the performance
  profile: the share of runs scoring above ``tau``, averaged over tasks, for each ``tau``.

Scores here are normalised to dense: a run's final return over the mean final return of the dense runs of its task.
Everything is numpy; the functions follow ``rliable``'s definitions (``metrics.aggregate_iqm`` is
``scipy.stats.trim_mean(scores, 0.25, axis=None)``, ``library.StratifiedBootstrap``, ``create_performance_profile``),
so the numbers agree with it on the same scores and resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_BOOTSTRAP = 50_000  # rliable's default for interval estimates
N_BOOTSTRAP_PROFILE = 2_000  # and for performance profiles


def mean_std(values: Sequence[float]) -> tuple[float, float | None, int]:
    """
    The mean, the sample standard deviation ``sqrt(sum((x - mean)^2) / (n - 1))`` and ``n``.

    :param values: One value per seed.
    :return: ``(mean, std, n)``; ``std`` is ``None`` for a single value (it is not defined there).
    """
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else None, len(x)


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """
    The interquartile mean: the mean of the scores left after ``floor(n / 4)`` of the lowest and as many of the
    highest are cut (``scipy.stats.trim_mean(scores, 0.25)``, rliable's ``aggregate_iqm``).

    :param scores: Scores, e.g. ``(runs,)``, or ``(resamples, runs)`` with ``axis=1``.
    :param axis: The axis to aggregate over (``None``: all scores).
    :return: The IQM (an array over the other axes when ``axis`` is given).
    """
    x = np.asarray(scores, dtype=float)
    if axis is None:
        x, axis = x.reshape(-1), 0
    x = np.sort(x, axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    out = np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)
    return float(out) if out.ndim == 0 else out


def stratified_resamples(tasks: Sequence[Sequence[float]], reps: int, seed: int = 0) -> list[np.ndarray]:
    """
    The stratified bootstrap: each task's runs resampled with replacement, independently of the other tasks.

    :param tasks: Per task, its runs' scores.
    :param reps: Resamples.
    :param seed: Of the generator (the same report from the same runs).
    :return: Per task, its resampled scores ``(reps, runs of the task)``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for scores in tasks:
        x = np.asarray(scores, dtype=float)
        out.append(x[rng.integers(len(x), size=(reps, len(x)))])
    return out


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """:return: The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of bootstrap ``samples`` along axis 0."""
    low, high = np.asarray(np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0))
    return low, high


def iqm_interval(tasks: Sequence[Sequence[float]], level: float = 0.95, reps: int = N_BOOTSTRAP) -> tuple[float, float, float]:
    """
    The IQM of all runs of all tasks pooled, and its stratified bootstrap percentile interval.

    :param tasks: Per task, its runs' normalised scores.
    :param level: Coverage of the interval.
    :param reps: Bootstrap resamples.
    :return: ``(iqm, low, high)``.
    """
    pooled = np.concatenate([np.asarray(t, dtype=float) for t in tasks])
    samples = iqm(np.concatenate(stratified_resamples(tasks, reps), axis=1), axis=1)
    low, high = percentile_interval(np.asarray(samples), level)
    return float(iqm(pooled)), float(low), float(high)


def profile(tasks: Sequence[Sequence[float]], taus: np.ndarray) -> np.ndarray:
    """
    The performance profile (run-score distribution): ``F(tau) = mean over tasks m of (1/N_m) sum_n [x_mn > tau]``.

    :param tasks: Per task, its runs' normalised scores.
    :param taus: Thresholds.
    :return: ``F(tau)`` per threshold.
    """
    return np.mean([(np.asarray(t, dtype=float)[:, None] > taus[None, :]).mean(axis=0) for t in tasks], axis=0)


def profile_interval(
    tasks: Sequence[Sequence[float]], taus: np.ndarray, level: float = 0.95, reps: int = N_BOOTSTRAP_PROFILE
) -> tuple[np.ndarray, np.ndarray]:
    """:return: A stratified bootstrap percentile band ``(low, high)`` of :func:`profile` at each threshold."""
    resampled = stratified_resamples(tasks, reps)
    samples = np.mean([(r[:, :, None] > taus[None, None, :]).mean(axis=1) for r in resampled], axis=0)  # (reps, taus)
    return percentile_interval(samples, level)


def ratio_interval(
    returns: Sequence[float], dense: Sequence[float], level: float = 0.95, reps: int = 10_000
) -> tuple[float, float] | None:
    """
    A percentile bootstrap interval of ``mean(returns) / mean(dense)`` over seeds: both groups' seeds resampled with
    replacement, independently.

    :param returns: The method's final return per seed.
    :param dense: The dense runs' final return per seed.
    :param level: Coverage of the interval.
    :param reps: Bootstrap resamples.
    :return: ``(low, high)``, or ``None`` with fewer than two seeds in a group (one seed has no spread to resample)
        or where a resampled dense mean is not positive (the ratio means nothing there).
    """
    if min(len(returns), len(dense)) < 2:
        return None
    ours, theirs = (r.mean(axis=1) for r in stratified_resamples([returns, dense], reps))
    if not bool((theirs > 0).all()):
        return None
    low, high = percentile_interval(ours / theirs, level)
    return float(low), float(high)
