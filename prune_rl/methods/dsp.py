"""Dynamic structured pruning (``dsp``): an importance-weighted group lasso on hidden neurons plus neuron masks
whose threshold is recomputed from the neurons' importance during training.

Method after "Compressing Deep Reinforcement Learning Networks with a Dynamic Structured Pruning Method for
Autonomous Driving" (Su et al., arXiv 2402.05146). ``docs/method.md`` gives every formula; in short, for a
network with hidden neurons ``j`` in layers ``l`` and groups ``theta_{l,j}``:

- between gradient phases over ``[begin, end]``, the proximal step of
  ``R(theta) = lambda * sum_{l,j} w_{l,j} ||theta_{l,j}||_2`` with importance weights
  ``w_{l,j} = clip((mean_l(s) / s_{l,j}) ** gamma, 1/10, 10)``; step sizes add up to 1 over the window, so
  ``strength`` (``lambda``) is the total shrinkage of an average neuron's group norm;
- every ``interval``, the threshold ``tau`` over normalised scores ``s_{l,j} / mean_l(s)`` that keeps each
  layer's best ``1 - s(t)`` share: neurons below it are masked for good.

Optional repair steps (``repair.*``, off by default) were found while tuning the MuJoCo tasks: folding a cut
neuron's mean or least-squares estimate into the next layer, distilling the cut networks back to their outputs
before the cut, and scaling the learning rate of layers fed by narrowed ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from prune_rl.core import (
    FOLDS,
    IMPORTANCES,
    FanInLR,
    GroupLasso,
    HiddenLayer,
    PrunableNet,
    cut_share,
    distill_,
    fan_in_scales,
    fold_,
    layer_quota,
)
from prune_rl.core.importance import probe_activations
from prune_rl.config import PrunerConfig, check_choice
from prune_rl.methods.base import ProbeFn
from prune_rl.methods.structured import StructuredPruner

MAX_WEIGHT = 10.0  # importance weights are clipped to [1 / MAX_WEIGHT, MAX_WEIGHT]


@dataclass
class RepairConfig:
    """
    Steps that repair a cut (all off by default; see ``docs/method.md``, section 4).

    :param fold: What a cut neuron leaves in the layer it fed: ``none``; ``mean`` (its mean activation, into the
        next bias: mean replacement); ``linear`` (its least-squares estimate from the kept neurons, into the next
        weights and bias).
    :param distill_steps: Full-batch Adam steps after every cut that fit the networks back to their outputs before
        the cut, on the probe's states (0: off).
    :param distill_lr: Their learning rate.
    :param fan_in_lr: Multiply the updates of every layer fed by a pruned layer by ``(n / n_alive) ** fan_in_lr``
        (1: muP's Adam rule; 0: off).
    """

    fold: str = "none"
    distill_steps: int = 0
    distill_lr: float = 1e-3
    fan_in_lr: float = 0.0

    def __post_init__(self) -> None:
        check_choice("repair.fold", self.fold, FOLDS)
        if self.distill_steps < 0 or self.distill_lr <= 0:
            raise ValueError(
                f"pruning.repair: need distill_steps >= 0 and distill_lr > 0, got {self.distill_steps}, {self.distill_lr}"
            )
        if not 0.0 <= self.fan_in_lr <= 1.0:
            raise ValueError(f"pruning.repair.fan_in_lr must be in [0, 1], got {self.fan_in_lr}")


@dataclass
class DSPConfig(PrunerConfig):
    """
    Dynamic structured pruning (``conf/pruning/dsp.yaml``); the shared keys are :class:`PrunerConfig`'s.

    :param importance: Neuron score ``s``: ``activation``, ``deviation``, ``taylor``, ``magnitude`` or
        ``reconstruction`` (:mod:`prune_rl.core.importance`).
    :param strength: ``lambda`` of the group lasso on the deployed network (0: masks only).
    :param value_strength: ``lambda`` on value and critic networks.
    :param gamma: Exponent of the importance weights (0: the plain group lasso).
    :param repair: Repair steps after each cut.
    """

    importance: str = "activation"
    strength: float = 3.0
    value_strength: float = 0.0
    gamma: float = 1.0
    repair: RepairConfig = field(default_factory=RepairConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("importance", self.importance, IMPORTANCES)
        if self.strength < 0 or self.value_strength < 0:
            raise ValueError(f"pruning.strength and value_strength must be >= 0, got {self.strength}, {self.value_strength}")


class DynamicStructuredPruner(StructuredPruner):
    """
    Dynamic structured pruning: group lasso weighted by importance, and a dynamic threshold on neuron masks.

    Method after "Compressing Deep Reinforcement Learning Networks with a Dynamic Structured Pruning Method for
    Autonomous Driving" (Su et al., arXiv 2402.05146).

    :param cfg: Its configuration.
    :param seed: Seed of the pruner's generator.
    """

    config_class: ClassVar[type[PrunerConfig]] = DSPConfig
    cfg: DSPConfig

    def __init__(self, cfg: DSPConfig, seed: int = 0) -> None:
        super().__init__(cfg, seed)
        self.lassos: dict[str, GroupLasso] = {}
        self.cut_shares: dict[str, float] = {}  # group-norm share removed by each network's last cut
        self.distill_losses: tuple[float, float] | None = None  # output loss of the last cut, before / after
        self.distill_seconds = 0.0
        self.reg_done = 0.0  # progress up to which the regularizer has been applied
        self.fan_in: list[FanInLR] = []
        self._acts: dict[str, torch.Tensor] = {}

    def _setup(self, masks: dict[str, torch.Tensor]) -> None:
        super()._setup(masks)
        for net in self.nets:
            strength = self.cfg.strength if net.role == "policy" else self.cfg.value_strength
            if net.name not in self.lassos:
                self.lassos[net.name] = GroupLasso(net.layers, strength, self.cfg.gamma, MAX_WEIGHT)

    def start(self) -> None:
        """Install the fan-in learning-rate hooks (``repair.fan_in_lr > 0``)."""
        if self.cfg.repair.fan_in_lr > 0 and not self.fan_in:
            self.fan_in = [FanInLR(opt) for opt in self.optimizers]
        self._set_fan_in_scales()

    def close(self) -> None:
        """Remove the fan-in hooks: outside the driver's ``learn()`` the optimizers step as usual."""
        for hooks in self.fan_in:
            hooks.remove()
        self.fan_in = []

    # -- regularizer ---------------------------------------------------------------------------------

    def regularize(self, progress: float, min_step: float = 1e-3) -> None:
        """
        Apply the proximal step for the part of ``[begin, end]`` covered since the last call.

        :param progress: Fraction of training done.
        :param min_step: Skip (and accumulate) steps covering less than this fraction of training, so that
            algorithms with a rollout per env step (SAC, TD3) do not pay for it every step.
        """
        begin, end = self.cfg.begin, self.cfg.end
        start, stop = max(self.reg_done, begin), min(progress, end)
        if self.stopped or self.held:  # a guard stopped pruning, or waits for the return: that stretch is skipped
            self.reg_done = max(self.reg_done, stop)
            return
        if stop - start < min_step and not (stop >= end > start):
            return
        for net in self.nets:
            # Neurons leave through the (guarded) cuts: the regularizer drives groups towards zero, but never leaves a
            # layer with fewer nonzero groups than the last cut's target keeps (min_neurons included).
            lasso, reached = self.lassos[net.name], self.reached.get(net.name, 0.0)
            lasso.floors = [layer_quota(reached, layer.dense, self.cfg.min_neurons) for layer in net.layers]
            lasso.prox_((stop - start) / (end - begin))
        self.reg_done = stop

    # -- cuts ------------------------------------------------------------------------------------------

    def score(self, layers: list[HiddenLayer], probe: ProbeFn) -> list[torch.Tensor]:
        """:return: The configured importance of every neuron on the probe's states."""
        return IMPORTANCES[self.cfg.importance](layers, probe)

    def prune(self, progress: float, probe: ProbeFn) -> None:
        """Score, cut to the schedule (folding the cut neurons if asked), reweight the lasso, and distill."""
        repair = self.cfg.repair
        layers = self.layers
        if not layers:
            return
        before = self.masks()
        if repair.fold != "none":
            self._acts = dict(zip([la.name for la in layers], probe_activations(layers, probe, "a fold"), strict=True))
        targets = [out.detach() for out in probe()] if repair.distill_steps > 0 else None
        super().prune(progress, probe)
        self._acts = {}
        changed = any(not torch.equal(before[name], alive) for name, alive in self.masks().items())
        if targets is not None and changed:
            start = time.perf_counter()
            params = [p for net in self.nets for p in net.parameters()]
            masks = self.neuron_masks.values()
            self.distill_losses = distill_(params, probe, targets, masks, repair.distill_steps, repair.distill_lr)
            self.distill_seconds += time.perf_counter() - start
        self._set_fan_in_scales()

    def cut_(self, net: PrunableNet, new_alive: list[torch.Tensor], scores: list[torch.Tensor]) -> None:
        """Fold and mask each layer's cut neurons, then recompute the network's importance weights."""
        old = [a.clone() for a in self.alive(net)]
        if any(not torch.equal(a, b) for a, b in zip(old, new_alive, strict=True)):
            self.cut_shares[net.name] = cut_share(net.layers, old, new_alive)
        for layer, keep in zip(net.layers, new_alive, strict=True):
            mask = self.neuron_masks[layer.name]
            if torch.equal(keep, mask.alive):
                continue
            if self.cfg.repair.fold != "none":
                fold_(self.cfg.repair.fold, layer, keep, mask.alive & ~keep, self._acts[layer.name])
            mask.alive = keep
            mask.apply_(self.optimizers)
        self.lassos[net.name].set_importance(scores, new_alive)

    def shrink_(
        self, keeps: dict[str, list[torch.Tensor]], activation: Callable[[torch.Tensor], torch.Tensor] = torch.relu
    ) -> None:
        """Shrink as every structured method does, then size the fan-in hooks' buffers to the narrower parameters."""
        super().shrink_(keeps, activation)
        self._set_fan_in_scales()

    def _narrow_(self, net: PrunableNet, keep: list[torch.Tensor]) -> None:
        """Keep the importance weights of the ``keep`` neurons."""
        lasso = self.lassos[net.name]
        lasso.weights = [w[k.to(w.device)] for w, k in zip(lasso.weights, keep, strict=True)]

    def _set_fan_in_scales(self) -> None:
        if not self.fan_in:
            return
        scales: dict[torch.Tensor, float] = {}
        for net in self.nets:
            scales.update(fan_in_scales(net.layers, self.alive(net), self.cfg.repair.fan_in_lr))
        for hooks in self.fan_in:
            hooks.set_scales(scales)

    # -- results ---------------------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """:return: The structured stats and ``penalty``, the value of ``R(theta)`` per network."""
        out = super().stats()
        for net in self.nets:
            with torch.no_grad():
                out[net.name]["penalty"] = float(self.lassos[net.name].penalty()) if net.layers else 0.0
        return out

    def scalars(self) -> dict[str, float]:
        """:return: ``prune/cut_share/<net>`` and, with distillation, the last cut's output loss before and after."""
        out = {f"prune/cut_share/{name}": share for name, share in self.cut_shares.items()}
        if self.distill_losses is not None:
            out["prune/distill_loss_before"], out["prune/distill_loss_after"] = self.distill_losses
        return out

    def summary(self) -> dict[str, Any]:
        """:return: ``distill_seconds``, the time spent distilling cuts."""
        return {"distill_seconds": self.distill_seconds}

    def state_dict(self) -> dict[str, Any]:
        """:return: The structured state, the importance weights and the regularizer's position."""
        return {
            **super().state_dict(),
            "lasso_weights": {name: [w.cpu().clone() for w in lasso.weights] for name, lasso in self.lassos.items()},
            "reg_done": self.reg_done,
            "cut_shares": dict(self.cut_shares),
            "distill_seconds": self.distill_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:param state: As from :meth:`state_dict`."""
        super().load_state_dict(state)
        for name, weights in state["lasso_weights"].items():
            lasso = self.lassos[name]
            lasso.weights = [w.to(old.device) for w, old in zip(weights, lasso.weights, strict=True)]
        self.reg_done = float(state["reg_done"])
        self.cut_shares = dict(state["cut_shares"])
        self.distill_seconds = float(state.get("distill_seconds", 0.0))
        self._set_fan_in_scales()  # the restored masks' scales, if the hooks are installed
