"""Stop a diverging run: NaN or inf in the parameters or the losses, before the next rollout acts on them."""

from __future__ import annotations

import logging
import math

import torch
from stable_baselines3.common.callbacks import BaseCallback

log = logging.getLogger(__name__)

GROWTH_WARNING = 1e3  # warn once when the parameters' norm grows this many times over its value at the start


class Diverged(RuntimeError):
    """
    Training produced a NaN or an infinity.

    :param what: Which value (a parameter's name, a loss's tag).
    :param timesteps: When.
    """

    def __init__(self, what: str, timesteps: int) -> None:
        super().__init__(f"training diverged: {what} is not finite at {timesteps} timesteps")
        self.what = what
        self.timesteps = timesteps


def distribution_error(exc: Exception, timesteps: int) -> Diverged | None:
    """
    Recognise torch's refusal to build an action distribution from NaN or infinite parameters, which a gradient
    phase can meet before the next check (e.g. PPO's ``log_std`` overflowing on Hopper).

    :param exc: An exception raised by ``learn()``.
    :param timesteps: The model's timesteps.
    :return: The divergence it stands for, or ``None`` if it is another error.
    """
    message = str(exc)
    if isinstance(exc, ValueError) and "distribution" in message and "found invalid values" in message:
        return Diverged(
            f"the action distribution ({message.split(' of distribution')[0].removeprefix('Expected ')})", timesteps
        )
    return None


class DivergenceCallback(BaseCallback):
    """
    After every gradient phase (at a rollout's start), check that every parameter and every ``train/`` loss the
    algorithm logged is finite, and raise :class:`Diverged` otherwise; warn once when the parameters' norm has
    grown by orders of magnitude (finite, but probably exploding: the user's call).

    Put it before the checkpoint callback, so that a diverged model is never checkpointed. NaN scores of a pruning
    method come from NaN parameters or states, and so are caught here too, before the next event.
    """

    def __init__(self) -> None:
        super().__init__()
        self.initial_norm: float | None = None
        self.warned = False

    def _on_step(self) -> bool:
        return True

    @torch.no_grad()
    def _on_rollout_start(self) -> None:
        for tag, value in self.logger.name_to_value.items():
            if tag.startswith("train/") and isinstance(value, float) and not math.isfinite(value):
                raise Diverged(tag, self.model.num_timesteps)
        params = list(self.model.policy.named_parameters())
        norms = torch.stack([p.detach().float().norm() for _, p in params])
        if not bool(torch.isfinite(norms).all()):
            name = next(name for (name, _), norm in zip(params, norms, strict=True) if not bool(torch.isfinite(norm)))
            raise Diverged(f"parameter {name}", self.model.num_timesteps)
        total = float(norms.norm())
        if self.initial_norm is None:
            self.initial_norm = total
        elif not self.warned and total > GROWTH_WARNING * max(self.initial_norm, 1e-12):
            self.warned = True
            log.warning(
                "the parameters' norm grew from %.3g to %.3g by %d timesteps: is the learning rate too high?",
                self.initial_norm,
                total,
                self.model.num_timesteps,
            )
