import itertools
import pickle

import pytest

from prune_rl.core import SCHEDULES, CubicSparsity, GeometricSparsity, Sparsity


@pytest.mark.parametrize("name", SCHEDULES)
def test_hits_endpoints_and_is_monotone(name: str) -> None:
    s = SCHEDULES[name](final=0.9, begin=0.2, end=0.8)
    assert s(0.0) == 0.0 and s(0.2) == 0.0
    assert s(0.8) == pytest.approx(0.9) and s(1.0) == 0.9
    values = [s(i / 100) for i in range(101)]
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_cubic_prunes_fast_early_and_slowly_late() -> None:
    s = CubicSparsity(final=0.9, begin=0.2, end=0.8)
    assert s(0.35) - s(0.2) > s(0.8) - s(0.65)
    assert s(0.5) == pytest.approx(0.9 * (1 - 0.5**3))


def test_geometric_cuts_the_same_share_of_the_neurons_left_at_every_step() -> None:
    s = GeometricSparsity(final=0.95, begin=0.5, end=0.8, initial=0.2)
    alive = [1.0 - s(0.5 + 0.02 * i) for i in range(16)]
    ratios = [b / a for a, b in itertools.pairwise(alive)]
    assert alive[0] == pytest.approx(0.8) and alive[-1] == pytest.approx(0.05)
    assert ratios == pytest.approx([(0.05 / 0.8) ** (1 / 15)] * 15)


def test_geometric_is_gentler_than_cubic_where_few_neurons_are_left() -> None:
    cubic, geometric = CubicSparsity(0.95, 0.5, 0.8), GeometricSparsity(0.95, 0.5, 0.8)
    # steps of 2% of training: cubic's largest cuts a quarter of the neurons left (at ~85%), geometric's 18%
    steps = [0.5 + 0.02 * i for i in range(16)]

    def largest_cut(s: Sparsity) -> float:
        return max((s(b) - s(a)) / (1 - s(a)) for a, b in itertools.pairwise(steps))

    assert largest_cut(cubic) > 0.24 > 0.19 > largest_cut(geometric)


@pytest.mark.parametrize("name", SCHEDULES)
def test_survives_pickling(name: str) -> None:
    s = SCHEDULES[name](final=0.5, begin=0.1, end=0.6, initial=0.1)
    t = pickle.loads(pickle.dumps(s))
    assert [t(p / 10) for p in range(11)] == [s(p / 10) for p in range(11)]
    assert repr(t).startswith(type(s).__name__ + "(final=0.5")


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("kwargs", [{"final": 1.0}, {"final": 0.5, "begin": 0.7, "end": 0.2}, {"final": 0.2, "initial": 0.5}])
def test_rejects_bad_arguments(name: str, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SCHEDULES[name](**kwargs)
