"""Importance-weighted group lasso on hidden neurons, applied as proximal steps.

For hidden layers ``l`` with neurons ``j`` and groups ``theta_{l,j}`` (incoming weights, bias, outgoing
weights; see :mod:`prune_rl.core.groups`)::

    R(theta) = lambda * sum_l sum_j  w_{l,j} * ||theta_{l,j}||_2

This is the group lasso of Yuan & Lin 2006 on neuron groups (Scardapane et al. 2017, arXiv 1607.00485;
Wen et al. 2016, arXiv 1608.03665), with importance weights ``w`` as in the adaptive group lasso
(Wang & Leng 2008, "A note on adaptive group lasso", Comput. Stat. Data Anal. 52(12)): less important
neurons are penalised harder. With importance scores ``s_{l,j}`` and a reference score ``s_ref_l``::

    w_{l,j} = clip((s_ref_l / s_{l,j}) ** gamma, 1 / max_weight, max_weight)

The reference (the anchor) is either the layer's mean over alive neurons, so that a neuron of average
importance gets weight 1, or the score of the last neuron that the final sparsity keeps, so that the
neurons on course to survive are barely shrunk and the ones on course to be cut get at least ``lambda``.
(Scardapane et al. also scale each group by ``sqrt(group size)``; neuron groups of one MLP have comparable
sizes and, under SB3's orthogonal initialisation, comparable norms, so the factor is left out.)

The penalty is not added to the loss: Adam would rescale its gradient per parameter and never reach
exactly zero. It is applied as the group-lasso proximal operator with step size ``eta``::

    theta_{l,j} <- theta_{l,j} * max(0, 1 - eta * lambda * w_{l,j} / ||theta_{l,j}||_2)

which shrinks each group's norm by ``eta * lambda * w_{l,j}`` and sets it exactly to zero when the norm is
smaller (decoupled from the optimizer, like AdamW's weight decay; Loshchilov & Hutter 2019, arXiv 1711.05101).
A zeroed group is a removed neuron. With ``floors``, a step never leaves a layer with fewer nonzero groups than its
floor: the groups it would zero beyond that, those closest to surviving (largest ``||theta|| / (eta * lambda * w)``),
are shrunk to a norm of ``1e-6`` instead (alive, computing next to nothing), for a cut to remove.
Groups of adjacent layers overlap (layer ``l``'s outgoing weights are layer ``l+1``'s incoming ones); the
operator is applied layer by layer, input side first, which is exact for each layer in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prune_rl.core.groups import HiddenLayer

ANCHORS = ("mean", "keep")  # the reference score of the importance weights (see GroupLasso.set_importance)
SPARED_NORM = 1e-6  # the norm a step leaves a group it would zero but must spare (continuous at the threshold)


class GroupLasso:
    """
    Importance-weighted group lasso over the hidden neurons of some layers.

    :param layers: Hidden layers whose neuron groups are penalised.
    :param strength: ``lambda``, the penalty coefficient.
    :param gamma: Exponent of the importance weights (0 gives the plain group lasso).
    :param max_weight: Importance weights are clipped to ``[1 / max_weight, max_weight]``.
    :param floors: Per layer, the fewest nonzero groups a step may leave (default: no floor).
    """

    def __init__(
        self,
        layers: Sequence[HiddenLayer],
        strength: float,
        gamma: float = 1.0,
        max_weight: float = 10.0,
        floors: Sequence[int] | None = None,
    ) -> None:
        if strength < 0:
            raise ValueError(f"strength must be >= 0, got {strength}")
        if max_weight < 1:
            raise ValueError(f"max_weight must be >= 1, got {max_weight}")
        self.layers = list(layers)
        self.strength = strength
        self.gamma = gamma
        self.max_weight = max_weight
        self.floors = list(floors) if floors is not None else [0] * len(self.layers)
        if len(self.floors) != len(self.layers):
            raise ValueError(f"{len(self.floors)} floors for {len(self.layers)} layers")
        self.weights = [torch.ones(layer.n_neurons, device=layer.producer.weight.device) for layer in self.layers]

    def set_importance(
        self,
        scores: Sequence[torch.Tensor],
        alive: Sequence[torch.Tensor] | None = None,
        keep: Sequence[int] | None = None,
    ) -> None:
        """
        Recompute the importance weights ``w`` from importance scores.

        :param scores: One ``(n_neurons,)`` tensor per layer.
        :param alive: Boolean ``(n_neurons,)`` masks; only alive neurons are compared.
        :param keep: Per layer, how many neurons pruning will keep in the end. If given, each layer's reference
            score ``s_ref`` is its ``keep``-th best alive score, so the neurons that will survive are shrunk
            less than ``lambda`` and the rest more; otherwise ``s_ref`` is the mean over alive neurons.
        """
        for i, score in enumerate(scores):
            mask = alive[i] if alive is not None else torch.ones_like(score, dtype=torch.bool)
            candidates = score[mask] if bool(mask.any()) else score
            if keep is None:
                reference = candidates.mean()
            else:
                k = min(max(int(keep[i]), 1), candidates.numel())
                reference = torch.topk(candidates, k).values[-1]
            if not bool(reference > 0):  # nothing to compare with: plain group lasso
                self.weights[i] = torch.ones_like(self.weights[i])
                continue
            ratio = reference / score.clamp_min(torch.finfo(score.dtype).tiny)
            weight = ratio.pow(self.gamma).clamp(1.0 / self.max_weight, self.max_weight)
            self.weights[i] = weight.to(self.weights[i].device)

    def penalty(self) -> torch.Tensor:
        """
        The value of ``R(theta)``.

        :return: A scalar tensor (differentiable).
        """
        total = torch.zeros((), device=self.weights[0].device if self.weights else None)
        for layer, weight in zip(self.layers, self.weights, strict=True):
            total = total + (weight * layer.group_norms()).sum()
        return self.strength * total

    @torch.no_grad()
    def prox_(self, step_size: float) -> None:
        """
        Apply the group-lasso proximal operator in place: shrink each group norm by ``step_size * lambda * w``.

        :param step_size: ``eta``.
        """
        if self.strength == 0 or step_size == 0:
            return
        for layer, weight, floor in zip(self.layers, self.weights, self.floors, strict=True):
            norms = layer.group_norms()
            shrink = step_size * self.strength * weight
            factor = (1.0 - shrink / norms.clamp_min(1e-12)).clamp_min(0.0)
            zeroed = (norms > 0) & (factor == 0)
            short = min(floor, int((norms > 0).sum())) - int((factor > 0).sum())
            if short > 0:  # spare the zeroed groups closest to surviving, so the layer keeps its floor
                closeness = torch.where(zeroed, norms / shrink.clamp_min(1e-12), torch.tensor(-float("inf")))
                spared = closeness.topk(short).indices
                factor[spared] = (SPARED_NORM / norms[spared]).clamp_max(1.0)
            layer.scale_(factor)
