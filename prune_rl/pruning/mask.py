"""Binary neuron masks and the dynamic pruning threshold.

A :class:`NeuronMask` removes neurons by zeroing their whole group, in the layer, in its target-network
mirrors and in the optimizer state (Adam's moments), so a removed neuron stays exactly zero afterwards:
with its incoming weights and bias at zero its activation is ``act(0) = 0`` for ReLU and tanh, so every
gradient of its group is zero as well, Adam's update ``m / (sqrt(v) + eps)`` stays ``0 / eps = 0`` and a
Polyak update of two zeros is zero. Nothing has to be re-applied on the per-step hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from prune_rl.pruning.groups import HiddenLayer


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


def select_alive(
    scores: Sequence[torch.Tensor],
    alive: Sequence[torch.Tensor],
    sparsity: float,
    min_neurons: int = 1,
) -> tuple[list[torch.Tensor], float | None]:
    """
    The dynamic threshold: keep the most important neurons of a network so that ``sparsity`` is reached.

    Scores are made comparable across layers by dividing each layer's scores by their mean over its
    alive neurons. Each layer keeps its best ``min_neurons`` (never fewer), and the rest of the
    ``(1 - sparsity) * n`` neurons kept are the best-ranked of the whole network; the threshold ``tau`` is the
    lowest normalised score kept. Removal is permanent: dead neurons stay dead.

    :param scores: Importance per layer, each ``(n_neurons,)``.
    :param alive: Current boolean masks per layer, each ``(n_neurons,)``.
    :param sparsity: Target fraction of the network's hidden neurons removed.
    :param min_neurons: Minimum number of alive neurons per layer.
    :return: The new masks and the threshold ``tau`` on normalised scores (``None`` if nothing was cut).
        Non-finite scores count as 0.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if min_neurons < 1:
        raise ValueError(f"min_neurons must be >= 1, got {min_neurons}")
    normed = []
    for score, keep in zip(scores, alive, strict=True):
        score = torch.nan_to_num(score.detach().float().cpu(), nan=0.0, posinf=torch.finfo(torch.float32).max, neginf=0.0)
        keep = keep.cpu()
        mean = score[keep].mean() if bool(keep.any()) else torch.tensor(1.0)
        normed.append(torch.where(keep, score / mean.clamp_min(1e-12), torch.tensor(-float("inf"))))
    total = sum(int(s.numel()) for s in normed)
    n_keep = max(round((1.0 - sparsity) * total), 1)
    n_alive = sum(int(k.sum()) for k in alive)
    if n_keep >= n_alive:
        return [k.clone() for k in alive], None
    # Each layer first reserves its best `floor` neurons; the rest of the budget goes to the best of all others.
    # Ranking (not comparing with tau) matters: groups the regularizer zeroed all tie at a score of 0.
    reserved = []
    for score, keep in zip(normed, alive, strict=True):
        floor = min(min_neurons, int(keep.sum()))
        mask = torch.zeros_like(score, dtype=torch.bool)
        mask[torch.topk(score, floor).indices] = True
        reserved.append(mask)
    flat = torch.cat(normed)
    flat_reserved = torch.cat(reserved)
    budget = max(n_keep - int(flat_reserved.sum()), 0)
    order = torch.argsort(torch.where(flat_reserved, -float("inf"), flat), descending=True, stable=True)
    keep_flat = flat_reserved.clone()
    keep_flat[order[:budget]] = True
    tau = float(flat[keep_flat].min())
    sizes = [int(s.numel()) for s in normed]
    return [m.to(k.device) for m, k in zip(keep_flat.split(sizes), alive, strict=True)], tau
