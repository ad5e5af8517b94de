"""The guard: every pruning event's cut is tried on the policy first, and kept, made smaller or undone.

The method keeps its ranking (which neurons or weights go); the guard decides how many and when, with one budget,
``pruning.tolerance`` (``tol``):

- **How many.** Before a cut is kept, the deployed policy's deterministic actions on the probe's states are compared
  with the actions before it. The cut's *behaviour change* is, for discrete actions, the share of the action gap it
  gives up, by the network's own scores before the cut (Q-values, or logits): a changed action costs what the policy
  thought it worth, so flipping between near-tied actions costs next to nothing; for continuous actions, the share of
  the actions' variance over the states that the cut loses::

      discrete:   change = mean_s [q(s, a(s)) - q(s, a'(s))] / mean_s [max_a q(s, a) - min_a q(s, a)]
      continuous: change = mean_s ||a'(s) - a(s)||^2 / mean_s ||a(s) - mean_s a(s)||^2

  A cut that changes more than ``tol`` is undone and halved (a ``cut_scale`` of 1, 1/2, 1/4, ... of the scheduled
  cut) until one holds, down to the smallest cut there is (one neuron, or one weight). When even that does not
  hold, the event cuts nothing and the next event tries again, an ``interval`` later, on a network trained further:
  a cut the policy cannot absorb now may hold once training has moved its work onto other neurons. A rejection at
  or after the schedule's ``end`` stops pruning, and the run says so.
- **When.** After a kept cut, the next one waits until the training return (the episodes SB3's ``Monitor`` records)
  has recovered: the mean of the latest episodes finished since the cut (up to 100) must be within ``tol * scale`` of
  the mean of as many episodes before it, where ``scale`` is that level, or the range of the returns seen so far once
  any was negative. While it waits, nothing else is removed either (the method's regularizer pauses:
  :attr:`Pruner.held`). A wait still unfinished one ``interval`` after the schedule's ``end`` stops pruning.

A cut that is not kept never touched the run: the guard snapshots the networks (targets included), the optimizers'
state, the pruner's state and the random generators before trying, and restores them exactly. The probe's states are
sampled before the snapshot. Pruning stopped by the guard also stops the method's regularizer (:attr:`Pruner.stopped`),
so the network holds where the guard left it.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from prune_rl.methods import Pruner
from prune_rl.sb3.probe import Probe

MAX_HALVINGS = 16  # a cut that changes too much is halved until it removes nothing more (this many times at most)
MIN_EPISODES = 3  # episodes since a cut before its return is judged
WINDOW = 100  # episodes of each side of a cut compared at most (SB3's stats window)
OUTCOMES = ("kept", "reduced", "rejected")


def behaviour_change(before: torch.Tensor, after: torch.Tensor, scores: torch.Tensor | None = None) -> float:
    """
    How much a cut changes a policy's deterministic actions on a batch of states.

    :param before: ``(n,)`` action indices, or ``(n, action_dim)`` continuous actions, before the cut.
    :param after: The same after it.
    :param scores: Discrete: the network's ``(n, n_actions)`` scores before the cut (Q-values or logits), whose
        argmax is ``before``; without them, every changed action costs the same.
    :return: Discrete: the share of the action gap given up, ``mean [q(a) - q(a')] / mean [max q - min q]``, or the
        share of states whose action changed. Continuous: the share of the actions' variance over the states lost,
        ``mean ||a' - a||^2 / mean ||a - mean a||^2``. 0: unchanged.
    """
    if not before.dtype.is_floating_point:
        if scores is None or scores.shape != (len(before), int(scores.shape[-1])) or scores.shape[-1] < 2:
            return float((before != after).float().mean())
        scores = scores.double()
        rows = torch.arange(len(before))
        given_up = scores[rows, before] - scores[rows, after]
        gap = scores.max(dim=-1).values - scores.min(dim=-1).values
        return float(given_up.mean() / gap.mean().clamp_min(1e-12))
    before, after = before.double(), after.double()
    error = (after - before).pow(2).sum(dim=-1).mean()
    spread = (before - before.mean(dim=0)).pow(2).sum(dim=-1).mean()
    return float(error / spread.clamp_min(1e-12))


def _copy(state: Any) -> dict[Any, dict[str, Any]]:
    """:return: A copy of an optimizer's per-parameter state, its tensors cloned."""
    return {p: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()} for p, s in state.items()}


class Snapshot:
    """
    Everything a trial cut may change, to undo it exactly: the policy's parameters and buffers (every network and
    target), the optimizers' state, the pruner's state and the global random generators.

    :param model: The SB3 model.
    :param pruner: The pruner (its optimizers are the model's).
    """

    def __init__(self, model: BaseAlgorithm, pruner: Pruner) -> None:
        self.model, self.pruner = model, pruner
        self.params = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
        self.optimizers = [_copy(opt.state) for opt in pruner.optimizers]
        self.pruner_state = pruner.state_dict()
        self.rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())

    def restore(self) -> None:
        """Put everything back as it was when the snapshot was taken."""
        self.pruner.load_state_dict(self.pruner_state)  # first: it re-applies the old masks to the trial's weights
        self.model.policy.load_state_dict(self.params)
        for opt, saved in zip(self.pruner.optimizers, self.optimizers, strict=True):
            opt.state.clear()
            opt.state.update(_copy(saved))
        torch.set_rng_state(self.rng[0])
        np.random.set_state(self.rng[1])
        random.setstate(self.rng[2])


@dataclass
class Decision:
    """
    One guarded event: what was tried and what was kept.

    :param progress: Fraction of training at the event.
    :param outcome: ``kept`` (the whole scheduled cut), ``reduced`` (a smaller one) or ``rejected`` (none).
    :param cut_scale: Share of the scheduled cut kept (0 when rejected).
    :param change: Behaviour change of the cut kept, or of the smallest one tried when rejected.
    :param tries: Cuts tried.
    """

    progress: float
    outcome: str
    cut_scale: float
    change: float
    tries: int


class CutGuard:
    """
    Tries each event's cut on the policy's behaviour and holds the next cut until the training return has recovered.

    :param model: The SB3 model.
    :param pruner: The pruner it guards.
    :param tolerance: The budget (``pruning.tolerance``): behaviour change per cut, and return drop between cuts.
    """

    def __init__(self, model: BaseAlgorithm, pruner: Pruner, tolerance: float) -> None:
        self.model, self.pruner, self.tolerance = model, pruner, tolerance
        self.decisions: list[Decision] = []
        self.deferred = 0  # events that waited for the return to recover
        self.stopped: str | None = None  # why pruning stopped before the schedule's end, if it did
        self.before: list[float] = []  # returns of the episodes before the last kept cut (at most WINDOW)
        self.since: deque[float] = deque(maxlen=WINDOW)  # returns of the latest episodes finished since the last kept cut
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self.low, self.high = float("inf"), -float("inf")  # the range of every return seen
        self.waiting = False  # the pending event has been deferred at least once
        self.seconds = 0.0

    # -- the return ------------------------------------------------------------------------------------

    def observe(self, episode_return: float) -> None:
        """
        Record a training episode's return.

        :param episode_return: The return ``Monitor`` reported.
        """
        self.recent.append(episode_return)
        self.since.append(episode_return)
        self.low, self.high = min(self.low, episode_return), max(self.high, episode_return)

    def allowed_drop(self, level: float) -> float:
        """:return: ``tolerance`` times the return's level, or its range once any return was negative."""
        scale = self.high - self.low if self.low < 0 else abs(level)
        return self.tolerance * scale

    def recovered(self) -> bool:
        """
        :return: Whether the return has come back since the last kept cut: at least :data:`MIN_EPISODES` episodes
            since it, whose mean is within :meth:`allowed_drop` of the mean of as many episodes before it.
        """
        if not self.before:  # no cut yet, or none with episodes before it
            return True
        if len(self.since) < MIN_EPISODES:
            return False
        level = float(np.mean(self.before[-len(self.since) :]))
        return float(np.mean(self.since)) >= level - self.allowed_drop(level)

    def ready(self, progress: float) -> bool:
        """
        Whether a due event may cut now; counts an event's first wait, and stops pruning when the wait outlasts the
        schedule.

        :param progress: Fraction of training done.
        :return: ``True`` to cut now.
        """
        if self.recovered():
            self.waiting = self.pruner.held = False
            return True
        self.pruner.held = True  # nothing more is removed while the return recovers: the regularizer waits too
        if not self.waiting:
            self.deferred += 1
            self.waiting = True
        cfg = self.pruner.cfg
        if progress > cfg.end + cfg.interval:
            self.stop(f"the return had not recovered from the cut at {self.last_cut:.0%} of training by the schedule's end")
        return False

    @property
    def last_cut(self) -> float:
        """:return: Progress of the last cut kept (0 if none)."""
        kept = [d.progress for d in self.decisions if d.outcome != "rejected"]
        return kept[-1] if kept else 0.0

    def stop(self, reason: str) -> None:
        """Stop pruning (and the method's regularizer) for the rest of the run, saying why."""
        self.stopped = reason
        self.pruner.stopped, self.pruner.held = True, False

    # -- the cut -----------------------------------------------------------------------------------------

    def cut(self, progress: float, probe: Probe) -> Decision | None:
        """
        Run one event: try the scheduled cut, halve it while it changes the policy more than the tolerance, keep the
        first that holds, or undo them all (and stop, if the schedule has ended).

        :param progress: Fraction of training done.
        :param probe: The probe, with its states captured.
        :return: The decision, or ``None`` if the event cut nothing (nothing was scheduled, or the method has no cut).
        """
        pruner = self.pruner
        before = probe.actions()  # samples the probe's states first: the snapshot comes after
        with torch.no_grad():
            scores = probe()[0] if not before.dtype.is_floating_point else None  # Q-values or logits
        masks = pruner.masks()
        snapshot = Snapshot(self.model, pruner)
        tries = 1 + (MAX_HALVINGS if pruner.scales_cut else 0)
        scale, change, tried, decision = 1.0, 0.0, 0, None
        smallest = None  # units (neurons or weights) the last cut tried removed
        for i in range(tries):
            pruner.cut_scale = scale
            pruner.step(progress, probe)
            pruner.cut_scale = 1.0
            removed = sum(int((masks[name] & ~alive).sum()) for name, alive in pruner.masks().items())
            if removed == 0 and i == 0:
                return None  # nothing was scheduled: the event stands, as an empty one
            if smallest is not None and not 0 < removed < smallest:
                snapshot.restore()  # halving no longer makes the cut smaller (or empties it): the smallest was tried
                break
            smallest, tried = removed, tried + 1
            change = behaviour_change(before, probe.actions(), scores)
            if change <= self.tolerance:
                decision = Decision(progress, "kept" if i == 0 else "reduced", scale, change, tried)
                break
            snapshot.restore()
            scale /= 2
        if decision is None:
            decision = Decision(progress, "rejected", 0.0, change, tried)
            pruner.last_event = progress  # the event is spent: the next one comes an interval later
            if progress >= pruner.cfg.end:
                self.stop(
                    f"no cut held at the schedule's end ({progress:.0%} of training): the smallest tried changed "
                    f"{change:.1%} of the policy's behaviour (tolerance {self.tolerance:.0%})"
                )
        self.decisions.append(decision)
        if decision.outcome != "rejected":
            self.before, self.since = list(self.recent), deque(maxlen=WINDOW)
        return decision

    # -- results --------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """:return: Events ``kept``, ``reduced``, ``rejected`` and ``deferred``."""
        out = {outcome: sum(d.outcome == outcome for d in self.decisions) for outcome in OUTCOMES}
        return {**out, "deferred": self.deferred}

    def scalars(self) -> dict[str, float]:
        """:return: ``prune/guard/...``: the counts, the last decision's cut scale and change, and whether it stopped."""
        out: dict[str, float] = {f"prune/guard/{k}": v for k, v in self.counts().items()}
        if self.decisions:
            out["prune/guard/cut_scale"] = self.decisions[-1].cut_scale
            out["prune/guard/change"] = self.decisions[-1].change
        out["prune/guard/stopped"] = float(self.stopped is not None)
        return out

    def results(self) -> dict[str, Any]:
        """:return: ``tolerance``, the counts, ``stopped`` (why, or ``None``), ``seconds`` and every decision."""
        return {
            "tolerance": self.tolerance,
            **self.counts(),
            "stopped": self.stopped,
            "seconds": self.seconds,
            "decisions": [vars(d) for d in self.decisions],
        }

    def state_dict(self) -> dict[str, Any]:
        """:return: Everything a resumed run needs to guard as this one would have."""
        return {
            "decisions": [vars(d) for d in self.decisions],
            "deferred": self.deferred,
            "stopped": self.stopped,
            "before": list(self.before),
            "since": list(self.since),
            "recent": list(self.recent),
            "range": (self.low, self.high),
            "waiting": self.waiting,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:param state: As from :meth:`state_dict`."""
        self.decisions = [Decision(**d) for d in state["decisions"]]
        self.deferred = int(state["deferred"])
        self.stopped = state["stopped"]
        self.before, self.since = list(state["before"]), deque(state["since"], maxlen=WINDOW)
        self.recent = deque(state["recent"], maxlen=WINDOW)
        self.low, self.high = state["range"]
        self.waiting = bool(state["waiting"])
        self.seconds = float(state["seconds"])
