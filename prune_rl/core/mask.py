"""Binary neuron masks and the dynamic pruning threshold.

A :class:`NeuronMask` removes neurons by zeroing their whole group, in the layer, in its target-network
mirrors and in the optimizer state (Adam's moments), so a removed neuron stays exactly zero afterwards:
with its incoming weights and bias at zero its activation is ``act(0) = 0`` for ReLU and tanh, so every
gradient of its group is zero as well, Adam's update ``m / (sqrt(v) + eps)`` stays ``0 / eps = 0`` and a
Polyak update of two zeros is zero. Nothing has to be re-applied on the per-step hot path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from prune_rl.core.groups import HiddenLayer


class NeuronMask:
    """
    Which neurons of one hidden layer are alive.

    :param layer: The hidden layer (its mirrors get the same mask).
    :param alive: Initial boolean mask of shape ``(n_neurons,)``; all alive by default.
    """

    def __init__(self, layer: HiddenLayer, alive: torch.Tensor | None = None) -> None:
        self.layer = layer
        if alive is None:
            alive = torch.ones(layer.n_neurons, dtype=torch.bool)
        if alive.shape != (layer.n_neurons,):
            raise ValueError(f"{layer.name}: mask of shape {tuple(alive.shape)} for {layer.n_neurons} neurons")
        self.alive = alive.to(dtype=torch.bool, device=layer.producer.weight.device).clone()

    @torch.no_grad()
    def apply_(self, optimizers: Iterable[torch.optim.Optimizer] = ()) -> None:
        """
        Zero the groups of dead neurons in the layer, its mirrors and the optimizers' state.

        :param optimizers: Optimizers whose per-parameter state (e.g. Adam's ``exp_avg``, ``exp_avg_sq``)
            must forget the dead neurons.
        """
        factor = self.alive.to(self.layer.producer.weight.dtype)
        states = [opt.state for opt in optimizers]
        for layer in [self.layer, *self.layer.mirrors]:
            for param, view in layer.factor_views(factor.to(layer.producer.weight.device)):
                param.mul_(view)
                for state in states:
                    for value in state.get(param, {}).values():
                        if isinstance(value, torch.Tensor) and value.shape == param.shape:
                            value.mul_(view.to(value.dtype))


ALLOCATIONS = ("layer", "global")


def n_kept(sparsity: float, n_neurons: int) -> int:
    """
    Neurons left when ``sparsity`` of ``n_neurons`` are removed, rounded so that the sparsity is at least reached.

    :param sparsity: Fraction of neurons removed.
    :param n_neurons: Neurons before pruning.
    :return: ``floor((1 - sparsity) * n_neurons)`` (with a tolerance for floating-point error).
    """
    return math.floor((1.0 - sparsity) * n_neurons + 1e-6)


def layer_quota(sparsity: float, n_neurons: int, min_neurons: int = 1) -> int:
    """
    Neurons one layer keeps at ``sparsity`` under the ``layer`` allocation.

    :param sparsity: Fraction of the layer's neurons removed.
    :param n_neurons: The layer's width.
    :param min_neurons: The layer never keeps fewer (nor more than ``n_neurons``).
    :return: ``n_kept(sparsity, n_neurons)``, clipped to ``[min_neurons, n_neurons]``.
    """
    return min(max(n_kept(sparsity, n_neurons), min_neurons), n_neurons)


def select_alive(
    scores: Sequence[torch.Tensor],
    alive: Sequence[torch.Tensor],
    sparsity: float,
    min_neurons: int = 1,
    allocation: str = "layer",
    widths: Sequence[int] | None = None,
) -> tuple[list[torch.Tensor], float | None]:
    """
    The dynamic threshold: keep the most important neurons of a network so that ``sparsity`` is reached.

    Scores are made comparable across layers by dividing each layer's scores by their mean over its alive
    neurons. With ``allocation="layer"`` every layer keeps its own best ``(1 - sparsity)`` share of its
    neurons, so no layer becomes a bottleneck; with ``"global"`` the ``(1 - sparsity) * n`` neurons kept
    are the best-ranked of the whole network, after each layer has reserved its best ``min_neurons``. A
    layer never keeps fewer than ``min_neurons``. The threshold ``tau`` is the lowest normalised score
    kept. Removal is permanent: dead neurons stay dead, and a lower target never regrows them.

    :param scores: Importance per layer, each ``(n_neurons,)``. Non-finite scores count as 0.
    :param alive: Current boolean masks per layer, each ``(n_neurons,)``.
    :param sparsity: Target fraction of hidden neurons removed (of each layer, or of the network).
    :param min_neurons: Minimum number of alive neurons per layer.
    :param allocation: ``layer`` or ``global``, how the kept neurons are shared among layers.
    :param widths: The layers' dense widths, which ``sparsity`` is a fraction of, when neurons were already removed
        physically (default: the scores' sizes).
    :return: The new masks and the threshold ``tau`` on normalised scores (``None`` if nothing was cut).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if min_neurons < 1:
        raise ValueError(f"min_neurons must be >= 1, got {min_neurons}")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    normed = []
    for score, keep in zip(scores, alive, strict=True):
        score = torch.nan_to_num(score.detach().float().cpu(), nan=0.0, posinf=torch.finfo(torch.float32).max, neginf=0.0)
        keep = keep.cpu()
        mean = score[keep].mean() if bool(keep.any()) else torch.tensor(1.0)
        normed.append(torch.where(keep, score / mean.clamp_min(1e-12), torch.tensor(-float("inf"))))
    sizes = [int(s.numel()) for s in normed]
    dense = list(widths) if widths is not None else sizes
    n_alive = [int(k.sum()) for k in alive]
    # Ranking (not comparing with tau) matters: groups the regularizer zeroed all tie at a score of 0.
    if allocation == "layer":
        quotas = [min(layer_quota(sparsity, n, min_neurons), a) for n, a in zip(dense, n_alive, strict=True)]
        if quotas == n_alive:
            return [k.clone() for k in alive], None
        kept = [_top(score, quota) for score, quota in zip(normed, quotas, strict=True)]
    else:
        n_keep = max(n_kept(sparsity, sum(dense)), 1)
        if n_keep >= sum(n_alive):
            return [k.clone() for k in alive], None
        # Each layer first reserves its best `floor` neurons; the rest of the budget goes to the best of all others.
        reserved = torch.cat([_top(score, min(min_neurons, a)) for score, a in zip(normed, n_alive, strict=True)])
        flat = torch.cat(normed)
        budget = max(n_keep - int(reserved.sum()), 0)
        order = torch.argsort(torch.where(reserved, -float("inf"), flat), descending=True, stable=True)
        keep_flat = reserved.clone()
        keep_flat[order[:budget]] = True
        kept = list(keep_flat.split(sizes))
    tau = min(float(score[keep].min()) for score, keep in zip(normed, kept, strict=True) if bool(keep.any()))
    return [m.to(k.device) for m, k in zip(kept, alive, strict=True)], tau


@torch.no_grad()
def cut_share(layers: Sequence[HiddenLayer], before: Sequence[torch.Tensor], after: Sequence[torch.Tensor]) -> float:
    """
    Share of the alive neurons' group-norm mass that a cut removes, before the cut is applied.

    0 means every neuron cut had already been driven to exactly zero by the regularizer (a lossless cut);
    values near the removed share of neurons mean the cut ignored the regularizer.

    :param layers: Hidden layers of one network.
    :param before: Boolean masks before the cut, one per layer.
    :param after: Boolean masks after the cut, one per layer.
    :return: ``sum(||theta|| of neurons cut) / sum(||theta|| of neurons alive before)``, 0 if nothing was alive.
    """
    cut = alive = 0.0
    for layer, old, new in zip(layers, before, after, strict=True):
        norms = layer.group_norms()
        old, new = old.to(norms.device), new.to(norms.device)
        alive += float(norms[old].sum())
        cut += float(norms[old & ~new].sum())
    return cut / alive if alive > 0 else 0.0


def _top(score: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` highest scores (the first ones among ties)."""
    mask = torch.zeros_like(score, dtype=torch.bool)
    mask[torch.argsort(score, descending=True, stable=True)[:k]] = True
    return mask
