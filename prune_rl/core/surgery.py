"""Surgery: rebuild a masked MLP narrower, with its pruned neurons physically removed.

Removing hidden neuron ``j`` deletes row ``j`` of its producer (weights and bias) and column ``j`` of every
consumer. That is exact when the neuron's activation is constant: a neuron whose incoming weights are all zero
outputs ``act(b_j)`` for every input, which is folded into each consumer's bias (``b' = b + W[:, j] * act(b_j)``)
before the column goes; a neuron whose outgoing weights are all zero is read by nobody. Structured masks zero
whole groups (``act(0) = 0`` for ReLU and tanh, so nothing is folded); unstructured masks leave some neurons with
no input or no output, and only those can go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def _keep_rows_(linear: nn.Linear, index: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.detach()[index].clone(), requires_grad=linear.weight.requires_grad)
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.detach()[index].clone(), requires_grad=linear.bias.requires_grad)
    linear.out_features = len(index)


def _keep_columns_(linear: nn.Linear, index: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.detach()[:, index].clone(), requires_grad=linear.weight.requires_grad)
    linear.in_features = len(index)


@torch.no_grad()
def shrink_(
    net: PrunableNet,
    keep: Sequence[torch.Tensor],
    activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu,
) -> None:
    """
    Keep only the ``keep`` neurons of every hidden layer of ``net`` and of its target copies, in place.

    The Linear modules get new, smaller parameters (an optimizer holding the old ones must be rebuilt). Removed
    neurons must be constant (no incoming weights: folded into the next bias) or unread (no outgoing weights);
    for any other neuron the outputs would change, so a ``ValueError`` is raised.

    :param net: The network.
    :param keep: Boolean masks per hidden layer, ``(n_neurons,)``; every layer keeps at least one neuron.
    :param activation: The hidden activation (``act`` of a constant neuron's bias), e.g. ``torch.tanh``.
    """
    for layer, kept in zip(net.layers, keep, strict=True):
        gone = ~kept.cpu()
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
            _keep_rows_(copy.producer, device_index)
            for consumer in copy.consumers:
                _keep_columns_(consumer, device_index)


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
