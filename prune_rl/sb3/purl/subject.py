"""The network a PuRL search prunes: cut layer by layer, measured against its unpruned self on stored states.

A *subject* is the deployed network of a trained agent seen as layers of prunable *units* (hidden neurons for the
structured search, weight-matrix entries for the unstructured one). The search cuts one layer at a time to a
number of units, ranked by an importance score recomputed on the network as it is now, and reads the
:func:`fidelity` of the pruned network's outputs to the unpruned ones on a fixed batch of states. :meth:`reset`
restores the unpruned weights, so one subject serves every episode of a search. Target networks (DQN's
``q_target``) are never touched during a search: only the online network's weights are changed and restored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from prune_rl.core import IMPORTANCES, PrunableNet, magnitude_keep
from prune_rl.methods.base import ProbeFn


@torch.no_grad()
def fidelity(outputs: torch.Tensor, reference: torch.Tensor, discrete: bool) -> float:
    """
    How faithfully a pruned network reproduces the unpruned one's decisions on a batch of states.

    Discrete actions: the share of states where both pick the same action (argmax of logits or Q-values).
    Continuous actions: the share of the reference actions' variance explained,
    ``1 - mean_d(mean_s((y - y_ref)^2) / var_s(y_ref))`` over action dimensions ``d`` and states ``s``, floored at -1.
    Both are 1 for the unpruned network.

    :param outputs: The pruned network's outputs, ``(n_states, n_outputs)``.
    :param reference: The unpruned network's outputs on the same states.
    :param discrete: Compare argmax actions instead of values.
    :return: The fidelity, in ``[0, 1]`` (discrete) or ``[-1, 1]`` (continuous).
    """
    if discrete:
        return float((outputs.argmax(dim=-1) == reference.argmax(dim=-1)).float().mean())
    outputs, reference = outputs.reshape(len(outputs), -1), reference.reshape(len(reference), -1)
    error = (outputs - reference).pow(2).mean(dim=0)
    variance = reference.var(dim=0, unbiased=False).clamp_min(1e-8)
    return max(1.0 - float((error / variance).mean()), -1.0)


class Subject(ABC):
    """
    A network under search: layers of units, each keeping at least its floor, cut by importance.

    :param net: The deployed network.
    :param probe: Runs every prunable network on the stored states (deployed network first).
    """

    unit = "unit"

    def __init__(self, net: PrunableNet, probe: ProbeFn) -> None:
        self.net = net
        self.probe = probe
        self._dense = [param.detach().clone() for param in net.parameters()]
        with torch.no_grad():
            self.reference = probe()[0].detach()  # the unpruned outputs
        self.names: list[str] = []
        self.sizes: list[int] = []
        self.floors: list[int] = []
        self.alive: list[torch.Tensor] = []

    @torch.no_grad()
    def reset(self) -> None:
        """Restore the unpruned weights; every unit alive."""
        for param, value in zip(self.net.parameters(), self._dense, strict=True):
            param.copy_(value)
        self.alive = [torch.ones_like(alive) for alive in self.alive]

    def kept(self) -> list[int]:
        """:return: Units alive per layer."""
        return [int(alive.sum()) for alive in self.alive]

    @abstractmethod
    def cut(self, index: int, n_keep: int) -> None:
        """
        Keep the ``n_keep`` most important alive units of one layer; the others become exactly zero.

        :param index: The layer.
        :param n_keep: Units it keeps (at most its alive ones).
        """

    @abstractmethod
    def _zero(self, index: int) -> None:
        """Zero the dead units of layer ``index`` (this network only, not its target copies)."""

    def apply(self, masks: list[torch.Tensor]) -> None:
        """
        Restore the unpruned weights, then prune to ``masks`` (as returned by :meth:`masks`).

        :param masks: Alive units per layer.
        """
        self.reset()
        self.alive = [mask.clone().cpu() for mask in masks]
        self.apply_()

    def apply_(self) -> None:
        """Zero every dead unit again (after an optimizer step, e.g. of a distillation)."""
        for index in range(len(self.alive)):
            self._zero(index)

    def fidelity(self) -> float:
        """:return: :func:`fidelity` of the network as it is now."""
        with torch.no_grad():
            return fidelity(self.probe()[0], self.reference, self.net.discrete)

    def masks(self) -> list[torch.Tensor]:
        """:return: Copies of the alive masks, one per layer."""
        return [alive.cpu().clone() for alive in self.alive]


class NeuronSubject(Subject):
    """
    Hidden neurons, ranked by an importance criterion of :data:`prune_rl.core.IMPORTANCES`.

    :param net: The deployed network.
    :param probe: Runs the networks on the stored states.
    :param min_neurons: Neurons every hidden layer keeps.
    :param importance: The criterion (``magnitude``: the L2 norm of the neuron's weight group; data-driven ones run
        the probe).
    """

    unit = "neuron"

    def __init__(self, net: PrunableNet, probe: ProbeFn, min_neurons: int = 1, importance: str = "magnitude") -> None:
        super().__init__(net, probe)
        self.importance = IMPORTANCES[importance]
        self.names = [layer.name for layer in net.layers]
        self.sizes = [layer.n_neurons for layer in net.layers]
        self.floors = [min(min_neurons, n) for n in self.sizes]
        self.alive = [torch.ones(n, dtype=torch.bool) for n in self.sizes]

    def cut(self, index: int, n_keep: int) -> None:
        """Keep the ``n_keep`` alive neurons of highest importance in hidden layer ``index``."""
        layer = self.net.layers[index]
        alive = self.alive[index]
        score = self.importance([layer], self.probe)[0].detach().float().cpu()
        ranked = torch.argsort(torch.where(alive, score, torch.tensor(-float("inf"))), descending=True, stable=True)
        keep = torch.zeros_like(alive)
        keep[ranked[: min(n_keep, int(alive.sum()))]] = True
        self.alive[index] = keep
        self._zero(index)

    def _zero(self, index: int) -> None:
        layer = self.net.layers[index]
        layer.scale_(self.alive[index].to(layer.producer.weight.device))  # this layer only: target networks stay


class WeightSubject(Subject):
    """
    Entries of every Linear weight matrix (hidden and output layers), ranked by magnitude.

    :param net: The deployed network.
    :param probe: Runs the networks on the stored states.
    :param min_weights: Weights every layer keeps.
    """

    unit = "weight"

    def __init__(self, net: PrunableNet, probe: ProbeFn, min_weights: int = 1) -> None:
        super().__init__(net, probe)
        self.names = [f"{net.name}.linear{i}" for i in range(len(net.linears))]
        self.sizes = [linear.weight.numel() for linear in net.linears]
        self.floors = [min(max(min_weights, 1), n) for n in self.sizes]
        self.alive = [torch.ones_like(linear.weight, dtype=torch.bool, device="cpu") for linear in net.linears]

    def cut(self, index: int, n_keep: int) -> None:
        """Keep the ``n_keep`` alive weights of largest magnitude in Linear layer ``index``."""
        weight = self.net.linears[index].weight
        self.alive[index] = magnitude_keep(weight.cpu(), self.alive[index], n_keep)
        self._zero(index)

    @torch.no_grad()
    def _zero(self, index: int) -> None:
        weight = self.net.linears[index].weight
        weight.mul_(self.alive[index].to(weight.device, weight.dtype))
