"""Sparsity schedules over training progress.

``progress`` is the fraction of training done, in ``[0, 1]`` (SB3's ``1 - progress_remaining``).
Schedules are picklable classes, not closures, so they survive being saved with a model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Sparsity(ABC):
    """
    A sparsity schedule that rises from ``initial`` at ``begin`` to ``final`` at ``end``.

    :param final: Sparsity (fraction of neurons removed) reached at ``end``.
    :param begin: Progress at which pruning starts.
    :param end: Progress at which ``final`` is reached.
    :param initial: Sparsity at ``begin``.
    """

    def __init__(self, final: float, begin: float = 0.1, end: float = 0.7, initial: float = 0.0) -> None:
        if not 0.0 <= initial <= final < 1.0:
            raise ValueError(f"need 0 <= initial <= final < 1, got initial={initial}, final={final}")
        if not 0.0 <= begin < end <= 1.0:
            raise ValueError(f"need 0 <= begin < end <= 1, got begin={begin}, end={end}")
        self.final = final
        self.begin = begin
        self.end = end
        self.initial = initial

    def __call__(self, progress: float) -> float:
        """
        :param progress: Fraction of training done.
        :return: Target sparsity at that point.
        """
        if progress <= self.begin:
            return self.initial
        if progress >= self.end:
            return self.final
        return self._between((progress - self.begin) / (self.end - self.begin))

    @abstractmethod
    def _between(self, x: float) -> float:
        """:param x: Fraction of the window ``[begin, end]`` done, in ``(0, 1)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(final={self.final}, begin={self.begin}, end={self.end}, initial={self.initial})"


class CubicSparsity(Sparsity):
    """
    Gradual pruning schedule of Zhu & Gupta 2017 ("To prune, or not to prune", arXiv 1710.01878).

    For progress ``t`` between ``begin`` and ``end``::

        s(t) = final + (initial - final) * (1 - (t - begin) / (end - begin)) ** 3

    ``s = initial`` before ``begin`` and ``s = final`` after ``end``. The schedule prunes fast while the
    network is redundant and slowly as few neurons remain.

    Parameters as for :class:`Sparsity`.
    """

    def _between(self, x: float) -> float:
        return self.final + (self.initial - self.final) * (1.0 - x) ** 3


class GeometricSparsity(Sparsity):
    """
    Sparsity schedule under which every equal stretch of the window removes the same fraction of the neurons
    still alive: the alive fraction decays geometrically. For progress ``t`` between ``begin`` and ``end``::

        1 - s(t) = (1 - initial) * ((1 - final) / (1 - initial)) ** ((t - begin) / (end - begin))

    This is iterative pruning's constant rate per round (20% of the remaining weights per round in Frankle &
    Carbin 2019, "The Lottery Ticket Hypothesis", arXiv 1803.03635) spread evenly over the window. Measured
    against the neurons left, its cuts are equal; the cubic schedule's grow as the network narrows (to a
    quarter of those left per step at 95% in 15 steps, against 18% here) and shrink only near ``end``.

    Parameters as for :class:`Sparsity`.
    """

    def _between(self, x: float) -> float:
        return 1.0 - (1.0 - self.initial) * ((1.0 - self.final) / (1.0 - self.initial)) ** x


SCHEDULES: dict[str, type[Sparsity]] = {"cubic": CubicSparsity, "geometric": GeometricSparsity}
"""``pruning.schedule``: the shape of the sparsity schedule between ``begin`` and ``end``."""
