"""``scratch``: no pruning; the networks are built at the widths a pruned run ends with and trained from scratch.

The control of RLx2's "Tiny" networks (Tan et al. 2023, "RLx2: Training a Sparse Deep Reinforcement Learning
Model from Scratch", arXiv 2205.15043): does pruning beat simply training a network of the final size on the same
budget? The widths come from the shared sparsity keys (every hidden layer keeps
``max(floor((1 - sparsity) * width), min_neurons)`` neurons, as a structured method's layer does), or from a pruned
run directory's ``results.json`` (``from_run``). Its stats compare the networks it trains with the configured
(dense) ones, so its sparsity reads like a pruned run's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from prune_rl.core import PrunableNet, compact_weight_count, layer_quota
from prune_rl.methods.base import AUTO, ProbeFn, Pruner, PrunerConfig, net_stats

RESULTS_FILE = "results.json"


@dataclass
class ScratchConfig(PrunerConfig):
    """
    Training at the final widths from scratch (``conf/pruning/scratch.yaml``).

    :param from_run: A pruned run directory whose final widths (``results.json``) to train at; ``None`` computes
        them from ``sparsity``, ``value_sparsity`` and ``min_neurons``.
    """

    from_run: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sparsity == AUTO and not self.from_run:
            raise ValueError("pruning=scratch with sparsity=auto needs pruning.from_run: a run whose widths to train at")


def run_widths(run_dir: str | Path) -> dict[str, list[int]]:
    """
    The hidden widths a finished pruned run ended with.

    :param run_dir: A run directory written by ``prune-rl train``.
    :return: ``{net name: [alive neurons per hidden layer]}``.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise ValueError(f"pruning.from_run: {path} does not exist")
    sparsity = json.loads(path.read_text()).get("sparsity")
    if not sparsity:
        raise ValueError(f"pruning.from_run: {path} is not a pruned run (no sparsity)")
    return {name: list(stats["alive_per_layer"].values()) for name, stats in sparsity.items()}


class ScratchPruner(Pruner):
    """
    Builds the networks narrow and never prunes; reports their size against the configured networks.

    :param cfg: Its configuration.
    :param seed: Seed of the pruner's generator (unused).
    """

    config_class: ClassVar[type[PrunerConfig]] = ScratchConfig
    cfg: ScratchConfig

    def __init__(self, cfg: ScratchConfig, seed: int = 0) -> None:
        super().__init__(cfg, seed)
        self.dense: dict[str, tuple[int, int]] = {}  # per network: neurons and weights as configured

    def architecture(self, dense: Sequence[PrunableNet]) -> dict[str, list[int]]:
        """
        :param dense: The networks as configured.
        :return: The final widths of every network's hidden layers.
        """
        self.dense = {net.name: (net.n_neurons, compact_weight_count(net)) for net in dense}
        if self.cfg.from_run:
            widths = run_widths(self.cfg.from_run)
            missing = sorted({net.name for net in dense} - set(widths))
            if missing:
                raise ValueError(f"pruning.from_run: {self.cfg.from_run} has no widths for {', '.join(missing)}")
            for net in dense:
                if len(widths[net.name]) != len(net.layers):
                    raise ValueError(f"pruning.from_run: {net.name} has {len(widths[net.name])} hidden layers there")
            critics = {tuple(widths[net.name]) for net in dense if net.name.startswith("qf")}
            if len(critics) > 1:  # SB3 builds every critic from one net_arch
                raise ValueError(f"pruning.from_run: the critics ended at different widths {sorted(critics)}")
            # a layer an unstructured run emptied still keeps min_neurons: no zero-width Linear
            return {net.name: [max(w, self.cfg.min_neurons) for w in widths[net.name]] for net in dense}
        return {
            net.name: [layer_quota(self.final_sparsity(net), layer.n_neurons, self.cfg.min_neurons) for layer in net.layers]
            for net in dense
        }

    def due(self, progress: float) -> bool:
        """:return: ``False``: there is nothing to cut."""
        return False

    def listening(self, progress: float) -> bool:
        """:return: ``False``: no probe is needed."""
        return False

    def prune(self, progress: float, probe: ProbeFn) -> None:
        """Nothing to cut: the networks were built at their final widths."""

    def masks(self) -> dict[str, torch.Tensor]:
        """:return: Every neuron of the narrow networks, alive."""
        return {layer.name: torch.ones(layer.n_neurons, dtype=torch.bool) for net in self.nets for layer in net.layers}

    def stats(self) -> dict[str, dict[str, Any]]:
        """:return: The common fields, against the configured networks (``neurons``, ``weights``)."""
        out = {}
        for net in self.nets:
            neurons, weights = self.dense.get(net.name, (net.n_neurons, compact_weight_count(net)))
            stats = net_stats(net, [layer.n_neurons for layer in net.layers], compact_weight_count(net), weights)
            stats["neurons"] = neurons
            stats["neuron_sparsity"] = 1.0 - net.n_neurons / max(neurons, 1)
            out[net.name] = stats
        return out

    def state_dict(self) -> dict[str, Any]:
        """:return: The base state and the configured networks' sizes."""
        return {**super().state_dict(), "dense": dict(self.dense)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:param state: As from :meth:`state_dict`."""
        super().load_state_dict(state)
        self.dense = {name: (int(n), int(w)) for name, (n, w) in state["dense"].items()}
