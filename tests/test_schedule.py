import pickle

import pytest

from prune_rl.pruning import CubicSparsity
import itertools


def test_hits_endpoints_and_is_monotone() -> None:
    s = CubicSparsity(final=0.9, begin=0.2, end=0.8)
    assert s(0.0) == 0.0 and s(0.2) == 0.0
    assert s(0.8) == pytest.approx(0.9) and s(1.0) == 0.9
    values = [s(i / 100) for i in range(101)]
    assert all(b >= a for a, b in itertools.pairwise(values))
    # cubic: prunes fast early, slowly late
    assert s(0.35) - s(0.2) > s(0.8) - s(0.65)


def test_survives_pickling() -> None:
    s = CubicSparsity(final=0.5, begin=0.1, end=0.6, initial=0.1)
    t = pickle.loads(pickle.dumps(s))
    assert [t(p / 10) for p in range(11)] == [s(p / 10) for p in range(11)]


@pytest.mark.parametrize("kwargs", [{"final": 1.0}, {"final": 0.5, "begin": 0.7, "end": 0.2}, {"final": 0.2, "initial": 0.5}])
def test_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CubicSparsity(**kwargs)
