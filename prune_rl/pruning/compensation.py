"""Mean replacement: fold a cut neuron's mean activation into the bias of the layer it feeds.

Cutting neuron ``j`` changes the pre-activation of the next layer by ``-W_next[:, j] * a_j(x)``. The mean part of
that change, ``-W_next[:, j] * E_x[a_j(x)]``, is undone by adding ``W_next[:, j] * E_x[a_j(x)]`` to the next
layer's bias, so a cut neuron that fires at a steady level is removed without shifting the layer it fed; only
its variation around the mean is lost ("bias propagation", Evci, Le Roux, Castro & Bottou 2018, *Mean
Replacement Pruning*, OpenReview). A neuron the regularizer already drove to zero has ``a_j = act(0) = 0``, so
folding it changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prune_rl.pruning.groups import HiddenLayer
from prune_rl.pruning.importance import ProbeFn, probe_activations


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
