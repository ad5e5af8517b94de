"""Where a run's training time goes: environment stepping, the rest of the rollouts, and the gradient phases."""

from __future__ import annotations

import time
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnvWrapper


class PhaseTimeCallback(BaseCallback):
    """
    Add up the wall time of SB3's two phases, and of environment steps within the rollouts.

    A rollout runs from ``on_rollout_start`` to ``on_rollout_end`` (for SAC and TD3 one is ``train_freq`` steps);
    the gradient phase runs from one rollout's end to the next rollout's start. Put this callback first, so that
    what other callbacks do at a rollout's start (a pruning event) counts in neither. Environment time is that of
    the innermost training VecEnv's ``step_wait`` (the simulators and their gymnasium wrappers), timed by an
    instance attribute installed for each ``learn()`` call and removed after it (a checkpoint pickles the env
    without it).
    Periodic evaluations run within rollouts and count there.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rollout_seconds = 0.0
        self.gradient_seconds = 0.0
        self.env_seconds = 0.0
        self._since: float | None = None  # when the current phase started
        self._timed_env: Any = None

    def _on_training_start(self) -> None:
        env = self.model.get_env()
        while isinstance(env, VecEnvWrapper):  # VecNormalize and others: time the environments themselves
            env = env.venv
        if env is not None and "step_wait" not in vars(env):
            step_wait = env.step_wait

            def timed_step_wait() -> Any:
                start = time.perf_counter()
                try:
                    return step_wait()
                finally:
                    self.env_seconds += time.perf_counter() - start

            env.step_wait = timed_step_wait  # type: ignore[method-assign]  # an instance attribute, for this env only
            self._timed_env = env

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._since is not None:
            self.gradient_seconds += now - self._since
        self._since = now

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        if self._since is not None:
            self.rollout_seconds += now - self._since
        self._since = now

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # the last gradient phase
        self._since = None
        if self._timed_env is not None:
            del self._timed_env.step_wait  # back to the class's method
            self._timed_env = None

    def results(self) -> dict[str, float]:
        """:return: ``env_seconds``, ``rollout_seconds`` (environment time included) and ``gradient_seconds``."""
        return {
            "env_seconds": self.env_seconds,
            "rollout_seconds": self.rollout_seconds,
            "gradient_seconds": self.gradient_seconds,
        }
