"""Neuron importance scores: how much each hidden neuron matters to its network's output.

Every criterion returns, for each hidden layer, a non-negative tensor of shape ``(n_neurons,)``;
higher means more important. Data-driven criteria read the network's hidden activations on a batch
of recent states, captured by forward pre-hooks on the layer's first consumer (its input *is* the
activation), while a ``probe`` callable runs the network forward.

- ``magnitude``: the neuron's group norm ``||theta_j||_2`` (data-free).
- ``activation``: ``E_x |a_j(x)| * ||W_out[:, j]||_2``, the typical size of the neuron's contribution to
  the next layer (activation-based importance, cf. Hu et al. 2016 "Network Trimming", arXiv 1607.03250).
- ``deviation``: ``E_x |a_j(x) - E[a_j]| * ||W_out[:, j]||_2``, what a cut loses once mean replacement has
  folded the neuron's mean into the next bias (so a saturated, constant neuron scores 0).
- ``taylor``: ``E_x |a_j(x) * dL/da_j(x)|`` with ``L = 0.5 * ||f(x)||^2``, the first-order change of the
  output energy when the neuron is removed (Molchanov et al. 2017, "Pruning Convolutional Neural Networks
  for Resource Efficient Inference", arXiv 1611.06440, with the output energy standing in for a task loss).
- ``reconstruction``: a ranking by greedy least-squares selection: the neurons that, together, best reconstruct
  the next layer's input ``W_out a(x)`` on recent states, for cuts folded by ``fold_linear_`` (see
  :func:`reconstruction_importance`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from prune_rl.core.groups import HiddenLayer

ProbeFn = Callable[[], Any]  # runs the networks on a batch of states; may return their outputs


def magnitude_importance(layers: Sequence[HiddenLayer], probe: ProbeFn | None = None) -> list[torch.Tensor]:
    """
    Group-norm importance.

    :param layers: Hidden layers to score.
    :param probe: Unused (the criterion needs no data); accepted so all criteria share one signature.
    :return: One ``(n_neurons,)`` tensor per layer.
    """
    with torch.no_grad():
        return [layer.group_norms().detach().clone() for layer in layers]


@contextmanager
def _capture_activations(layers: Sequence[HiddenLayer], keep_grad: bool = False) -> Iterator[list[list[torch.Tensor]]]:
    """
    Record the input of each layer's first consumer (the hidden activation) during forward passes.

    :param layers: Hidden layers to watch.
    :param keep_grad: Keep the activations' gradients (``retain_grad``) for criteria that need them.
    :return: A context manager yielding, per layer, the list of activations seen while it is open.
    """
    captured: list[list[torch.Tensor]] = [[] for _ in layers]
    handles = []
    for i, layer in enumerate(layers):

        def hook(_module: torch.nn.Module, args: tuple[torch.Tensor, ...], i: int = i) -> None:
            act = args[0]
            if keep_grad:
                act.retain_grad()
            captured[i].append(act)

        handles.append(layer.consumers[0].register_forward_pre_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _outgoing_norms(layer: HiddenLayer) -> torch.Tensor:
    return torch.stack([c.weight.pow(2).sum(dim=0) for c in layer.consumers]).sum(dim=0).sqrt()


def probe_activations(layers: Sequence[HiddenLayer], probe: ProbeFn | None, criterion: str) -> list[torch.Tensor]:
    """
    Hidden activations of every layer on the probe's batch of recent states.

    :param layers: Hidden layers (their networks are run by ``probe``).
    :param probe: Runs the networks forward on a batch of recent states.
    :param criterion: Name used in the error raised when ``probe`` is missing.
    :return: One ``(n_states, n_neurons)`` tensor per layer.
    """
    if probe is None:
        raise ValueError(f"{criterion} needs a probe that runs the network on recent states")
    with torch.no_grad(), _capture_activations(layers) as captured:
        probe()
    out = []
    for layer, acts in zip(layers, captured, strict=True):
        if not acts:
            raise RuntimeError(f"the probe did not run layer {layer.name}")
        out.append(torch.cat([a.reshape(-1, layer.n_neurons) for a in acts]))
    return out


def activation_importance(layers: Sequence[HiddenLayer], probe: ProbeFn | None) -> list[torch.Tensor]:
    """
    Mean absolute activation times outgoing weight norm.

    :param layers: Hidden layers to score (their networks are run by ``probe``).
    :param probe: Runs the networks forward on a batch of recent states.
    :return: One ``(n_neurons,)`` tensor per layer.
    """
    acts = probe_activations(layers, probe, "activation importance")
    return [act.abs().mean(dim=0) * _outgoing_norms(layer).detach() for layer, act in zip(layers, acts, strict=True)]


def deviation_importance(layers: Sequence[HiddenLayer], probe: ProbeFn | None) -> list[torch.Tensor]:
    """
    Mean absolute deviation of the activation from its mean, times outgoing weight norm.

    A neuron whose activation hardly varies (a saturated tanh unit, a ReLU that is always on with the same
    value) acts as a constant: ``activation`` ranks it high, yet mean replacement (``pruning.repair.fold=mean``) can
    fold it into the next layer's bias at no loss. This criterion scores what such a cut loses,
    ``E_x |a_j(x) - E[a_j]| * ||W_out[:, j]||_2`` (cf. Evci et al. 2018, *Mean Replacement Pruning*).

    :param layers: Hidden layers to score (their networks are run by ``probe``).
    :param probe: Runs the networks forward on a batch of recent states.
    :return: One ``(n_neurons,)`` tensor per layer.
    """
    acts = probe_activations(layers, probe, "deviation importance")
    return [
        (act - act.mean(dim=0)).abs().mean(dim=0) * _outgoing_norms(layer).detach()
        for layer, act in zip(layers, acts, strict=True)
    ]


def taylor_importance(layers: Sequence[HiddenLayer], probe: ProbeFn | None) -> list[torch.Tensor]:
    """
    First-order Taylor importance of each neuron for the output energy ``0.5 * ||f(x)||^2``.

    :param layers: Hidden layers to score.
    :param probe: Runs the networks forward and returns their output tensor (or a list/tuple of them).
    :return: One ``(n_neurons,)`` tensor per layer.
    """
    if probe is None:
        raise ValueError("taylor importance needs a probe that runs the network on recent states")
    with torch.enable_grad(), _capture_activations(layers, keep_grad=True) as captured:
        out = probe()
        outputs = list(out) if isinstance(out, list | tuple) else [out]
        energy = sum(0.5 * o.pow(2).sum(dim=-1).mean() for o in outputs)
        assert isinstance(energy, torch.Tensor)
        acts = [a for per_layer in captured for a in per_layer]
        grads = torch.autograd.grad(energy, acts, allow_unused=True)
    by_act = dict(zip(map(id, acts), grads, strict=True))
    scores = []
    for layer, per_layer in zip(layers, captured, strict=True):
        terms = []
        for a in per_layer:
            g = by_act[id(a)]
            g = torch.zeros_like(a) if g is None else g
            # energy averages over the batch, so scale back to per-sample gradients
            terms.append((a.detach() * g * a.shape[0]).reshape(-1, layer.n_neurons).abs())
        scores.append(torch.cat(terms).mean(dim=0))
    return scores


def reconstruction_importance(layers: Sequence[HiddenLayer], probe: ProbeFn | None) -> list[torch.Tensor]:
    """
    Rank neurons by greedy least-squares selection of the next layer's input.

    With the least-squares fold (``pruning.repair.fold=linear``, :func:`prune_rl.core.fold_linear_`) a cut
    loses only what the kept neurons cannot express linearly, so the neurons worth keeping are a set that spans
    the layer's contribution ``y(x) = W_out a(x)``, not the neurons that are large one by one: of two identical
    neurons one is worth nothing once the other is kept. Forward selection picks, one at a time, the neuron that
    most reduces the least-squares error of reconstructing the centred ``y`` on recent states from the neurons
    picked so far (orthogonal least squares, Chen, Billings & Luo 1989, "Orthogonal least squares methods and
    their application to non-linear system identification", Int. J. Control 50(5); the greedy column subset
    selection used by ThiNet, Luo et al. 2017, arXiv 1707.06342). It runs on the ``(n, n)`` Gram matrix of the
    activations, updated in rank one per pick, so it costs ``O(n^3)`` per layer whatever the batch size.

    A neuron's score is the root-mean-square part of ``y`` still unexplained when it was picked: the first pick
    scores the whole and scores fall along the picks, so keeping the ``k`` best keeps the first ``k`` picked.
    Neurons that add nothing (dead, linear in those picked, or picked once ``y`` was explained) score 0.

    :param layers: Hidden layers to score (their networks are run by ``probe``).
    :param probe: Runs the networks forward on a batch of recent states.
    :return: One ``(n_neurons,)`` tensor per layer.
    """
    acts = probe_activations(layers, probe, "reconstruction importance")
    scores = []
    for layer, act in zip(layers, acts, strict=True):
        weight = torch.cat([c.weight.detach() for c in layer.consumers]).to(act.device)
        scores.append(_forward_selection(act, weight).to(act.dtype))
    return scores


def _forward_selection(act: torch.Tensor, weight: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
    """Scores of :func:`reconstruction_importance` for one layer (``act``: states x neurons, ``weight``: out x neurons)."""
    h = act.detach().double()
    h = h - h.mean(dim=0)
    gram = h.T @ h / max(len(h), 1)  # residual Gram matrix of the candidates
    cross = gram @ weight.double().T  # candidates x outputs: their covariance with the residual of y
    energy = float((cross * weight.double().T).sum())  # mean squared norm of the centred y still unexplained
    scores = torch.zeros(len(gram), dtype=torch.float64, device=gram.device)
    floor = tol * float(gram.diagonal().max()) if len(gram) else 0.0
    free = gram.diagonal() > floor
    while bool(free.any()):
        diag = gram.diagonal()
        gain = cross.pow(2).sum(dim=1) / diag.clamp_min(torch.finfo(torch.float64).tiny)
        j = int(torch.where(free, gain, -1.0).argmax())
        scores[j] = max(energy, 0.0) ** 0.5
        energy -= float(gain[j])
        column, row, pivot = gram[:, j].clone(), cross[j].clone(), diag[j].clone()
        gram -= torch.outer(column, column) / pivot
        cross -= torch.outer(column, row) / pivot
        free[j] = False
        free &= gram.diagonal() > floor
        if energy <= 0:  # y is reconstructed: the rest adds nothing
            break
    return scores


IMPORTANCES: dict[str, Callable[[Sequence[HiddenLayer], ProbeFn | None], list[torch.Tensor]]] = {
    "magnitude": magnitude_importance,
    "activation": activation_importance,
    "deviation": deviation_importance,
    "taylor": taylor_importance,
    "reconstruction": reconstruction_importance,
}
