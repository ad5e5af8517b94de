"""The interface every pruning method implements.

The keys every method shares, :class:`prune_rl.config.PrunerConfig`, are plain config (no torch), so that
composing and reading a config does not import the methods.

A :class:`Pruner` is pure PyTorch: it is set up on the prunable networks' neuron groups
(:class:`prune_rl.core.PrunableNet`), is told the training progress, may regularize between gradient phases,
cuts at its events using a probe of recent states, and keeps everything it needs to continue in
``state_dict()``. An SB3 callback (:class:`prune_rl.sb3.PruningCallback`) drives any pruner; nothing in it is
method-specific.

Conventions: ``progress`` is the fraction of the run's training budget done, in ``[0, 1]``; sparsity is the
fraction removed (0 = dense). Events happen every ``interval`` of training from ``begin`` until ``end``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from prune_rl.config import AUTO, PrunerConfig
from prune_rl.core import SCHEDULES, PrunableNet, Sparsity

ProbeFn = Callable[[], list[torch.Tensor]]
"""Runs every prunable network on a batch of recent states and returns their outputs (deployed network first)."""

AUTO_CEILING = 1.0 - 1e-6
"""The deployed network's schedule under ``sparsity: auto``: every layer down to ``min_neurons``, if the guard allows."""


class Pruner(ABC):
    """
    A pruning method: set up on a model's prunable networks, it cuts them at its events during training.

    The driver calls, in this order: :meth:`setup` once, :meth:`start` at the start of every ``learn()`` call,
    then between gradient phases :meth:`regularize` and, when :meth:`due`, :meth:`step` with a probe of recent
    states, and :meth:`close` at the end of every ``learn()`` call. :meth:`listening` says when an on-policy
    driver should pool states for the next event. Subclasses implement :meth:`prune` (the cut), :meth:`masks`
    and :meth:`stats`, and may override the rest.

    :param cfg: The method's configuration.
    :param seed: Seed of the pruner's own random generator (the training's random streams are not touched).
    """

    config_class: ClassVar[type[PrunerConfig]] = PrunerConfig
    shrinks: ClassVar[bool] = False
    """Whether the method removes whole neurons for good, so that its networks can be rebuilt narrower (:meth:`shrink_`)."""
    scales_cut: ClassVar[bool] = True
    """Whether an event cuts :attr:`cut_scale` of its scheduled cut (:meth:`target`), so that a guard can make it smaller."""

    def __init__(self, cfg: PrunerConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.nets: list[PrunableNet] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedules: dict[str, Sparsity] = {}
        self.last_event = -1.0  # progress of the last event (-1: none yet)
        self.n_events = 0
        self.reached: dict[str, float] = {}  # per network, the sparsity the last event cut it to (see target)
        self.cut_scale = 1.0  # set by a guard: the share of the scheduled cut that the next event makes
        self.stopped = False  # set by a guard: no more events, and no more regularizing
        self.held = False  # set by a guard while the return recovers from a cut: no regularizing meanwhile
        self.log_dir: Path | None = None  # the run's log directory, set by the driver: a method's own logs go below it

    # -- lifecycle ---------------------------------------------------------------------------------

    def start_from(self) -> str | None:
        """
        A run directory whose trained agent this run starts from, or ``None`` to train from scratch.

        The earlier run stands for the first ``begin`` of this run's training: the run loads its agent, then trains
        from ``begin`` to the end of the budget (e.g. PuRL pruning an agent trained before).

        :return: The run directory, or ``None``.
        """
        return None

    def check(self, nets: Sequence[PrunableNet]) -> None:  # noqa: B027 (an optional hook)
        """
        Refuse networks the configuration cannot prune as asked, before training starts.

        :param nets: The networks as built.
        :raises ValueError: One line saying what is wrong and what is allowed.
        """

    def architecture(self, dense: Sequence[PrunableNet]) -> dict[str, list[int]] | None:
        """
        Hidden widths to build the networks with instead of the configured ones (``scratch``), or ``None``.

        :param dense: The networks as configured.
        :return: ``{net name: [width per hidden layer]}``, or ``None`` to keep them.
        """
        return None

    def setup(
        self,
        nets: Sequence[PrunableNet],
        optimizers: Sequence[torch.optim.Optimizer] = (),
        masks: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """
        Attach to the networks to prune.

        :param nets: The prunable networks, deployed network first.
        :param optimizers: The optimizers training them (their state is masked with the weights).
        :param masks: Masks to start from, as returned by :meth:`masks` (e.g. to continue a pruned run).
        """
        self.nets = list(nets)
        self.optimizers = list(optimizers)
        for net in self.nets:
            self.schedules[net.name] = SCHEDULES[self.cfg.schedule](self.final_sparsity(net), self.cfg.begin, self.cfg.end)
        self._setup(masks or {})

    def _setup(self, masks: dict[str, torch.Tensor]) -> None:  # noqa: B027 (an optional hook)
        """Build the method's masks and state once :attr:`nets` are known."""

    def start(self) -> None:  # noqa: B027 (an optional hook)
        """Install what acts during training (optimizer or gradient hooks), at the start of a ``learn()`` call."""

    def close(self) -> None:  # noqa: B027 (an optional hook)
        """Remove what :meth:`start` installed, at the end of a ``learn()`` call."""

    # -- the training loop -------------------------------------------------------------------------

    def final_sparsity(self, net: PrunableNet) -> float:
        """:return: The sparsity ``net`` reaches at ``end`` (under ``auto``, every layer at ``min_neurons``)."""
        if net.role != "policy":
            return self.cfg.value_sparsity
        return AUTO_CEILING if self.cfg.sparsity == AUTO else float(self.cfg.sparsity)

    def target(self, net: PrunableNet, progress: float) -> float:
        """
        The sparsity an event at ``progress`` cuts ``net`` to: :attr:`cut_scale` of the way from where the last event
        left it to its schedule (all the way unless a guard asked for less).

        :param net: One of the networks.
        :param progress: Fraction of training done.
        :return: ``s_last + cut_scale * (s(progress) - s_last)``.
        """
        last = self.reached.get(net.name, 0.0)
        return last + self.cut_scale * max(self.schedules[net.name](progress) - last, 0.0)

    def listening(self, progress: float) -> bool:
        """:return: Whether the states seen now may feed the next event (pooled probe windows)."""
        return self.cfg.begin - self.cfg.interval <= progress and self.last_event < self.cfg.end

    def due(self, progress: float) -> bool:
        """:return: Whether a pruning event is due at ``progress``."""
        cfg = self.cfg
        if self.stopped or progress < cfg.begin or self.last_event >= cfg.end:
            return False
        return progress - self.last_event >= cfg.interval or progress >= cfg.end

    def regularize(self, progress: float) -> None:  # noqa: B027 (an optional hook)
        """
        Act on the weights between gradient phases (a no-op unless the method regularizes).

        :param progress: Fraction of training done.
        """

    def step(self, progress: float, probe: ProbeFn) -> None:
        """
        One pruning event.

        :param progress: Fraction of training done (selects the scheduled sparsity).
        :param probe: Runs the networks on recent states.
        """
        targets = {net.name: self.target(net, progress) for net in self.nets}
        self.prune(progress, probe)
        self.reached.update(targets)
        self.last_event = progress
        self.n_events += 1

    @abstractmethod
    def prune(self, progress: float, probe: ProbeFn) -> None:
        """
        Cut the networks to their scheduled sparsity at ``progress``; pruned weights stay pruned.

        :param progress: Fraction of training done.
        :param probe: Runs the networks on recent states.
        """

    def absorb_dead_(self) -> int:
        """
        Remove for good what something other than a cut removed (a method with neuron masks overrides this).

        :return: How many neurons were absorbed (0 here).
        """
        return 0

    def alive_neurons(self, net: PrunableNet) -> list[torch.Tensor]:
        """
        Which neurons of ``net`` are alive, for a method that :attr:`shrinks`.

        :param net: One of the networks.
        :return: Boolean masks per hidden layer, over the neurons the layer holds now, ``(n_neurons,)``.
        """
        raise ValueError(f"pruning={self.cfg.name} cannot shrink networks: it does not remove whole neurons for good")

    def shrink_(
        self, keeps: dict[str, list[torch.Tensor]], activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu
    ) -> None:
        """
        Rebuild the networks narrower, keeping only the ``keeps`` neurons, and narrow the method's state with them.

        Parameters keep their identity (their data, gradients and optimizer state are sliced), so training carries on
        as the masked run would, up to floating-point rounding. A kept neuron may be dead (padding).

        :param keeps: ``{net name: [keep mask per hidden layer]}``; every removed neuron must be dead.
        :param activation: The networks' hidden activation.
        """
        raise ValueError(f"pruning={self.cfg.name} cannot shrink networks: it does not remove whole neurons for good")

    # -- results -----------------------------------------------------------------------------------

    @abstractmethod
    def masks(self) -> dict[str, torch.Tensor]:
        """:return: ``{name: alive}`` boolean CPU tensors (per neuron for structured methods, per weight otherwise)."""

    @abstractmethod
    def stats(self) -> dict[str, dict[str, Any]]:
        """
        :return: Per network: ``role, neurons, alive_neurons, neuron_sparsity, weights, compact_weights,
            weight_sparsity, alive_per_layer``, and any method-specific values. ``compact_weights`` are the
            weights a compact copy keeps (alive inputs x alive outputs of every Linear layer for structured
            methods; the unpruned entries for unstructured ones).
        """

    def scalars(self) -> dict[str, float]:
        """:return: Method-specific TensorBoard scalars (``prune/...`` tags), logged with the stats."""
        return {}

    def summary(self) -> dict[str, Any]:
        """:return: Method-specific figures for ``results.json`` (e.g. the time spent distilling)."""
        return {}

    # -- persistence -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """
        :return: Everything needed to continue: masks, schedule position, random state, the method's own, and which
            dense neurons each hidden layer holds (``index``, ``dense``: they differ from the built ones once shrunk).
        """
        layers = [layer for net in self.nets for layer in net.layers]
        return {
            "masks": self.masks(),
            "last_event": self.last_event,
            "n_events": self.n_events,
            "reached": dict(self.reached),
            "stopped": self.stopped,
            "held": self.held,
            "generator": self.generator.get_state(),
            "index": {layer.name: layer.index.clone() for layer in layers},
            "dense": {layer.name: layer.dense for layer in layers},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """
        Continue from :meth:`state_dict` (after :meth:`setup` on networks of the same shape: shrunk ones too).

        :param state: The saved state.
        """
        for net in self.nets:
            for layer in net.layers:
                index = state.get("index", {}).get(layer.name)
                if index is None:
                    continue
                if len(index) != layer.n_neurons:
                    raise ValueError(f"{layer.name}: the state holds {len(index)} neurons, the network {layer.n_neurons}")
                for copy in [layer, *layer.mirrors]:
                    copy.index, copy.dense = index.clone(), int(state["dense"][layer.name])
        self._setup(state["masks"])
        self.last_event = float(state["last_event"])
        self.n_events = int(state["n_events"])
        last = self.last_event  # a state from before the guard: every event cut to its schedule
        self.reached = dict(state.get("reached", {n: s(last) for n, s in self.schedules.items()} if last >= 0 else {}))
        self.stopped = bool(state.get("stopped", False))
        self.held = bool(state.get("held", False))
        self.generator.set_state(state["generator"])


def net_stats(net: PrunableNet, alive_neurons: Sequence[int], compact_weights: int, weights: int) -> dict[str, Any]:
    """
    The stats fields every method reports for one network.

    :param net: The network.
    :param alive_neurons: Alive neurons per hidden layer.
    :param compact_weights: Weights kept.
    :param weights: Weights of the dense network.
    :return: ``role, neurons, alive_neurons, neuron_sparsity, weights, compact_weights, weight_sparsity,
        alive_per_layer``.
    """
    n_alive = sum(alive_neurons)
    return {
        "role": net.role,
        "neurons": net.n_neurons,
        "alive_neurons": n_alive,
        "neuron_sparsity": 1.0 - n_alive / max(net.n_neurons, 1),
        "weights": weights,
        "compact_weights": compact_weights,
        "weight_sparsity": 1.0 - compact_weights / max(weights, 1),
        "alive_per_layer": {la.name: int(n) for la, n in zip(net.layers, alive_neurons, strict=True)},
    }
