"""Folding a cut: what a cut neuron contributed moves into the layers it feeds (``pruning.repair.fold``).

Cutting neuron ``j`` changes the pre-activation of the next layer by ``-W_next[:, j] * a_j(x)``. The mean part of
that change, ``-W_next[:, j] * E_x[a_j(x)]``, is undone by adding ``W_next[:, j] * E_x[a_j(x)]`` to the next
layer's bias, so a cut neuron that fires at a steady level is removed without shifting the layer it fed; only
its variation around the mean is lost ("bias propagation", Evci, Le Roux, Castro & Bottou 2018, *Mean
Replacement Pruning*, OpenReview). :func:`fold_linear_` also folds the part of that variation the kept neurons
can express linearly. A neuron the regularizer already drove to zero has ``a_j = act(0) = 0``, so folding it
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prune_rl.core.groups import HiddenLayer
from prune_rl.core.importance import ProbeFn, probe_activations

FOLDS = ("none", "mean", "linear")  # pruning.repair.fold: nothing, fold_mean_, fold_linear_


def mean_activations(layers: Sequence[HiddenLayer], probe: ProbeFn) -> list[torch.Tensor]:
    """
    Mean activation of every neuron on a batch of recent states.

    :param layers: Hidden layers (their networks are run by ``probe``).
    :param probe: Runs the networks forward on a batch of recent states.
    :return: One ``(n_neurons,)`` tensor per layer.
    """
    return [act.mean(dim=0) for act in probe_activations(layers, probe, "mean replacement")]


@torch.no_grad()
def fold_mean_(layer: HiddenLayer, cut: torch.Tensor, mean: torch.Tensor) -> None:
    """
    Add the cut neurons' mean contribution to the biases of the layers reading them (and of their target mirrors).

    Call it before the cut zeroes the outgoing weights. A consumer without a bias is left as it is. Neurons the
    consumer has already lost keep a zero bias: their row of ``consumer.weight`` is zero, so they receive nothing.

    :param layer: The hidden layer losing neurons.
    :param cut: Boolean ``(n_neurons,)``, the neurons being cut.
    :param mean: ``(n_neurons,)``, their mean activation on recent states.
    """
    for hidden in [layer, *layer.mirrors]:
        for consumer in hidden.consumers:
            if consumer.bias is None:
                continue
            weight = consumer.weight[:, cut.to(consumer.weight.device)]
            consumer.bias.add_(weight @ mean[cut].to(weight))


@torch.no_grad()
def fold_linear_(
    layer: HiddenLayer, keep: torch.Tensor, cut: torch.Tensor, activations: torch.Tensor, ridge: float = 1e-3
) -> None:
    """
    Fold the cut neurons' best linear estimate from the kept ones into the layers reading them (and their mirrors).

    On recent states ``x``, regress the cut activations on the kept ones, ``a_C(x) ~ A a_K(x) + c`` (least squares
    with a ridge), and move each consumer's outgoing weights of the cut neurons onto the kept ones:
    ``W[:, K] += W[:, C] A`` and ``b += W[:, C] c``. The next layer's pre-activation then changes only by what the
    kept neurons cannot express, ``W[:, C] (a_C - A a_K - c)``; with ``A = 0`` this is :func:`fold_mean_`. This
    is the least-squares reconstruction of the next layer's input used by channel pruning (He, Zhang & Sun 2017,
    arXiv 1707.06168; Luo, Wu & Lin 2017, ThiNet, arXiv 1707.06342), applied to neurons.

    Call it before the cut zeroes the outgoing weights. A consumer without a bias gets the weights only.

    :param layer: The hidden layer losing neurons.
    :param keep: Boolean ``(n_neurons,)``, the neurons alive after the cut.
    :param cut: Boolean ``(n_neurons,)``, the neurons being cut (disjoint from ``keep``).
    :param activations: ``(n_states, n_neurons)``, the layer's activations on recent states.
    :param ridge: Ridge coefficient, relative to the kept activations' mean variance.
    """
    keep, cut = keep.cpu(), cut.cpu()
    if bool((keep & cut).any()):
        raise ValueError(f"{layer.name}: a neuron cannot be both kept and cut")
    if not bool(cut.any()):
        return
    acts = activations.detach().cpu().double()
    kept, lost = acts[:, keep], acts[:, cut]
    kept_mean, lost_mean = kept.mean(dim=0), lost.mean(dim=0)
    coef = torch.zeros(int(keep.sum()), int(cut.sum()), dtype=torch.float64)
    if kept.numel() > 0:
        centred = kept - kept_mean
        gram = centred.T @ centred / len(acts)
        scale = float(gram.diagonal().mean())
        if scale > 0:
            eye = torch.eye(len(gram), dtype=torch.float64)
            coef = torch.linalg.solve(gram + ridge * scale * eye, centred.T @ (lost - lost_mean) / len(acts))
    offset = lost_mean - kept_mean @ coef
    for hidden in [layer, *layer.mirrors]:
        for consumer in hidden.consumers:
            device, dtype = consumer.weight.device, consumer.weight.dtype
            weight = consumer.weight[:, cut.to(device)].double()
            consumer.weight[:, keep.to(device)] += (weight @ coef.to(device).T).to(dtype)
            if consumer.bias is not None:
                consumer.bias.add_((weight @ offset.to(device)).to(dtype))


def fold_(fold: str, layer: HiddenLayer, keep: torch.Tensor, cut: torch.Tensor, activations: torch.Tensor) -> None:
    """
    Fold a cut as ``pruning.repair.fold`` says: nothing, :func:`fold_mean_` or :func:`fold_linear_`.

    :param fold: One of :data:`FOLDS`.
    :param layer: The hidden layer losing neurons.
    :param keep: Boolean ``(n_neurons,)``, the neurons alive after the cut.
    :param cut: Boolean ``(n_neurons,)``, the neurons being cut.
    :param activations: ``(n_states, n_neurons)``, the layer's activations on recent states.
    """
    if fold == "mean":
        fold_mean_(layer, cut, activations.mean(dim=0))
    elif fold == "linear":
        fold_linear_(layer, keep, cut, activations)
    elif fold != "none":
        raise ValueError(f"unknown fold {fold!r} (known: {', '.join(FOLDS)})")
