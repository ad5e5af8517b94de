"""A uniformly random policy's return on a task: where returns are negative, the ratio to dense counts from it.

A ratio of mean returns means something only where the dense agent's mean return is positive. On tasks whose returns
are negative (Pendulum-v1: about -1200 at random, -150 trained), the table's ratio is of the returns' improvements
over a random policy, ``(R - R_random) / (R_dense - R_random)``: 1 is dense, 0 is random. That is the
human-normalised score of the Atari literature with the dense agent in the human's place, and the same reading as
the guard's tolerance there (a share of the returns' range).
"""

from __future__ import annotations

import functools
import statistics

import gymnasium as gym

EPISODES = 20
SEED = 10_000  # the runs' final evaluation episodes are seeded from seed + 10000 (eval.seed_offset)


def ratio_zero(env_id: str, dense_mean: float) -> float | None:
    """
    :param env_id: The task's gymnasium id.
    :param dense_mean: The dense runs' mean final return there.
    :return: The return a ratio to dense counts from: 0 where the dense mean is positive, else a random policy's
        return where dense beats it; ``None`` where no ratio means anything (or gymnasium does not know the id).
    """
    if dense_mean > 0:
        return 0.0
    zero = random_return(env_id)
    return zero if zero is not None and dense_mean > zero else None


@functools.cache
def random_return(env_id: str, n_episodes: int = EPISODES, seed: int = SEED) -> float | None:
    """
    The mean return of uniformly random actions.

    :param env_id: A gymnasium id.
    :param n_episodes: Episodes, reset with seeds ``seed``, ``seed + 1``, ...
    :param seed: The first reset seed, and the action space's.
    :return: The mean undiscounted return, or ``None`` for an id gymnasium does not know.
    """
    try:
        env = gym.make(env_id)
    except gym.error.Error:
        return None
    env.action_space.seed(seed)
    returns = []
    try:
        for episode in range(n_episodes):
            env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return statistics.fmean(returns)
