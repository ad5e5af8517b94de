"""Vectorised training and evaluation environments."""

from __future__ import annotations

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from prune_rl.config import ConfigError, EnvConfig

VEC_ENVS: dict[str, type[DummyVecEnv] | type[SubprocVecEnv]] = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}


def action_kind(space: gym.Space) -> tuple[str, int | None]:
    """
    Classify an action space.

    :param space: The environment's action space.
    :return: ``("discrete", None)`` or ``("continuous", n_action_dims)``.
    """
    if isinstance(space, gym.spaces.Discrete):
        return "discrete", None
    if isinstance(space, gym.spaces.Box):
        return "continuous", int(space.shape[0])
    raise ConfigError(f"unsupported action space {space}")


def make_env(
    cfg: EnvConfig, seed: int, n_envs: int | None = None, training: bool = True, gamma: float | None = None
) -> VecEnv:
    """
    Build a vectorised environment, wrapped in ``VecNormalize`` when ``cfg.normalize`` is set.

    :param cfg: Environment config.
    :param seed: Seed of the first sub-environment (the others get ``seed + i``).
    :param n_envs: Number of sub-environments (default ``cfg.n_envs``).
    :param training: ``False`` for evaluation envs: normalisation statistics frozen and rewards left raw.
    :param gamma: Discount of the algorithm, used to normalise rewards (as rl-baselines3-zoo does).
    :return: The environment.
    """
    if cfg.vec_env not in VEC_ENVS:
        raise ConfigError(f"env.vec_env must be one of {', '.join(VEC_ENVS)}, got {cfg.vec_env!r}")
    try:
        env = make_vec_env(
            cfg.id, n_envs=n_envs or cfg.n_envs, seed=seed, env_kwargs=cfg.kwargs, vec_env_cls=VEC_ENVS[cfg.vec_env]
        )
    except gym.error.Error as exc:
        raise ConfigError(f"env.id {cfg.id!r}: {exc}") from None
    if cfg.normalize:
        kwargs = dict(cfg.normalize_kwargs)
        if gamma is not None:
            kwargs.setdefault("gamma", gamma)
        if not training:
            kwargs.update(training=False, norm_reward=False)
        env = VecNormalize(env, **kwargs)
    return env
