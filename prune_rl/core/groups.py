"""Neuron groups of an MLP.

A hidden neuron ``j`` produced by ``producer: nn.Linear`` owns one *group* of parameters:
its incoming weights ``producer.weight[j, :]``, its bias ``producer.bias[j]`` and its outgoing
weights ``consumer.weight[:, j]`` in every layer that reads it (a network may have several heads
reading the same hidden layer, e.g. SAC's ``mu`` and ``log_std``). Removing the neuron removes the
whole group (Wen et al. 2016, "Learning Structured Sparsity in Deep Neural Networks", arXiv 1608.03665;
Scardapane et al. 2017, "Group Sparse Regularization for Deep Neural Networks", arXiv 1607.00485).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class HiddenLayer:
    """
    The neurons of one hidden layer and the parameters each one owns.

    :param name: Unique name inside its network, e.g. ``"pi.0"``.
    :param producer: Linear layer whose output features are the neurons.
    :param consumers: Linear layers whose input features are the neurons (after the activation).
    :param mirrors: Copies of this layer in target networks; they carry the same mask.
    :param dense: Neurons of the layer as it was built, before any was removed physically (default: its width).
    :param index: ``(n_neurons,)`` position in the dense layer of each neuron it holds now (default: all, in order).
    """

    name: str
    producer: nn.Linear
    consumers: list[nn.Linear]
    mirrors: list[HiddenLayer] = field(default_factory=list)
    dense: int = 0
    index: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    def __post_init__(self) -> None:
        if self.dense == 0:
            self.dense = self.producer.out_features
        if self.index.numel() == 0:
            self.index = torch.arange(self.producer.out_features)
        for consumer in self.consumers:
            if consumer.in_features != self.producer.out_features:
                raise ValueError(
                    f"{self.name}: consumer has {consumer.in_features} inputs but the producer has "
                    f"{self.producer.out_features} neurons"
                )

    @property
    def n_neurons(self) -> int:
        """:return: Number of neurons the layer holds now (alive or not); :attr:`dense` counts those it was built with."""
        return self.producer.out_features

    def to_dense(self, values: torch.Tensor, fill: float | bool = 0) -> torch.Tensor:
        """
        Place per-neuron values of the layer as it is now at their neurons' positions in the dense layer.

        :param values: ``(n_neurons,)``.
        :param fill: The value of neurons removed physically.
        :return: ``(dense,)``.
        """
        out = torch.full((self.dense,), fill, dtype=values.dtype)
        out[self.index] = values.cpu()
        return out

    def group_sq_norms(self) -> torch.Tensor:
        """
        Squared L2 norm of each neuron's group.

        :return: Tensor of shape ``(n_neurons,)``.
        """
        sq = self.producer.weight.pow(2).sum(dim=1)  # (out, in) -> (out,)
        if self.producer.bias is not None:
            sq = sq + self.producer.bias.pow(2)
        for consumer in self.consumers:
            sq = sq + consumer.weight.pow(2).sum(dim=0)  # (next, out) -> (out,)
        return sq

    def group_norms(self) -> torch.Tensor:
        """:return: L2 norm of each neuron's group, shape ``(n_neurons,)``."""
        return self.group_sq_norms().sqrt()

    @torch.no_grad()
    def computes(self) -> torch.Tensor:
        """
        Which neurons still compute something: a neuron whose incoming weights and bias are all exactly zero outputs
        ``act(0) = 0`` (tanh, ReLU), and one whose outgoing weights are all zero feeds nothing, whatever its mask says.

        :return: Boolean ``(n_neurons,)``.
        """
        fed = self.producer.weight.ne(0).any(dim=1)  # (out, in) -> (out,)
        if self.producer.bias is not None:
            fed = fed | self.producer.bias.ne(0)
        feeds = torch.stack([c.weight.ne(0).any(dim=0) for c in self.consumers]).any(dim=0)  # (next, out) -> (out,)
        return fed & feeds

    def factor_views(self, factor: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """
        Pair each parameter of the groups with ``factor`` shaped to broadcast over it.

        :param factor: Tensor of shape ``(n_neurons,)``.
        :return: ``(parameter, view)`` pairs: rows of the producer, its bias, columns of each consumer.
        """
        factor = factor.to(self.producer.weight.dtype)
        views = [(self.producer.weight, factor.unsqueeze(1))]  # (out, in): one row per neuron
        if self.producer.bias is not None:
            views.append((self.producer.bias, factor))
        views += [(c.weight, factor.unsqueeze(0)) for c in self.consumers]  # (next, out): one column per neuron
        return views

    @torch.no_grad()
    def scale_(self, factor: torch.Tensor) -> None:
        """
        Multiply each neuron's whole group by a factor (0 removes it).

        :param factor: Tensor of shape ``(n_neurons,)``.
        """
        for param, view in self.factor_views(factor):
            param.mul_(view)


@dataclass
class PrunableNet:
    """
    One network whose hidden neurons can be pruned, e.g. a policy head or a critic.

    :param name: Short name used in logs (``"pi"``, ``"vf"``, ``"q"``, ``"actor"``, ``"qf0"``).
    :param role: ``"policy"`` for the network that is deployed (acts), ``"value"`` for critics.
    :param layers: Hidden layers, input side first.
    :param linears: Every Linear layer of the network, hidden and output, input side first.
        Used to count the weights that a compact network would keep.
    :param targets: Target copies of the network (same shape), which carry its masks.
    :param discrete: Its outputs score discrete actions (logits or Q-values) and the agent acts on their argmax;
        otherwise they are continuous actions (or their means).
    """

    name: str
    role: str
    layers: list[HiddenLayer]
    linears: list[nn.Linear]
    targets: list[PrunableNet] = field(default_factory=list)
    discrete: bool = False

    def __post_init__(self) -> None:
        if self.role not in ("policy", "value"):
            raise ValueError(f"role must be 'policy' or 'value', got {self.role!r}")

    @property
    def n_neurons(self) -> int:
        """:return: Number of hidden neurons of the dense network (as built, before any was removed physically)."""
        return sum(layer.dense for layer in self.layers)

    def parameters(self) -> list[nn.Parameter]:
        """:return: The weights and biases of every Linear layer of the network (not of its mirrors)."""
        return [param for linear in self.linears for param in linear.parameters()]


def mlp_layers(
    name: str, body: nn.Module, heads: Sequence[nn.Module] | None = None
) -> tuple[list[HiddenLayer], list[nn.Linear]]:
    """
    Find the hidden layers of an MLP made of Linear layers and element-wise activations.

    Each Linear layer of ``body`` except a last one that feeds nothing is a producer; its consumer is the next
    Linear layer of ``body``, or the ``heads`` for the last one.

    :param name: Prefix for the layer names.
    :param body: A module whose Linear submodules, in registration order, form a chain.
    :param heads: Linear layers reading the last hidden layer of ``body`` (``None`` when ``body`` ends in
        its own output layer).
    :return: The hidden layers and every Linear layer (body then heads).
    """
    linears = [m for m in body.modules() if isinstance(m, nn.Linear)]
    if not all(isinstance(h, nn.Linear) for h in heads or []):
        raise TypeError(f"{name}: heads must be nn.Linear, got {[type(h).__name__ for h in heads or []]}")
    outputs = [h for h in heads or [] if isinstance(h, nn.Linear)]
    if not outputs:
        if len(linears) < 2:
            return [], linears
        linears, outputs = linears[:-1], [linears[-1]]
    layers = []
    for i, producer in enumerate(linears):
        consumers = [linears[i + 1]] if i + 1 < len(linears) else outputs
        layers.append(HiddenLayer(name=f"{name}.{i}", producer=producer, consumers=consumers))
    return layers, linears + outputs


def link_mirrors(online: PrunableNet, target: PrunableNet) -> None:
    """
    Register ``target``'s hidden layers as mirrors of ``online``'s (a target network follows its online one).

    :param online: The trained network.
    :param target: Its target copy, of identical shape.
    """
    if [la.n_neurons for la in online.layers] != [lb.n_neurons for lb in target.layers]:
        raise ValueError(f"{target.name} does not have the shape of {online.name}")
    for layer, mirror in zip(online.layers, target.layers, strict=True):
        layer.mirrors.append(mirror)
    online.targets.append(target)


def compact_weight_count(net: PrunableNet, alive: Sequence[torch.Tensor] | None = None) -> int:
    """
    Count the weights (matrix entries, biases excluded) that a compact copy of ``net`` would hold.

    A Linear layer keeps ``alive inputs x alive outputs`` weights; network inputs and outputs are never pruned.

    :param net: The network.
    :param alive: Boolean masks per hidden layer (``None``: the dense network, as built).
    :return: Number of weights.
    """
    width = {id(layer.producer): layer.dense for layer in net.layers}
    if alive is not None:
        width = {id(layer.producer): int(a.sum()) for layer, a in zip(net.layers, alive, strict=True)}
    fed_by = {id(c): width[id(layer.producer)] for layer in net.layers for c in layer.consumers}
    return sum(fed_by.get(id(lin), lin.in_features) * width.get(id(lin), lin.out_features) for lin in net.linears)
