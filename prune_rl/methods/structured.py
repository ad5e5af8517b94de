"""Structured pruning on a schedule: whole neurons removed by a score, and the two structured baselines.

:class:`StructuredPruner` holds one :class:`prune_rl.core.NeuronMask` per hidden layer. At every event it scores
the alive neurons and keeps each layer's best ``1 - s(t)`` share (at least ``min_neurons``), where ``s(t)`` is the
network's scheduled sparsity; removal is permanent. Subclasses say how neurons are scored:

- ``l2_structured``: the L2 norm of the neuron's group (incoming weights, bias, outgoing weights), with no
  regularizer: structured magnitude pruning (Li et al. 2017, "Pruning Filters for Efficient ConvNets",
  arXiv 1608.08710, on neurons instead of filters, on the gradual schedule). Its old name, ``l1_structured``, is
  still read.
- ``random_structured``: uniformly random neurons, from the pruner's own seeded generator: the floor every
  method must beat.
- ``dsp`` (:mod:`prune_rl.methods.dsp`) adds its regularizer, data-driven importance and repair steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from prune_rl.core import HiddenLayer, NeuronMask, PrunableNet, compact_weight_count, magnitude_importance, select_alive
from prune_rl.core.surgery import shrink_
from prune_rl.methods.base import ProbeFn, Pruner, net_stats


class StructuredPruner(Pruner):
    """
    Neuron masks that follow the sparsity schedule, chosen by :meth:`score`.

    Masks live over the neurons each layer holds now; once the networks were shrunk (:meth:`shrink_`), that is
    fewer than the dense layer's, and :meth:`masks` maps them back to dense positions.

    :param cfg: The method's configuration.
    :param seed: Seed of the pruner's generator.
    """

    shrinks: ClassVar[bool] = True

    def __init__(self, cfg: Any, seed: int = 0) -> None:
        super().__init__(cfg, seed)
        self.neuron_masks: dict[str, NeuronMask] = {}
        self.thresholds: dict[str, float] = {}  # per network, the lowest normalised score kept at the last cut

    @property
    def layers(self) -> list[HiddenLayer]:
        """:return: Every hidden layer of every network, in order."""
        return [layer for net in self.nets for layer in net.layers]

    def _setup(self, masks: dict[str, torch.Tensor]) -> None:
        names = {layer.name for layer in self.layers}
        if masks and set(masks) != names:
            raise ValueError(f"masks for {sorted(set(masks) ^ names)} do not fit these networks' hidden layers")
        for layer in self.layers:
            dense = masks.get(layer.name)
            if dense is not None and dense.shape != (layer.dense,):
                raise ValueError(f"{layer.name}: mask of shape {tuple(dense.shape)} for {layer.dense} neurons")
            self.neuron_masks[layer.name] = NeuronMask(layer, dense[layer.index] if dense is not None else None)
            self.neuron_masks[layer.name].apply_(self.optimizers)
        for net in self.nets:
            self.thresholds.setdefault(net.name, 0.0)

    def check(self, nets: Sequence[PrunableNet]) -> None:
        """Refuse a ``min_neurons`` that keeps every neuron of a layer that should lose some."""
        for net in nets:
            target = self.final_sparsity(net)
            for layer in net.layers:
                if target > 0 and self.cfg.min_neurons >= layer.dense:
                    raise ValueError(
                        f"pruning.min_neurons={self.cfg.min_neurons} keeps all {layer.dense} neurons of {layer.name}, so "
                        f"{net.name} cannot reach sparsity {target}: use a min_neurons below {layer.dense}"
                    )

    def alive(self, net: PrunableNet) -> list[torch.Tensor]:
        """:return: The boolean masks of ``net``'s hidden layers, over the neurons they hold now."""
        return [self.neuron_masks[layer.name].alive for layer in net.layers]

    def alive_neurons(self, net: PrunableNet) -> list[torch.Tensor]:
        """:return: The boolean masks of ``net``'s hidden layers, over the neurons they hold now."""
        return [alive.cpu().clone() for alive in self.alive(net)]

    def shrink_(
        self, keeps: dict[str, list[torch.Tensor]], activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu
    ) -> None:
        """Remove the neurons ``keeps`` drops from the networks, their targets and optimizer state, and from the masks."""
        for net in self.nets:
            keep = [k.cpu() for k in keeps[net.name]]
            if all(bool(k.all()) for k in keep):
                continue
            for layer, kept in zip(net.layers, keep, strict=True):
                if bool((kept.to(self.neuron_masks[layer.name].alive.device) < self.neuron_masks[layer.name].alive).any()):
                    raise ValueError(f"{layer.name}: only dead neurons can be removed")
            self._narrow_(net, keep)
            alive = [a.cpu()[k] for a, k in zip(self.alive(net), keep, strict=True)]
            shrink_(net, keep, activation, self.optimizers)
            for layer, kept_alive in zip(net.layers, alive, strict=True):
                self.neuron_masks[layer.name] = NeuronMask(layer, kept_alive)

    def _narrow_(self, net: PrunableNet, keep: list[torch.Tensor]) -> None:
        """Slice the method's own per-neuron state of ``net`` to the ``keep`` neurons, before the layers shrink."""

    def score(self, layers: list[HiddenLayer], probe: ProbeFn) -> list[torch.Tensor]:
        """
        Importance of every neuron; the highest are kept.

        :param layers: Hidden layers to score.
        :param probe: Runs the networks on recent states.
        :return: One ``(n_neurons,)`` tensor per layer.
        """
        raise NotImplementedError

    def prune(self, progress: float, probe: ProbeFn) -> None:
        """Keep each layer's best-scored neurons so that every network reaches its scheduled sparsity."""
        layers = self.layers
        if not layers:
            return
        self.absorb_dead_()
        scores = dict(zip([la.name for la in layers], self.score(layers, probe), strict=True))
        for net in self.nets:
            net_scores = [scores[la.name] for la in net.layers]
            target = self.target(net, progress)
            widths = [la.dense for la in net.layers]
            new_alive, tau = select_alive(net_scores, self.alive(net), target, self.cfg.min_neurons, widths=widths)
            self.cut_(net, new_alive, net_scores)
            if tau is not None:
                self.thresholds[net.name] = tau

    def absorb_dead_(self) -> int:
        """
        Mask the neurons that something other than a cut removed: a neuron whose incoming weights and bias, or whose
        outgoing weights, are all exactly zero (the group lasso drives whole groups there) computes nothing, so it is
        removed for good, like a cut one (its optimizer state is zeroed, and shrinking may drop it).

        :return: How many neurons were absorbed.
        """
        absorbed = 0
        for layer in self.layers:
            mask = self.neuron_masks[layer.name]
            dead = mask.alive & ~layer.computes().to(mask.alive.device)
            if bool(dead.any()):
                absorbed += int(dead.sum())
                mask.alive = mask.alive & ~dead
                mask.apply_(self.optimizers)
        return absorbed

    def cut_(self, net: PrunableNet, new_alive: list[torch.Tensor], scores: list[torch.Tensor]) -> None:
        """
        Apply one network's new masks (a subclass may repair the cut first).

        :param net: The network.
        :param new_alive: Its new masks, one per hidden layer.
        :param scores: The scores they were chosen by.
        """
        for layer, keep in zip(net.layers, new_alive, strict=True):
            mask = self.neuron_masks[layer.name]
            if not torch.equal(keep, mask.alive):
                mask.alive = keep
                mask.apply_(self.optimizers)

    def masks(self) -> dict[str, torch.Tensor]:
        """:return: ``{layer name: alive neurons}`` over the dense layers (neurons removed physically are dead)."""
        return {name: mask.layer.to_dense(mask.alive, False) for name, mask in self.neuron_masks.items()}

    def stats(self) -> dict[str, dict[str, Any]]:
        """
        :return: The common fields per network, and ``threshold`` (the last cut's, on normalised scores). A neuron
            counts as alive if its mask keeps it and it still computes (:meth:`HiddenLayer.computes`).
        """
        out = {}
        for net in self.nets:
            # what the network holds: a neuron the regularizer zeroed is removed, whatever its mask says
            alive = [a & layer.computes().to(a.device) for a, layer in zip(self.alive(net), net.layers, strict=True)]
            widths = [int(a.sum()) for a in alive]
            out[net.name] = {
                **net_stats(net, widths, compact_weight_count(net, alive), compact_weight_count(net)),
                "threshold": self.thresholds.get(net.name, 0.0),
            }
        return out

    def state_dict(self) -> dict[str, Any]:
        """:return: The base state and the thresholds."""
        return {**super().state_dict(), "thresholds": dict(self.thresholds)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:param state: As from :meth:`state_dict`."""
        super().load_state_dict(state)
        self.thresholds = dict(state.get("thresholds", {}))


class L2StructuredPruner(StructuredPruner):
    """Whole neurons by the L2 norm of their weight group, on the gradual schedule, with no regularizer."""

    def score(self, layers: list[HiddenLayer], probe: ProbeFn) -> list[torch.Tensor]:
        """:return: ``||theta_j||_2`` of every neuron's group."""
        return magnitude_importance(layers)


L1StructuredPruner = L2StructuredPruner
"""The old name of :class:`L2StructuredPruner` (deprecated: it ranks by the L2 norm)."""


class RandomStructuredPruner(StructuredPruner):
    """Uniformly random neurons on the gradual schedule, reproducible with the run's seed."""

    def score(self, layers: list[HiddenLayer], probe: ProbeFn) -> list[torch.Tensor]:
        """:return: Independent uniform scores from the pruner's generator (drawn for the dense layers)."""
        return [torch.rand(layer.dense, generator=self.generator)[layer.index] for layer in layers]
