"""Surgery: rebuild a masked MLP narrower, with its pruned neurons physically removed.

Removing hidden neuron ``j`` deletes row ``j`` of its producer (weights and bias) and column ``j`` of every
consumer. That is exact when the neuron's activation is constant: a neuron whose incoming weights are all zero
outputs ``act(b_j)`` for every input, which is folded into each consumer's bias (``b' = b + W[:, j] * act(b_j)``)
before the column goes; a neuron whose outgoing weights are all zero is read by nobody. Structured masks zero
whole groups (``act(0) = 0`` for ReLU and tanh, so nothing is folded); unstructured masks leave some neurons with
no input or no output, and only those can go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from prune_rl.core.groups import HiddenLayer, PrunableNet


def removable(layer: HiddenLayer) -> torch.Tensor:
    """
    Neurons whose removal changes no output: no incoming weights, or no outgoing ones.

    :param layer: A hidden layer.
    :return: Boolean mask of shape ``(n_neurons,)``, ``True`` where the neuron can go.
    """
    no_input = (layer.producer.weight == 0).all(dim=1)  # (out, in) -> (out,)
    no_output = torch.stack([(c.weight == 0).all(dim=0) for c in layer.consumers]).all(dim=0)  # (next, out) -> (out,)
    return (no_input | no_output).cpu()


@torch.no_grad()
def _fold_constants_(layer: HiddenLayer, gone: torch.Tensor, activation: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Add what the removed, input-less neurons feed their consumers (``W[:, j] * act(b_j)``) to the consumers' biases."""
    if layer.producer.bias is None:
        return
    idle = gone.to(layer.producer.weight.device) & (layer.producer.weight == 0).all(dim=1)
    if not bool(idle.any()):
        return
    constant = activation(layer.producer.bias) * idle  # (out,): act(b_j) for the removed idle neurons, 0 elsewhere
    for consumer in layer.consumers:
        if consumer.bias is None:
            raise ValueError(f"{layer.name}: a consumer without bias cannot absorb a constant neuron")
        consumer.bias.add_(consumer.weight @ constant)


@torch.no_grad()
def _slice_(param: torch.Tensor, dim: int, index: torch.Tensor, states: Sequence[dict]) -> None:
    """Keep ``index`` along ``dim`` of a parameter, its gradient and its optimizer state, keeping the Parameter object."""
    old_shape = param.shape
    for state in states:
        for key, value in state.get(param, {}).items():
            if isinstance(value, torch.Tensor) and value.shape == old_shape:  # Adam's moments; not its scalar step
                state[param][key] = value.index_select(dim, index.to(value.device)).clone()
    grad = param.grad.index_select(dim, index).clone() if param.grad is not None else None
    param.grad = None
    param.data = param.data.index_select(dim, index).clone()
    param.grad = grad


def _keep_rows_(linear: nn.Linear, index: torch.Tensor, states: Sequence[dict]) -> None:
    _slice_(linear.weight, 0, index, states)
    if linear.bias is not None:
        _slice_(linear.bias, 0, index, states)
    linear.out_features = len(index)


def _keep_columns_(linear: nn.Linear, index: torch.Tensor, states: Sequence[dict]) -> None:
    _slice_(linear.weight, 1, index, states)
    linear.in_features = len(index)


@torch.no_grad()
def shrink_(
    net: PrunableNet,
    keep: Sequence[torch.Tensor],
    activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu,
    optimizers: Iterable[torch.optim.Optimizer] = (),
) -> None:
    """
    Keep only the ``keep`` neurons of every hidden layer of ``net`` and of its target copies, in place.

    The Linear modules keep their Parameter objects, whose data, gradients and optimizer state (Adam's moments, not
    its step count) are sliced, so optimizers and anything else holding the parameters carry on: a step on the
    narrow network equals a step on the masked one. Each layer's :attr:`~HiddenLayer.index` then says which dense
    neurons it holds. Removed neurons must be constant (no incoming weights: folded into the next bias) or unread
    (no outgoing weights); for any other neuron the outputs would change, so a ``ValueError`` is raised.

    :param net: The network.
    :param keep: Boolean masks per hidden layer, ``(n_neurons,)``; every layer keeps at least one neuron.
    :param activation: The hidden activation (``act`` of a constant neuron's bias), e.g. ``torch.tanh``.
    :param optimizers: Optimizers training the network, whose per-parameter state is sliced with the parameters.
    """
    states = [opt.state for opt in optimizers]
    for layer, kept in zip(net.layers, keep, strict=True):
        gone = ~kept.cpu()
        if kept.shape != (layer.n_neurons,):
            raise ValueError(f"{layer.name}: keep mask of shape {tuple(kept.shape)} for {layer.n_neurons} neurons")
        if not bool(kept.any()):
            raise ValueError(f"{layer.name}: every neuron would be removed")
        for copy in [layer, *layer.mirrors]:
            if bool((gone & ~removable(copy)).any()):
                raise ValueError(f"{copy.name}: a neuron to remove still has incoming and outgoing weights")
    for layer, kept in zip(net.layers, keep, strict=True):
        index = kept.cpu().nonzero().squeeze(1)
        for copy in [layer, *layer.mirrors]:
            _fold_constants_(copy, ~kept.cpu(), activation)
            device_index = index.to(copy.producer.weight.device)
            _keep_rows_(copy.producer, device_index, states)
            for consumer in copy.consumers:
                _keep_columns_(consumer, device_index, states)
            copy.index = copy.index[index]


def pad_keep(keep: torch.Tensor, width: int) -> torch.Tensor:
    """
    Widen a keep mask to ``width`` neurons by also keeping removed ones (zeros: padding that changes nothing).

    :param keep: Boolean mask, ``(n_neurons,)``.
    :param width: Neurons to keep, at least ``keep.sum()``.
    :return: A mask with ``width`` neurons kept: ``keep``'s, then the first removed ones.
    """
    out = keep.clone()
    extra = (~keep).nonzero().squeeze(1)[: max(width - int(keep.sum()), 0)]
    out[extra] = True
    return out
