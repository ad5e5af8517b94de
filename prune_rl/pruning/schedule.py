"""Sparsity schedules over training progress.

``progress`` is the fraction of training done, in ``[0, 1]`` (SB3's ``1 - progress_remaining``).
Schedules are picklable classes, not closures, so they survive being saved with a model.
"""

from __future__ import annotations


class CubicSparsity:
    """
    Gradual pruning schedule of Zhu & Gupta 2017 ("To prune, or not to prune", arXiv 1710.01878).

    For progress ``t`` between ``begin`` and ``end``::

        s(t) = final + (initial - final) * (1 - (t - begin) / (end - begin)) ** 3

    ``s = initial`` before ``begin`` and ``s = final`` after ``end``. The schedule prunes fast while the
    network is redundant and slowly as few neurons remain.

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
        remaining = 1.0 - (progress - self.begin) / (self.end - self.begin)
        return self.final + (self.initial - self.final) * remaining**3

    def __repr__(self) -> str:
        return f"CubicSparsity(final={self.final}, begin={self.begin}, end={self.end}, initial={self.initial})"
