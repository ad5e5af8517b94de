"""SB3 callbacks that prune networks while they train."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback

from prune_rl.config import PruningConfig
from prune_rl.pruning import (
    IMPORTANCES,
    SCHEDULES,
    FanInLR,
    GroupLasso,
    NeuronMask,
    PrunableNet,
    Sparsity,
    compact_weight_count,
    cut_share,
    distill_,
    fan_in_scales,
    fold_,
    layer_quota,
    select_alive,
)
from prune_rl.pruning.importance import probe_activations
from prune_rl.sb3.networks import Probe, optimizers, prunable_nets


class DynamicPruningCallback(BaseCallback):
    """
    Dynamic structured pruning of hidden neurons while an SB3 agent trains.

    Two mechanisms act on every prunable network (see ``docs/method.md``):

    - an importance-weighted group lasso over neuron groups, applied as proximal steps between rollouts
      (off the per-step hot path; SB3 is not forked) from ``regularizer.begin`` to ``regularizer.end``. Step
      sizes add up to 1 over that window, so ``regularizer.strength`` is the total shrinkage of the group norm of
      an average-importance neuron, whatever the algorithm or its step count;
    - binary neuron masks whose threshold is recomputed every ``interval`` of training between ``begin`` and
      ``end``, from the importance of the neurons on recent states, so that the network's neuron sparsity
      follows ``schedule`` to ``sparsity`` (``value_sparsity`` for value/critic networks).

    Both act at the start of a rollout, after the previous gradient phase: changing the policy between
    collecting a rollout and training on it would make PPO's stored log-probabilities stale. The states that
    score importance are captured at the end of the previous rollout. Calling ``learn()`` again with the same
    callback keeps its masks and starts a new schedule over the new call.

    With ``distill_steps > 0`` every cut is followed by that many full-batch Adam steps that fit the networks back
    to their outputs before the cut on the same states (:func:`prune_rl.pruning.distill_`).

    With ``fan_in_lr > 0`` the optimizer updates of layers fed by pruned layers are scaled up as their inputs
    are removed (:class:`prune_rl.pruning.FanInLR`, the one part that acts on every gradient step).

    Method after "Compressing Deep Reinforcement Learning Networks with a Dynamic Structured Pruning Method
    for Autonomous Driving" (Su et al., arXiv 2402.05146).

    :param cfg: The pruning configuration.
    :param masks: Masks to start from (``{layer_name: alive}``, as written by :meth:`save_masks`), e.g. to
        continue training a pruned model.
    :param verbose: Verbosity level.
    """

    def __init__(self, cfg: PruningConfig, masks: dict[str, torch.Tensor] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.cfg = cfg
        self.initial_masks = masks or {}
        self.nets: list[PrunableNet] = []
        self.masks: dict[str, NeuronMask] = {}
        self.lassos: dict[str, GroupLasso] = {}
        self.schedules: dict[str, Sparsity] = {}
        self.thresholds: dict[str, float] = {}
        self.cut_shares: dict[str, float] = {}  # group-norm share removed by each network's last cut
        self.distill_losses: tuple[float, float] | None = None  # output loss of the last cut, before/after distill
        self.anchor_keep: dict[str, list[int] | None] = {}  # per layer, for regularizer.anchor=keep
        self.fan_in_lrs: list[FanInLR] = []
        self.n_events = 0
        self.prune_seconds = 0.0  # wall time of pruning events (scoring, cuts, folds, distillation) ...
        self.distill_seconds = 0.0  # ... of which distillation
        self._last_event = -1.0
        self._reg_done = 0.0  # progress up to which the regularizer has been applied
        self._pending: float | None = None  # progress of a pruning event due at the next rollout start

    # -- setup -------------------------------------------------------------------------------------

    def _init_callback(self) -> None:
        cfg = self.cfg
        # A new learn() call restarts the schedule over that call; masks carry over.
        self._last_event, self._reg_done, self._pending = -1.0, 0.0, None
        self.initial_masks = {**self.initial_masks, **self.mask_state()}
        self.nets = prunable_nets(self.model)
        self.optimizers = optimizers(self.model)
        self.probe = Probe(self.model, cfg.probe_size, cfg.probe_window, seed=self.model.seed or 0)
        self.importance = IMPORTANCES[cfg.importance]
        for net in self.nets:
            policy = net.role == "policy"
            final = cfg.sparsity if policy else cfg.value_sparsity
            self.schedules[net.name] = SCHEDULES[cfg.schedule](final, cfg.begin, cfg.end)
            keep = [layer_quota(final, la.n_neurons, cfg.min_neurons) for la in net.layers]
            self.anchor_keep[net.name] = keep if cfg.regularizer.anchor == "keep" else None
            strength = cfg.regularizer.strength if policy else cfg.regularizer.value_strength
            self.lassos[net.name] = GroupLasso(net.layers, strength, cfg.regularizer.gamma, cfg.regularizer.max_weight)
            for layer in net.layers:
                self.masks[layer.name] = NeuronMask(layer, self.initial_masks.get(layer.name))
            self.thresholds[net.name] = 0.0
        for mask in self.masks.values():
            mask.apply_(self.optimizers)
        self.fan_in_lrs = [FanInLR(opt) for opt in self.optimizers] if cfg.fan_in_lr > 0 else []
        self._set_fan_in_scales()

    # -- training loop -----------------------------------------------------------------------------

    @property
    def progress(self) -> float:
        """:return: Fraction of the current ``learn()`` call done."""
        model = self.model
        start = model._num_timesteps_at_start
        return (model.num_timesteps - start) / max(model._total_timesteps - start, 1)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        cfg = self.cfg
        progress = self.progress
        due = progress - self._last_event >= cfg.interval or progress >= cfg.end
        if cfg.begin - cfg.interval <= progress and self._last_event < cfg.end:
            self.probe.collect()  # the pooled windows' states (a no-op for the rollout window)
        if cfg.begin <= progress and due and self._last_event < cfg.end:
            self.probe.capture()  # the rollout buffer is full now (on-policy); it is reset before the next rollout
            self._pending = progress

    def _on_rollout_start(self) -> None:
        # After the previous gradient phase, before the next rollout: the policy that collects is the one trained.
        self._catch_up()

    def _on_training_end(self) -> None:
        self._catch_up()
        for hooks in self.fan_in_lrs:  # the optimizer steps as usual outside this callback's learn() call
            hooks.remove()
        self._record()
        self.logger.dump(self.num_timesteps)

    def _catch_up(self) -> None:
        """Apply the regularizer up to now and the pruning event captured at the last rollout end, if any."""
        self.regularize(self.progress)
        if self._pending is not None:
            self.prune_step(self._pending)
            self._pending = None

    # -- regularizer and pruning -------------------------------------------------------------------

    def regularize(self, progress: float, min_step: float = 1e-3) -> None:
        """
        Apply the proximal step for the part of the regularizer window covered since the last call.

        :param progress: Fraction of training done.
        :param min_step: Skip (and accumulate) steps covering less than this fraction of training, so that
            algorithms with a rollout per env step (SAC, TD3) do not pay for it every step.
        """
        reg = self.cfg.regularizer
        start, stop = max(self._reg_done, reg.begin), min(progress, reg.end)
        if stop - start < min_step and not (stop >= reg.end > start):
            return
        step = (stop - start) / (reg.end - reg.begin)
        for lasso in self.lassos.values():
            lasso.prox_(step)
        self._reg_done = stop

    def prune_step(self, progress: float) -> None:
        """
        Score neurons, recompute each network's threshold and masks, and update the importance weights.

        :param progress: Fraction of training done (selects the scheduled sparsity).
        """
        layers = [layer for net in self.nets for layer in net.layers]
        if not layers:
            return
        start = time.perf_counter()
        was_training = self.model.policy.training
        self.model.policy.set_training_mode(False)
        names = [la.name for la in layers]
        scores = dict(zip(names, self.importance(layers, self.probe), strict=True))
        compensate, acts = self.cfg.compensate, {}
        if compensate != "none":
            acts = dict(zip(names, probe_activations(layers, self.probe, "compensation"), strict=True))
        targets = [out.detach() for out in self.probe()] if self.cfg.distill_steps > 0 else None
        self.model.policy.set_training_mode(was_training)
        changed = False
        for net in self.nets:
            alive = [self.masks[la.name].alive for la in net.layers]
            net_scores = [scores[la.name] for la in net.layers]
            target = self.schedules[net.name](progress)
            new_alive, tau = select_alive(net_scores, alive, target, self.cfg.min_neurons, self.cfg.allocation)
            if tau is not None:
                self.thresholds[net.name] = tau
                self.cut_shares[net.name] = cut_share(net.layers, alive, new_alive)
            for layer, keep in zip(net.layers, new_alive, strict=True):
                mask = self.masks[layer.name]
                if not torch.equal(keep, mask.alive):
                    if compensate != "none":
                        fold_(compensate, layer, keep, mask.alive & ~keep, acts[layer.name])
                    mask.alive = keep
                    mask.apply_(self.optimizers)
                    changed = True
            self.lassos[net.name].set_importance(net_scores, new_alive, self.anchor_keep[net.name])
        if targets is not None and changed:
            self.model.policy.set_training_mode(False)
            params = [p for net in self.nets for p in net.parameters()]
            cfg = self.cfg
            distill_start = time.perf_counter()
            self.distill_losses = distill_(params, self.probe, targets, self.masks.values(), cfg.distill_steps, cfg.distill_lr)
            self.distill_seconds += time.perf_counter() - distill_start
            self.model.policy.set_training_mode(was_training)
        self._set_fan_in_scales()
        self.probe.reset()
        self._last_event = progress
        self.n_events += 1
        self.prune_seconds += time.perf_counter() - start
        self._record()

    def _set_fan_in_scales(self) -> None:
        if not self.fan_in_lrs:
            return
        scales: dict[torch.Tensor, float] = {}
        for net in self.nets:
            scales.update(fan_in_scales(net.layers, [self.masks[la.name].alive for la in net.layers], self.cfg.fan_in_lr))
        for hooks in self.fan_in_lrs:
            hooks.set_scales(scales)

    def stats(self) -> dict[str, dict[str, Any]]:
        """
        Sparsity of every network.

        :return: ``{net: {role, neurons, alive_neurons, neuron_sparsity, weights, compact_weights,
            weight_sparsity, threshold, penalty, alive_per_layer}}``.
        """
        out = {}
        for net in self.nets:
            alive = [self.masks[la.name].alive for la in net.layers]
            n_alive = sum(int(a.sum()) for a in alive)
            dense, compact = compact_weight_count(net), compact_weight_count(net, alive)
            with torch.no_grad():
                penalty = float(self.lassos[net.name].penalty()) if net.layers else 0.0
            out[net.name] = {
                "role": net.role,
                "neurons": net.n_neurons,
                "alive_neurons": n_alive,
                "neuron_sparsity": 1.0 - n_alive / max(net.n_neurons, 1),
                "weights": dense,
                "compact_weights": compact,
                "weight_sparsity": 1.0 - compact / max(dense, 1),
                "threshold": self.thresholds[net.name],
                "penalty": penalty,
                "alive_per_layer": {la.name: int(a.sum()) for la, a in zip(net.layers, alive, strict=True)},
            }
        return out

    def _record(self) -> None:
        for name, s in self.stats().items():
            for key in ("neuron_sparsity", "weight_sparsity", "threshold", "penalty"):
                self.logger.record(f"prune/{key}/{name}", s[key])
            for layer, n in s["alive_per_layer"].items():
                self.logger.record(f"prune/alive/{layer}", n)
        for name, share in self.cut_shares.items():
            self.logger.record(f"prune/cut_share/{name}", share)
        if self.distill_losses is not None:
            self.logger.record("prune/distill_loss_before", self.distill_losses[0])
            self.logger.record("prune/distill_loss_after", self.distill_losses[1])
        self.logger.record("prune/events", self.n_events)

    # -- persistence -------------------------------------------------------------------------------

    def mask_state(self) -> dict[str, torch.Tensor]:
        """:return: ``{layer_name: alive}`` for every hidden layer (CPU tensors)."""
        return {name: mask.alive.cpu().clone() for name, mask in self.masks.items()}

    def save_masks(self, path: str | Path) -> None:
        """
        Write the masks with ``torch.save``.

        :param path: File to write (``masks.pt`` in a run directory).
        """
        torch.save(self.mask_state(), path)


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    """
    Read masks written by :meth:`DynamicPruningCallback.save_masks`.

    :param path: The file.
    :return: ``{layer_name: alive}``.
    """
    return torch.load(path, map_location="cpu", weights_only=True)
