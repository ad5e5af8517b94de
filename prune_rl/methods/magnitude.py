"""Unstructured magnitude pruning during training: ``magnitude`` (per layer) and ``global_magnitude``.

Every Linear weight matrix of a network (hidden and output layers; biases are not pruned) gets a
:class:`prune_rl.core.WeightMask`. At every event the alive weights of smallest magnitude are masked so that the
network's weight sparsity follows the schedule ``s(t)``; masked weights never come back, and their gradients are
zeroed so that they stay exactly zero between events.

- ``magnitude``: gradual magnitude pruning of Zhu & Gupta 2017 ("To prune, or not to prune: exploring the
  efficacy of pruning for model compression", arXiv 1710.01878): every layer keeps its own largest
  ``1 - s(t)`` share, on the cubic schedule.
- ``global_magnitude``: one magnitude threshold over all the network's layers, each layer keeping at least
  ``min_weights`` (Gupta et al. 2022, "Is Complexity Required for Neural Network Pruning? A Case Study on Global
  Magnitude Pruning", arXiv 2209.14624, with its minimum threshold against layer collapse).

With ``matched: true``, ``sparsity`` and ``value_sparsity`` are read as *neuron* sparsities: each network keeps as
many weights as a structured method at that neuron sparsity (and ``min_neurons``) would, so unstructured and
structured methods are compared at equal kept weights. A hidden neuron counts as removed when all of its incoming
or all of its outgoing weights are masked (an input-less neuron is a constant that folds into the next bias).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from prune_rl.core import (
    PrunableNet,
    WeightMask,
    compact_weight_count,
    global_magnitude_keep,
    layer_quota,
    magnitude_keep,
    weight_quota,
)
from prune_rl.methods.base import ProbeFn, Pruner, PrunerConfig, net_stats


@dataclass
class MagnitudeConfig(PrunerConfig):
    """
    Unstructured magnitude pruning (``conf/pruning/magnitude.yaml``, ``global_magnitude.yaml``).

    :param matched: Read ``sparsity`` / ``value_sparsity`` as neuron sparsities and keep the weights a structured
        method would keep there.
    :param min_weights: Weights every layer keeps (``global_magnitude``'s minimum threshold).
    """

    matched: bool = False
    min_weights: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_weights < 0:
            raise ValueError(f"pruning.min_weights must be >= 0, got {self.min_weights}")


def matched_weight_sparsity(net: PrunableNet, neuron_sparsity: float, min_neurons: int) -> float:
    """
    The weight sparsity of ``net`` pruned structurally to ``neuron_sparsity`` (every layer to its quota).

    :param net: The network.
    :param neuron_sparsity: Fraction of each hidden layer's neurons removed.
    :param min_neurons: Neurons a hidden layer keeps at least.
    :return: ``1 - compact weights / dense weights``.
    """
    widths = [layer_quota(neuron_sparsity, layer.n_neurons, min_neurons) for layer in net.layers]
    alive = [torch.arange(layer.n_neurons) < w for layer, w in zip(net.layers, widths, strict=True)]
    return 1.0 - compact_weight_count(net, alive) / max(compact_weight_count(net), 1)


class MagnitudePruner(Pruner):
    """
    Gradual magnitude pruning of individual weights, every layer to the scheduled sparsity.

    After "To prune, or not to prune: exploring the efficacy of pruning for model compression" (Zhu & Gupta,
    arXiv 1710.01878).

    :param cfg: Its configuration.
    :param seed: Seed of the pruner's generator (unused: the method is deterministic).
    """

    config_class: ClassVar[type[PrunerConfig]] = MagnitudeConfig
    cfg: MagnitudeConfig

    def __init__(self, cfg: MagnitudeConfig, seed: int = 0) -> None:
        super().__init__(cfg, seed)
        self.weight_masks: dict[str, list[WeightMask]] = {}  # per network, one per Linear layer
        self._hooked = False  # between start() and close(): new masks hook their gradients too

    def final_sparsity(self, net: PrunableNet) -> float:
        """:return: The weight sparsity ``net`` reaches at ``end``."""
        sparsity = super().final_sparsity(net)
        return matched_weight_sparsity(net, sparsity, self.cfg.min_neurons) if self.cfg.matched else sparsity

    def _setup(self, masks: dict[str, torch.Tensor]) -> None:
        for mask in self._all():
            mask.remove_hook()
        names = {f"{net.name}.linear{i}" for net in self.nets for i in range(len(net.linears))}
        if masks and set(masks) != names:
            raise ValueError(f"masks for {sorted(set(masks) ^ names)} do not fit these networks' weights")
        for net in self.nets:
            targets = [[t.linears[i] for t in net.targets] for i in range(len(net.linears))]
            self.weight_masks[net.name] = [
                WeightMask(f"{net.name}.linear{i}", linear, targets[i], masks.get(f"{net.name}.linear{i}"))
                for i, linear in enumerate(net.linears)
            ]
        for mask in self._all():
            mask.apply_(self.optimizers)
            if self._hooked:
                mask.hook_()

    def _all(self) -> list[WeightMask]:
        return [mask for masks in self.weight_masks.values() for mask in masks]

    def start(self) -> None:
        """Mask the gradients of pruned weights from now on."""
        self._hooked = True
        for mask in self._all():
            mask.hook_()

    def close(self) -> None:
        """Stop masking gradients."""
        self._hooked = False
        for mask in self._all():
            mask.remove_hook()

    def prune(self, progress: float, probe: ProbeFn) -> None:
        """Mask each layer's smallest alive weights so that it reaches the scheduled sparsity."""
        for net in self.nets:
            target = self.target(net, progress)
            for mask in self.weight_masks[net.name]:
                self._set(mask, magnitude_keep(mask.linear.weight, mask.alive, weight_quota(target, mask.n_weights)))

    def _set(self, mask: WeightMask, keep: torch.Tensor) -> None:
        if not torch.equal(keep, mask.alive):
            mask.alive = keep
            mask.apply_(self.optimizers)

    def masks(self) -> dict[str, torch.Tensor]:
        """:return: ``{<net>.linear<i>: alive weights}``."""
        return {mask.name: mask.alive.cpu().clone() for mask in self._all()}

    def stats(self) -> dict[str, dict[str, Any]]:
        """:return: The common fields per network; a neuron is removed when its inputs or its outputs all are."""
        out = {}
        for net in self.nets:
            by_linear = {id(mask.linear): mask.alive for mask in self.weight_masks[net.name]}
            widths = []
            for layer in net.layers:
                has_input = by_linear[id(layer.producer)].any(dim=1)  # (out_features,)
                has_output = torch.stack([by_linear[id(c)].any(dim=0) for c in layer.consumers]).any(dim=0)
                widths.append(int((has_input & has_output).sum()))
            kept = sum(mask.n_alive for mask in self.weight_masks[net.name])
            out[net.name] = net_stats(net, widths, kept, compact_weight_count(net))
        return out


class GlobalMagnitudePruner(MagnitudePruner):
    """
    Global magnitude pruning with a minimum threshold: one ranking of the weights of all a network's layers.

    After "Is Complexity Required for Neural Network Pruning? A Case Study on Global Magnitude Pruning"
    (Gupta et al., arXiv 2209.14624).

    Parameters as for :class:`MagnitudePruner`.
    """

    def prune(self, progress: float, probe: ProbeFn) -> None:
        """Mask the network's smallest alive weights, every layer keeping at least ``min_weights``."""
        for net in self.nets:
            masks = self.weight_masks[net.name]
            n_keep = weight_quota(self.target(net, progress), sum(m.n_weights for m in masks))
            weights, alive = [m.linear.weight for m in masks], [m.alive for m in masks]
            keeps = global_magnitude_keep(weights, alive, n_keep, self.cfg.min_weights)
            for mask, keep in zip(masks, keeps, strict=True):
                self._set(mask, keep)
