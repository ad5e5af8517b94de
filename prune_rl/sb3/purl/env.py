"""PuRL's pruning MDP as a gymnasium environment: one episode prunes the deployed network layer by layer.

After Gupta et al., "Learning to Prune Deep Neural Networks via Reinforcement Learning" (arXiv 2007.04756): the
agent is rewarded at every pruning step, not only at the end of an episode as in AMC (He et al., arXiv 1802.03494).
The full design and its reasons are in ``docs/purl.md``.

- **Episode**: ``passes`` sweeps over the layers of a :class:`prune_rl.sb3.purl.subject.Subject`, input side first;
  step ``t`` cuts layer ``t mod L``. Sweep ``k`` (from 1) ends with ``round(k / passes * n_remove)`` units removed,
  so the last step reaches the target exactly.
- **Action**: ``a`` in ``[0, 1]``, how much of its allowed range the current layer is cut by. As in AMC the range
  is bounded so the target stays reachable: at least what the later layers of the sweep cannot take (down to
  their floors), at most what the sweep still needs or the layer can give above its floor. The layer loses
  ``lo + round(a * (hi - lo))`` units, the least important first (re-scored on the network as it is).
- **Observation** (8 numbers in ``[-1, 1]``): layer index and sweep as fractions, the layer's width relative to
  the widest, the share of its units alive, the share of all units removed, the share still to remove in this
  sweep, the fidelity so far and the previous action.
- **Reward**: with ``reward="step"`` (PuRL) every step earns the change of fidelity it caused,
  ``r_t = F_t - F_{t-1}`` with ``F_0 = 1``; with ``reward="episode"`` (AMC) every step earns 0 but the last,
  which earns ``F_T - 1``. Undiscounted, both give every episode the same return, ``F_T - 1``: only when the
  agent learns what each cut cost differs, which is the paper's claim to test.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prune_rl.sb3.purl.subject import Subject

REWARDS = ("step", "episode")
N_FEATURES = 8


class PruningEnv(gym.Env):
    """
    Prune ``subject`` to ``n_remove`` units in one episode of ``passes`` sweeps over its layers.

    The environment remembers the best final fidelity of all its episodes and the masks that reached it, and the
    best episode of every allocation (units kept per layer) it has seen (:meth:`top`).

    :param subject: The network to prune.
    :param n_remove: Units every episode removes in total (at most what the layers' floors allow).
    :param passes: Sweeps over the layers per episode.
    :param reward: ``step`` (a reward at every pruning step) or ``episode`` (only at the end).
    """

    def __init__(self, subject: Subject, n_remove: int, passes: int = 1, reward: str = "step") -> None:
        if reward not in REWARDS:
            raise ValueError(f"unknown reward {reward!r} (known: {', '.join(REWARDS)})")
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        removable = sum(subject.sizes) - sum(subject.floors)
        if not 0 <= n_remove <= removable:
            raise ValueError(f"n_remove must be in [0, {removable}] (the layers' floors), got {n_remove}")
        self.subject = subject
        self.n_remove = n_remove
        self.passes = passes
        self.reward_mode = reward
        self.n_layers = len(subject.sizes)
        self.horizon = self.n_layers * passes
        self.total = sum(subject.sizes)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.episodes = 0  # finished episodes
        self.episode_fidelity: list[float] = []  # final fidelity of every finished episode
        self.best_fidelity = -float("inf")
        self.best_masks: list[Any] | None = None
        self.best_episode = -1
        self.candidates: dict[tuple[int, ...], tuple[float, list[Any]]] = {}  # per allocation: best fidelity, masks
        self._t = 0
        self._fidelity = 1.0
        self._action = 0.0

    def top(self, k: int) -> list[tuple[float, list[Any]]]:
        """
        :param k: How many.
        :return: The ``k`` allocations (units kept per layer) of highest final fidelity seen, each with the fidelity
            and masks of its best episode, best first.
        """
        return sorted(self.candidates.values(), key=lambda c: c[0], reverse=True)[:k]

    def goal(self, sweep: int) -> int:
        """:return: Units removed in total at the end of sweep ``sweep`` (from 0)."""
        return round((sweep + 1) / self.passes * self.n_remove)

    def bounds(self) -> tuple[int, int]:
        """:return: The fewest and most units the current layer may lose now."""
        index, sweep = self._t % self.n_layers, self._t // self.n_layers
        kept = self.subject.kept()
        need = self.goal(sweep) - (self.total - sum(kept))
        spare = [k - f for k, f in zip(kept, self.subject.floors, strict=True)]
        low = max(0, need - sum(spare[index + 1 :]))
        high = max(min(spare[index], need), low)
        return low, high

    def _obs(self) -> np.ndarray:
        index, sweep = self._t % self.n_layers, self._t // self.n_layers
        kept = self.subject.kept()
        removed = self.total - sum(kept)
        return np.array(
            [
                index / max(self.n_layers - 1, 1),
                sweep / max(self.passes - 1, 1),
                self.subject.sizes[index] / max(self.subject.sizes),
                kept[index] / self.subject.sizes[index],
                removed / self.total,
                (self.goal(sweep) - removed) / self.total,
                float(np.clip(self._fidelity, -1.0, 1.0)),
                self._action,
            ],
            dtype=np.float32,
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Restore the unpruned network and start at its first layer."""
        super().reset(seed=seed)
        self.subject.reset()
        self._t, self._fidelity, self._action = 0, 1.0, 0.0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Cut the current layer by the share of its allowed range that ``action`` asks for."""
        share = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, 1.0))
        index = self._t % self.n_layers
        low, high = self.bounds()
        cut = low + round(share * (high - low))
        before = self.subject.kept()[index]
        if cut > 0:
            self.subject.cut(index, before - cut)
        fidelity = self.subject.fidelity()
        self._t += 1
        terminated = self._t == self.horizon
        if self.reward_mode == "step":
            reward = fidelity - self._fidelity
        else:
            reward = fidelity - 1.0 if terminated else 0.0
        self._fidelity, self._action = fidelity, share
        kept = self.subject.kept()
        info: dict[str, Any] = {
            "layer": self.subject.names[index],
            "removed_share": cut / max(before, 1),  # of the layer's alive units
            "fidelity": fidelity,
            "sparsity": 1.0 - sum(kept) / self.total,
        }
        if terminated:
            self.episodes += 1
            self.episode_fidelity.append(fidelity)
            info["kept"] = dict(zip(self.subject.names, kept, strict=True))
            if fidelity > self.best_fidelity:
                self.best_fidelity, self.best_masks, self.best_episode = fidelity, self.subject.masks(), self.episodes
            if fidelity > self.candidates.get(tuple(kept), (-float("inf"),))[0]:
                self.candidates[tuple(kept)] = (fidelity, self.subject.masks())
        obs = np.zeros(N_FEATURES, dtype=np.float32) if terminated else self._obs()
        return obs, float(reward), terminated, False, info
