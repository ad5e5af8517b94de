"""One SB3 callback that drives any :class:`prune_rl.methods.Pruner` while an agent trains."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback

from prune_rl.methods import AUTO, Pruner
from prune_rl.sb3.guard import CutGuard
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

    With ``pruning.guard`` (the default), each event's cut goes through :class:`prune_rl.sb3.guard.CutGuard`: kept,
    made smaller or undone by what it does to the policy, and held back while the training return recovers.

    With ``pruning.shrink``, the networks are rebuilt narrower right after every cut (:meth:`Pruner.shrink_`), and
    the model's ``policy_kwargs.net_arch`` follows, so that a saved model loads at its new widths.

    TensorBoard (``prune/`` tags): per network ``neuron_sparsity``, ``weight_sparsity``, ``width`` (the neurons it
    holds now) and the method's own numbers (``threshold``, ``penalty``, ...), per hidden layer ``alive/<layer>``,
    the method's scalars, ``events``, ``fps``, the training steps per second since the previous record, and the
    guard's ``guard/...`` (events kept, reduced, rejected, deferred; the last cut's scale and behaviour change).

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
        self.guard: CutGuard | None = None
        self._guard_state: dict[str, Any] | None = None  # a resumed run's guard state, loaded when the guard is built
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
        if self.pruner.cfg.guard and (self.guard is None or self.guard.model is not self.model):
            self.guard = CutGuard(self.model, self.pruner, self.pruner.cfg.tolerance)
            if self._guard_state is not None:
                self.guard.load_state_dict(self._guard_state)
                self._guard_state = None
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
        if self.guard is not None:
            for info in self.locals.get("infos", ()):
                episode = info.get("episode")
                if episode is not None:  # Monitor's record of a finished training episode
                    self.guard.observe(float(episode["r"]))
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
        if self.progress >= 1.0 and self.pruner.absorb_dead_() and self.pruner.cfg.shrink:
            self._shrink()  # the run is over: what the regularizer zeroed since the last event leaves for good too
        self.pruner.close()
        self._record()
        self.logger.dump(self.num_timesteps)

    def _catch_up(self) -> None:
        """Regularize up to now and run the event captured at the last rollout end, if any."""
        start = time.perf_counter()
        self.pruner.regularize(self.progress)
        if self._pending is not None:
            assert self.probe is not None
            progress, self._pending = self._pending, None
            if self.guard is None:
                self.pruner.step(progress, self.probe)
            elif self.guard.ready(self.progress):
                guarded = time.perf_counter()
                self.guard.cut(progress, self.probe)
                self.guard.seconds += time.perf_counter() - guarded
            else:  # deferred: the next due rollout tries again, with the states pooled until then
                self.prune_seconds += time.perf_counter() - start
                return
            self.probe.reset()
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
        if self.guard is not None:
            for tag, value in self.guard.scalars().items():
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
            "guard": self.guard.state_dict() if self.guard is not None else self._guard_state,
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
        self._guard_state = state.get("guard")
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

    def guard_results(self) -> dict[str, Any] | None:
        """
        :return: The guard's decisions (:meth:`CutGuard.results`), the sparsity reached and asked for (the deployed
            network's, in the method's units: neurons, or weights for unstructured methods), and ``short``: one line
            saying why pruning stopped short of a fixed target or where ``auto`` stopped (``None`` if it was reached).
        """
        if self.guard is None or not self.pruner.nets:
            return None
        deployed = self.pruner.nets[0]
        reached, target = self.pruner.reached.get(deployed.name, 0.0), self.pruner.final_sparsity(deployed)
        stats = self.pruner.stats()[deployed.name]
        removed = f"{stats['neuron_sparsity']:.1%} of its neurons removed ({stats['weight_sparsity']:.1%} of weights)"
        where = f"{deployed.name} at {removed}"
        why = self.guard.stopped or "the schedule ended"
        if self.pruner.cfg.sparsity == AUTO:
            short: str | None = f"sparsity=auto stopped with {where}: {why}"
        elif reached < target - 1e-9:
            short = f"{where}, short of pruning.sparsity={self.pruner.cfg.sparsity}: {why}"
        else:
            short = None
        return {**self.guard.results(), "reached": reached, "target": self.pruner.cfg.sparsity, "short": short}

    def results(self) -> dict[str, Any]:
        """:return: The pruning fields of ``results.json``: method, events, seconds, the guard, sparsity per network."""
        return {
            "guard": self.guard_results(),
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
