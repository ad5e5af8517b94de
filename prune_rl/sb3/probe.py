"""The probe: every prunable network of an SB3 model run on a batch of recent states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from prune_rl.config import PROBE_WINDOWS
from prune_rl.sb3.adapters import policy_adapter

T = TypeVar("T")


class Probe:
    """
    Runs every prunable network of a model on a batch of recent states.

    :meth:`capture` takes the batch (call it at rollout end, when the rollout buffer is full); calling the
    probe runs the networks on it. Off-policy algorithms sample the replay buffer, normalised like the training
    batches. On-policy algorithms read the rollout buffer: with ``window="rollout"`` the batch is a random sample
    of the last rollout's states; with ``window="interval"`` it is a uniform sample of every rollout passed to
    :meth:`collect` since the last :meth:`reset` (each state keeps a random key from the probe's own generator,
    and the ``n_states`` smallest keys stay, so a pool never holds more than ``n_states`` states); with
    ``window="recent"`` it is the last ``n_states`` states collected since the last reset: the last rollouts
    whole and the oldest of them trimmed to fit, by time step in every env (a uniform sample of the last rollout
    when one fills the probe).
    A single short rollout can be a few hundred consecutive, strongly correlated states; the interval's are spread
    over many episodes and policies, the recent window's over a few rollouts of nearly the policy being cut.

    :param model: The SB3 model.
    :param n_states: Batch size.
    :param window: ``rollout``, ``interval`` or ``recent`` (on-policy; off-policy algorithms sample their replay
        buffer either way).
    :param seed: Seed of the pooled windows' own generator (the training's random streams are not touched).
    """

    def __init__(self, model: BaseAlgorithm, n_states: int, window: str = "rollout", seed: int = 0) -> None:
        if window not in PROBE_WINDOWS:
            raise ValueError(f"unknown probe window {window!r} (known: {', '.join(PROBE_WINDOWS)})")
        self.model = model
        self.n_states = n_states
        self.window = window
        self.batch: tuple[Any, Any] | None = None
        self.generator = torch.Generator().manual_seed(seed)
        self._pool: tuple[torch.Tensor, torch.Tensor] | None = None  # pooled windows: states kept, keys (interval)

    @property
    def pooling(self) -> bool:
        """:return: Whether states are pooled over rollouts (``interval`` or ``recent`` window, on-policy model)."""
        return self.window != "rollout" and isinstance(self.model, OnPolicyAlgorithm)

    def _rollout_obs(self, time_major: bool = False) -> Any:
        """
        :param time_major: Order the states by time step, then env (oldest first), instead of SB3's env-major
            order (every state of env 0, then of env 1, ...). The two are the same with one env.
        :return: The rollout buffer's observations, ``(n_steps * n_envs, ...)``.
        """
        assert isinstance(self.model, OnPolicyAlgorithm)
        buffer = self.model.rollout_buffer
        obs = buffer.observations
        if isinstance(obs, dict):  # Dict observations: left to the caller
            return obs
        if not buffer.generator_ready:  # as collected: (n_steps, n_envs, ...)
            return obs.reshape(-1, *obs.shape[2:]) if time_major else buffer.swap_and_flatten(obs)
        if time_major:  # flattened env-major by RolloutBuffer.get()
            obs = obs.reshape(buffer.n_envs, buffer.buffer_size, *obs.shape[1:]).swapaxes(0, 1).reshape(obs.shape)
        return obs

    def collect(self) -> None:
        """Add the rollout buffer's states to the pool (pooled windows, on-policy; otherwise nothing)."""
        if not self.pooling:
            return
        recent = self.window == "recent"
        states = obs_as_tensor(self._rollout_obs(time_major=recent).copy(), self.model.device)
        assert isinstance(states, torch.Tensor), f"the {self.window} window needs array observations"
        if recent:  # oldest rollout first, each oldest time step first; keys unused
            if len(states) >= self.n_states:  # one rollout fills the probe: a uniform sample of it
                states = states[torch.randperm(len(states), generator=self.generator)[: self.n_states]]
            elif self._pool is not None:  # the newest rollouts whole, the oldest kept one trimmed to fit
                states = torch.cat([self._pool[0], states])[-self.n_states :]
            self._pool = states, torch.empty(0)
            return
        keys = torch.rand(len(states), generator=self.generator)
        if self._pool is not None:
            states, keys = torch.cat([self._pool[0], states]), torch.cat([self._pool[1], keys])
        if len(states) > self.n_states:
            keep = keys.topk(self.n_states, largest=False).indices
            states, keys = states[keep], keys[keep]
        self._pool = states, keys

    def reset(self) -> None:
        """Empty the pool (after a pruning event: the next one draws from the rollouts after it)."""
        self._pool = None

    def state_dict(self) -> dict[str, Any]:
        """:return: What a resumed run needs to draw the same states: the generator's state and the pooled states."""
        return {"generator": self.generator.get_state(), "pool": self._pool}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:param state: As from :meth:`state_dict`."""
        self.generator.set_state(state["generator"])
        self._pool = state["pool"]

    def capture(self, lazy: bool = False) -> None:
        """
        Take a batch of recent states (and actions, for critics).

        :param lazy: Off-policy, only forget the last batch: the replay buffer is sampled when the probe is first
            run, so an event that does not run it leaves the buffer's random stream untouched. (On-policy the
            rollout buffer is read now, before the next rollout overwrites it.)
        """
        model = self.model
        if self.pooling and self._pool is not None:
            self.batch = (self._pool[0], None)
            return
        if isinstance(model, OnPolicyAlgorithm):
            obs = self._rollout_obs()
            idx = torch.randperm(len(obs), generator=self.generator)[: self.n_states].numpy()
            self.batch = (obs_as_tensor(obs[idx].copy(), model.device), None)
            return
        assert isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None
        if lazy:
            self.batch = None
            return
        sample = model.replay_buffer.sample(self.n_states, env=model._vec_normalize_env)
        self.batch = (sample.observations, sample.actions)

    def __call__(self) -> list[torch.Tensor]:
        """
        Run the networks on the captured batch, in evaluation mode (as SB3 acts), with gradients if enabled.

        :return: The networks' outputs, deployed network first.
        """
        if self.batch is None:
            self.capture()
        return self._in_eval_mode(self._outputs)

    @torch.no_grad()
    def actions(self) -> torch.Tensor:
        """
        The deployed policy's deterministic actions on the captured batch, as SB3 acts: argmax for discrete actions,
        the (squashed) mean for continuous ones, clipped to the action space's bounds where SB3 clips them.

        :return: ``(n_states,)`` action indices, or ``(n_states, action_dim)`` actions.
        """
        if self.batch is None:
            self.capture()
        assert self.batch is not None
        obs, policy = self.batch[0], self.model.policy
        actions = self._in_eval_mode(lambda: policy._predict(obs, deterministic=True))
        space = self.model.action_space
        if isinstance(space, spaces.Box) and not policy.squash_output:
            low, high = (torch.as_tensor(b, dtype=actions.dtype, device=actions.device) for b in (space.low, space.high))
            actions = actions.clamp(low, high)
        return actions.reshape(len(actions), -1) if actions.dtype.is_floating_point else actions.reshape(-1)

    def _in_eval_mode(self, run: Callable[[], T]) -> T:
        """:return: ``run()`` with the policy in evaluation mode (as SB3 acts), its mode restored afterwards."""
        policy = self.model.policy
        was_training = policy.training
        policy.set_training_mode(False)
        try:
            return run()
        finally:
            policy.set_training_mode(was_training)

    def _outputs(self) -> list[torch.Tensor]:
        assert self.batch is not None
        obs, actions = self.batch
        return policy_adapter(self.model.policy).outputs(obs, actions)
