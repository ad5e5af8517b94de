"""The report's statistics against hand computations (rliable's definitions, Agarwal et al. 2021)."""

import numpy as np
import pytest

from prune_rl.report.stats import (
    iqm,
    iqm_interval,
    mean_std,
    profile,
    profile_interval,
    ratio_interval,
    stratified_resamples,
)


def test_mean_std_is_the_sample_standard_deviation_with_n() -> None:
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx((5 / 3) ** 0.5), 4)  # sum of squares 5, over n - 1
    assert mean_std([7.0]) == (7.0, None, 1)  # one seed: no spread


def test_iqm_cuts_a_quarter_of_the_scores_at_each_end() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == 4.5  # 8 scores: 2 cut each side, mean of 3, 4, 5, 6
    assert iqm([3.0, 1.0, 2.0]) == 2.0  # floor(0.75) = 0 cut: the mean
    assert iqm([[10, 0], [1, 2]]) == 1.5  # every score pooled
    np.testing.assert_allclose(iqm(np.array([[1, 2, 3, 100], [4, 4, 0, 8]]), axis=1), [2.5, 4.0])


def test_iqm_matches_scipys_trimmed_mean_as_rliable_computes_it() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    scores = np.random.default_rng(1).normal(size=(7, 5))
    assert iqm(scores) == pytest.approx(scipy_stats.trim_mean(scores, proportiontocut=0.25, axis=None))


def test_the_stratified_bootstrap_resamples_within_each_task() -> None:
    a, b = stratified_resamples([[0.0, 1.0], [10.0, 20.0, 30.0]], reps=500)
    assert a.shape == (500, 2) and b.shape == (500, 3)
    assert set(np.unique(a)) == {0.0, 1.0} and set(np.unique(b)) == {10.0, 20.0, 30.0}  # no score crosses tasks


def test_the_iqm_interval_holds_the_estimate_and_is_a_point_without_spread() -> None:
    assert iqm_interval([[1.0, 1.0], [1.0, 1.0, 1.0]], reps=200) == (1.0, 1.0, 1.0)
    value, low, high = iqm_interval([[0.2, 0.9, 1.0], [0.8, 1.0, 1.1]], reps=2000)
    assert value == pytest.approx(0.925)  # 6 scores, one cut each side: mean of 0.8, 0.9, 1.0, 1.0
    assert 0.2 <= low < value < high <= 1.1


def test_the_profile_averages_each_tasks_share_of_runs_above_tau() -> None:
    taus = np.array([0.0, 0.5, 0.95, 1.0])
    # task 1: 2 of 2 above 0.5, 1 of 2 above 0.95; task 2: 1 of 4 above 0.5
    shares = profile([[0.9, 1.0], [0.1, 0.2, 0.3, 0.96]], taus)
    np.testing.assert_allclose(shares, [1.0, (1 + 0.25) / 2, (0.5 + 0.25) / 2, 0.0])
    low, high = profile_interval([[0.9, 1.0], [0.1, 0.2, 0.3, 0.96]], taus, reps=500)
    assert (low <= shares + 1e-12).all() and (shares <= high + 1e-12).all() and low[0] == high[0] == 1.0


def test_a_ratio_interval_needs_two_seeds_on_each_side() -> None:
    assert ratio_interval([1.0], [1.0, 2.0]) is None and ratio_interval([1.0, 2.0], [3.0]) is None
    assert ratio_interval([2.0, 2.0], [1.0, 1.0]) == (2.0, 2.0)
    assert ratio_interval([1.0, 2.0], [-1.0, 1.0]) is None  # a resampled dense mean at or below 0
