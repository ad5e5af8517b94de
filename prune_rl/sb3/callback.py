"""One SB3 callback that drives any :class:`prune_rl.methods.Pruner` while an agent trains."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback

from prune_rl.methods import Pruner
from prune_rl.sb3.networks import activation, optimizers, prunable_nets, set_net_arch, uniform_critics
from prune_rl.sb3.probe import Probe

COMMON_STATS = ("role", "neurons", "alive_neurons", "weights", "compact_weights", "alive_per_layer")  # not logged per event


class PruningCallback(BaseCallback):
    """
    Drives a pruner from SB3's hooks: the probe of recent states, training progress, timing, TensorBoard.

    The pruner acts at the start of a rollout, after the previous gradient phase: changing the policy between
    collecting a rollout and training on it would make PPO's stored log-probabilities stale. The states an event
    scores are captured at the end of the rollout before it. Progress is ``num_timesteps / total_timesteps``, the
    run's whole budget, so a run continued with ``learn(..., reset_num_timesteps=False)`` carries on its
    schedule; without a budget, the current ``learn()`` call's total is used.

    With ``pruning.shrink``, the networks are rebuilt narrower right after every cut (:meth:`Pruner.shrink_`), and
    the model's ``policy_kwargs.net_arch`` follows, so that a saved model loads at its new widths.

    TensorBoard (``prune/`` tags): per network ``neuron_sparsity``, ``weight_sparsity``, ``width`` (the neurons it
    holds now) and the method's own numbers (``threshold``, ``penalty``, ...), per hidden layer ``alive/<layer>``,
    the method's scalars, ``events``, and ``fps``, the training steps per second since the previous record.

    :param pruner: The pruning method.
    :param total_timesteps: The run's training budget (``n_timesteps``).
    :param masks: Masks to start from (as in ``masks.pt``), e.g. to continue training a pruned model.
    :param state: A pruner state to continue from (as in ``pruner.pt``: masks, schedule position, the method's
        own state); it takes precedence over ``masks``.
    :param verbose: Verbosity level.
    """

    def __init__(
        self,
        pruner: Pruner,
        total_timesteps: int | None = None,
        masks: dict[str, torch.Tensor] | None = None,
        state: dict[str, Any] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.pruner = pruner
        self.total_timesteps = total_timesteps
        self.initial_masks = masks
        self.initial_state = state
        self.probe: Probe | None = None
        self.prune_seconds = 0.0  # wall time of pruning events and regularizer steps
        self.shrink_seconds = 0.0  # of which rebuilding the networks narrower
        self._clock: tuple[float, int] | None = None  # (time, timesteps) of the previous record, for prune/fps
        self._probe_state: dict[str, Any] | None = None  # a resumed run's probe state, loaded when the probe is built
        self._pending: float | None = None  # progress of an event due at the next rollout start

    def _init_callback(self) -> None:
        if not self.pruner.nets:  # the first learn() call
            self.pruner.log_dir = Path(self.logger.dir) if self.logger.dir else None
            self.pruner.setup(prunable_nets(self.model), optimizers(self.model), self.initial_masks)
            if self.initial_state is not None:
                self.pruner.load_state_dict(self.initial_state)
        if self.probe is None or self.probe.model is not self.model:  # kept across learn() calls: pooled windows
            cfg = self.pruner.cfg
            self.probe = Probe(self.model, cfg.probe_size, cfg.probe_window, seed=self.model.seed or 0)
            if self._probe_state is not None:
                self.probe.load_state_dict(self._probe_state)
                self._probe_state = None
        self._pending = None
        self.pruner.start()

    @property
    def progress(self) -> float:
        """:return: Fraction of the training budget done, in ``[0, 1]``."""
        total = self.total_timesteps or self.model._total_timesteps
        return min(self.model.num_timesteps / max(total, 1), 1.0)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        progress = self.progress
        assert self.probe is not None
        if self.pruner.listening(progress):
            self.probe.collect()  # the pooled windows' states (a no-op for the rollout window)
        if self.pruner.due(progress):
            # On-policy: the rollout buffer is full now and reset before the next rollout. Off-policy: sampled only
            # if the method runs the probe, so methods that do not leave the replay buffer's random stream alone.
            self.probe.capture(lazy=True)
            self._pending = progress

    def _on_rollout_start(self) -> None:
        # After the previous gradient phase, before the next rollout: the policy that collects is the one trained.
        self._catch_up()

    def _on_training_end(self) -> None:
        self._catch_up()
        self.pruner.close()
        self._record()
        self.logger.dump(self.num_timesteps)

    def _catch_up(self) -> None:
        """Regularize up to now and run the event captured at the last rollout end, if any."""
        start = time.perf_counter()
        self.pruner.regularize(self.progress)
        if self._pending is not None:
            assert self.probe is not None
            self.pruner.step(self._pending, self.probe)
            self.probe.reset()
            self._pending = None
            if self.pruner.cfg.shrink:
                self._shrink()
            self._record()
        self.prune_seconds += time.perf_counter() - start

    def _shrink(self) -> None:
        """Remove the dead neurons physically, and record the new widths in the model's ``net_arch``."""
        start = time.perf_counter()
        nets = self.pruner.nets
        keeps = uniform_critics({net.name: self.pruner.alive_neurons(net) for net in nets})
        if not all(bool(k.all()) for keep in keeps.values() for k in keep):
            self.pruner.shrink_(keeps, activation(self.model))
            set_net_arch(self.model, {net.name: [layer.n_neurons for layer in net.layers] for net in nets})
        self.shrink_seconds += time.perf_counter() - start

    def _record(self) -> None:
        now = (time.perf_counter(), self.num_timesteps)
        if self._clock is not None and now[1] > self._clock[1]:
            self.logger.record("prune/fps", (now[1] - self._clock[1]) / max(now[0] - self._clock[0], 1e-9))
        self._clock = now
        for net in self.pruner.nets:
            self.logger.record(f"prune/width/{net.name}", sum(layer.n_neurons for layer in net.layers))
        for name, stats in self.pruner.stats().items():
            for key, value in stats.items():
                if key not in COMMON_STATS and isinstance(value, int | float):
                    self.logger.record(f"prune/{key}/{name}", value)
            for layer, n in stats["alive_per_layer"].items():
                self.logger.record(f"prune/alive/{layer}", n)
        for tag, value in self.pruner.scalars().items():
            self.logger.record(tag, value)
        self.logger.record("prune/events", self.pruner.n_events)

    def state_dict(self) -> dict[str, Any]:
        """
        Everything a resumed run needs to prune as this one would have (between rollouts, when no event is pending).

        :return: The pruner's state, the probe's, and the seconds spent pruning.
        """
        return {
            "pruner": self.pruner.state_dict(),
            "probe": self.probe.state_dict() if self.probe is not None else None,
            "prune_seconds": self.prune_seconds,
            "shrink_seconds": self.shrink_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """
        Continue from :meth:`state_dict`: call before ``learn()`` (the pruner is set up when training starts).

        :param state: The saved state.
        """
        self.initial_state = state["pruner"]
        self._probe_state = state["probe"]
        self.prune_seconds = float(state["prune_seconds"])
        self.shrink_seconds = float(state["shrink_seconds"])

    def save_masks(self, path: str | Path) -> None:
        """
        Write the pruner's masks with ``torch.save``.

        :param path: File to write (``masks.pt`` in a run directory).
        """
        torch.save(self.pruner.masks(), path)

    def save_state(self, path: str | Path) -> None:
        """
        Write the pruner's ``state_dict()`` with ``torch.save`` (everything it needs to continue).

        :param path: File to write (``pruner.pt`` in a run directory).
        """
        torch.save(self.pruner.state_dict(), path)

    def results(self) -> dict[str, Any]:
        """:return: The pruning fields of ``results.json``: method, events, seconds and sparsity per network."""
        return {
            "prune_seconds": self.prune_seconds,
            "shrink_seconds": self.shrink_seconds,
            "widths": {net.name: [layer.n_neurons for layer in net.layers] for net in self.pruner.nets},
            "pruning_events": self.pruner.n_events,
            "pruning_summary": self.pruner.summary(),
            "sparsity": self.pruner.stats(),
        }


def load_state(path: str | Path) -> dict[str, Any]:
    """
    Read a pruner state written by :meth:`PruningCallback.save_state`.

    :param path: The file.
    :return: The state, for ``PruningCallback(pruner, state=...)``.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    """
    Read masks written by :meth:`PruningCallback.save_masks`.

    :param path: The file.
    :return: ``{name: alive}``.
    """
    return torch.load(path, map_location="cpu", weights_only=True)
