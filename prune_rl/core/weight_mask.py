"""Per-weight masks for unstructured pruning, and magnitude selection of the weights to keep.

A :class:`WeightMask` keeps one boolean per entry of a Linear layer's weight matrix (biases are not pruned, as in
Zhu & Gupta 2017). Unlike a neuron's whole group (:class:`prune_rl.core.NeuronMask`), a single pruned weight
still receives a gradient, so zeroing it once is not enough: the mask installs a gradient hook that zeroes the
gradient of every pruned weight before any optimizer sees it. Its Adam moments then stay ``0``, its update
``m / (sqrt(v) + eps)`` stays ``0``, and a Polyak or hard update of target networks copies zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from prune_rl.core.mask import n_kept


class WeightMask:
    """
    Which weights of one Linear layer are alive.

    :param name: Unique name, e.g. ``"pi.linear1"``.
    :param linear: The layer whose ``weight`` is masked.
    :param mirrors: Copies of the layer in target networks; they carry the same mask.
    :param alive: Initial boolean mask of the weight's shape ``(out_features, in_features)``; all alive by default.
    """

    def __init__(
        self, name: str, linear: nn.Linear, mirrors: Sequence[nn.Linear] = (), alive: torch.Tensor | None = None
    ) -> None:
        self.name = name
        self.linear = linear
        self.mirrors = list(mirrors)
        weight = linear.weight
        if alive is None:
            alive = torch.ones_like(weight, dtype=torch.bool)
        if alive.shape != weight.shape:
            raise ValueError(f"{name}: mask of shape {tuple(alive.shape)} for a weight of shape {tuple(weight.shape)}")
        self.alive = alive.to(dtype=torch.bool, device=weight.device).clone()
        self._handle: RemovableHandle | None = None

    @property
    def n_weights(self) -> int:
        """:return: Entries of the weight matrix."""
        return self.alive.numel()

    @property
    def n_alive(self) -> int:
        """:return: Entries not pruned."""
        return int(self.alive.sum())

    @torch.no_grad()
    def apply_(self, optimizers: Iterable[torch.optim.Optimizer] = ()) -> None:
        """
        Zero the pruned weights in the layer, its mirrors and the optimizers' per-parameter state.

        :param optimizers: Optimizers whose state (e.g. Adam's ``exp_avg``, ``exp_avg_sq``) must forget them.
        """
        states = [opt.state for opt in optimizers]
        for linear in [self.linear, *self.mirrors]:
            factor = self.alive.to(device=linear.weight.device, dtype=linear.weight.dtype)
            linear.weight.mul_(factor)
            for state in states:
                for value in state.get(linear.weight, {}).values():
                    if isinstance(value, torch.Tensor) and value.shape == linear.weight.shape:
                        value.mul_(factor.to(value.dtype))

    def hook_(self) -> None:
        """Zero the gradient of pruned weights from now on (idempotent)."""
        if self._handle is None:
            self._handle = self.linear.weight.register_hook(self._mask_grad)

    def remove_hook(self) -> None:
        """Stop masking gradients (the weights pruned so far stay zero until something updates them)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _mask_grad(self, grad: torch.Tensor) -> torch.Tensor:
        return grad * self.alive.to(grad.dtype)


def magnitude_keep(weight: torch.Tensor, alive: torch.Tensor, n_keep: int) -> torch.Tensor:
    """
    Keep the ``n_keep`` alive weights of largest magnitude; pruned weights never come back.

    :param weight: A weight matrix.
    :param alive: Its boolean mask, same shape.
    :param n_keep: Weights to keep (at most the alive ones are kept).
    :return: The new boolean mask, a subset of ``alive``.
    """
    scores = torch.where(alive, weight.detach().abs(), torch.tensor(-1.0, device=weight.device)).flatten()
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep[torch.argsort(scores, descending=True, stable=True)[: min(n_keep, int(alive.sum()))]] = True
    return keep.view_as(alive) & alive


def global_magnitude_keep(
    weights: Sequence[torch.Tensor], alive: Sequence[torch.Tensor], n_keep: int, min_weights: int = 0
) -> list[torch.Tensor]:
    """
    One magnitude threshold over several layers, with a minimum kept per layer.

    Every layer first reserves its ``min_weights`` largest alive weights (Gupta et al. 2022's minimum
    threshold, against layer collapse); the rest of the ``n_keep`` budget goes to the largest of all others.

    :param weights: Weight matrices.
    :param alive: Their boolean masks.
    :param n_keep: Weights kept over all layers (at least the reserved ones are kept).
    :param min_weights: Weights every layer keeps (or all its alive ones, if fewer).
    :return: The new masks, each a subset of its ``alive``.
    """
    reserved = [magnitude_keep(w, a, min_weights).flatten().cpu() for w, a in zip(weights, alive, strict=True)]
    scores = torch.cat(
        [
            torch.where(a.flatten().cpu() & ~r, w.detach().abs().flatten().cpu(), torch.tensor(-1.0))
            for w, a, r in zip(weights, alive, reserved, strict=True)
        ]
    )
    flat_reserved = torch.cat(reserved)
    n_alive = int(sum(int(a.sum()) for a in alive))
    budget = max(min(n_keep, n_alive) - int(flat_reserved.sum()), 0)
    keep = flat_reserved.clone()
    keep[torch.argsort(scores, descending=True, stable=True)[:budget]] = True
    out = []
    for part, a in zip(keep.split([a.numel() for a in alive]), alive, strict=True):
        out.append(part.view_as(a).to(a.device) & a)
    return out


def weight_quota(sparsity: float, n_weights: int) -> int:
    """
    :param sparsity: Fraction of the weights removed.
    :param n_weights: Weights before pruning.
    :return: Weights kept, ``floor((1 - sparsity) * n_weights)``, at least 1.
    """
    return max(n_kept(sparsity, n_weights), 1)
