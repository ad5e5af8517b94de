"""A trained agent from anywhere: what an SB3 file holds, where its normalisation statistics lie, and loading it.

``prune-rl prune MODEL`` starts a run from an agent that no prune-rl code trained: an SB3 ``.zip`` saved by a
script, by rl-baselines3-zoo, or a prune-rl run directory. :func:`read_agent` reads the file's ``data`` entry (JSON,
no network is built) and tells the algorithm from the policy class and the saved attributes, the task from the
file's name or folder, and finds its ``VecNormalize`` statistics by the names SB3 and the zoo give them.
:func:`load_agent` then loads it into the run's environment, with everything it was built with (``net_arch``,
activation, ``ortho_init``, action bounds, optimizer state), its own hyperparameters unless the command line set
some, and the statistics it was trained with.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from prune_rl.config import ConfigError, TrainConfig
from prune_rl.environment import action_kind
from prune_rl.registry import ALGOS, algo_kwargs
from prune_rl.runner import rundir

log = logging.getLogger(__name__)

VECNORMALIZE_NAMES = (rundir.VECNORMALIZE_FILE, "vec_normalize.pkl")  # prune-rl's and the zoo's; SB3's docs use the second
# Constructor arguments every algorithm has, which say nothing about which algorithm saved a file.
_COMMON_ARGS = {"self", "policy", "env", "verbose", "seed", "device", "_init_setup_model", "tensorboard_log",
                "policy_kwargs", "stats_window_size", "learning_rate"}  # fmt: skip


@dataclass
class AgentFile:
    """
    What a trained agent's file says about it.

    :param path: The SB3 ``.zip``.
    :param algo: Key of :data:`prune_rl.registry.ALGOS`.
    :param data: The file's saved attributes (hyperparameters, spaces, ``policy_kwargs``).
    :param env_id: The gymnasium id its name or folder gives (the zoo's ``<env>.zip``, a run's config), if any.
    :param vecnormalize: Its normalisation statistics, if found beside it.
    """

    path: Path
    algo: str
    data: dict[str, Any]
    env_id: str | None
    vecnormalize: Path | None

    @property
    def spaces(self) -> tuple[gym.Space, gym.Space]:
        """:return: The observation and action spaces it acts on."""
        return self.data["observation_space"], self.data["action_space"]


def mlp_policies() -> str:
    """:return: What prune-rl prunes, for messages: ``MlpPolicy of ppo, a2c, ...``."""
    return f"MlpPolicy of {', '.join(sorted(ALGOS))}"


def _data(path: Path) -> dict[str, Any]:
    """The saved attributes of an SB3 zip, deserialised (spaces, policy class); no parameters are loaded."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "data" not in archive.namelist() or "policy.pth" not in archive.namelist():
                raise ConfigError(f"{path} is not an SB3 model (a zip without SB3's data and policy.pth)")
            text = archive.read("data").decode()
        json.loads(text)
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        raise ConfigError(f"{path} is not an SB3 model ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 warns per attribute it cannot unpickle; the policy class is checked below
        data = json_to_data(text)
    if not isinstance(data.get("policy_class"), type) or "observation_space" not in data:
        raise ConfigError(f"{path}: its policy class or spaces do not load here (saved by another SB3 or custom code)")
    return data


def identify_algo(policy_class: type, data: dict[str, Any], where: str = "the model") -> str:
    """
    Tell which registered algorithm saved a file: the one whose ``MlpPolicy`` is its policy class, and among those
    (PPO and A2C share one) the one whose constructor arguments the file holds best.

    :param policy_class: The file's policy class.
    :param data: The file's saved attributes.
    :param where: The file, for messages.
    :return: Key of :data:`prune_rl.registry.ALGOS`.
    :raises ConfigError: If no registered algorithm prunes this policy (a CNN, multi-input or recurrent policy).
    """
    name = f"{policy_class.__module__}.{policy_class.__qualname__}"
    fits = [algo for algo, cls in ALGOS.items() if cls.policy_aliases.get("MlpPolicy") is policy_class]
    if not fits:
        owners = [f"{a} of {algo}" for algo, cls in ALGOS.items() for a, c in cls.policy_aliases.items() if c is policy_class]
        kind = f" ({owners[0]})" if owners else ""
        raise ConfigError(f"{where} holds a {name}{kind}, which prune-rl cannot prune: it prunes the {mlp_policies()}")

    def missing(algo: str) -> tuple[int, int]:
        args = set(inspect.signature(ALGOS[algo].__init__).parameters) - _COMMON_ARGS
        return len(args - set(data)), -len(args & set(data))

    return min(fits, key=missing)


def _gym_id(name: str) -> str | None:
    """:return: ``name`` if gymnasium knows it as an environment id (the zoo names files and folders after them)."""
    return name if name in gym.registry else None


def find_vecnormalize(model: Path, env_id: str | None) -> Path | None:
    """
    Find the normalisation statistics saved beside a model, by the names SB3 and the zoo give them.

    - ``DIR/vecnormalize.pkl`` or ``DIR/vec_normalize.pkl`` (prune-rl run directories, SB3's docs);
    - ``DIR/<env>/vecnormalize.pkl`` beside ``DIR/<env>.zip`` or ``DIR/best_model.zip`` (the zoo's log folders);
    - ``DIR/<prefix>_vecnormalize_<n>_steps.pkl`` beside ``DIR/<prefix>_<n>_steps.zip`` (SB3's CheckpointCallback).

    :param model: The model's ``.zip``.
    :param env_id: Its task, if known (the zoo's folder of statistics is named after it).
    :return: The first file found, or ``None``.
    """
    folder = model.parent
    candidates = [folder / model.stem / name for name in VECNORMALIZE_NAMES]
    if env_id is not None:
        candidates += [folder / env_id / name for name in VECNORMALIZE_NAMES]
    candidates += [folder / name for name in VECNORMALIZE_NAMES]
    checkpoint = re.fullmatch(r"(.*)_(\d+)_steps", model.stem)
    if checkpoint:
        candidates.insert(0, folder / f"{checkpoint[1]}_vecnormalize_{checkpoint[2]}_steps.pkl")
    return next((path for path in candidates if path.is_file()), None)


def _run_env_id(run_dir: Path) -> str | None:
    """:return: The task of a prune-rl run directory's config, if it has one that reads (else the env must be given)."""
    try:
        value = (rundir.read_config_data(run_dir).get("env") or {}).get("id")
    except ConfigError:  # no config, or a corrupt one
        return None
    return str(value) if value else None


def read_agent(model: str | Path, vecnormalize: str | Path | None = None) -> AgentFile:
    """
    Read what a trained agent's file says about it.

    :param model: An SB3 ``.zip`` or a prune-rl run directory.
    :param vecnormalize: Its ``VecNormalize`` statistics (default: found beside it, see :func:`find_vecnormalize`).
    :return: The file's algorithm, attributes, task (if its name or folder gives one) and statistics.
    :raises ConfigError: If it is not an SB3 model, or holds a policy prune-rl cannot prune (one line).
    """
    path = Path(model)
    env_id = None
    if path.is_dir():
        if not rundir.model_file(path).is_file():
            raise ConfigError(f"{path} is a folder without {rundir.MODEL_FILE}: pass an SB3 .zip or a prune-rl run directory")
        env_id = _run_env_id(path)
        path = rundir.model_file(path)
    elif not path.is_file():
        raise ConfigError(f"{path} does not exist")
    else:  # a run directory's model.zip: its config names the task
        env_id = _run_env_id(path.parent)
    data = _data(path)
    algo = identify_algo(data["policy_class"], data, str(path))
    if env_id is None:  # the zoo: logs/<algo>/<env>_<n>/<env>.zip (or best_model.zip there)
        env_id = _gym_id(path.stem) or _gym_id(re.sub(r"_\d+$", "", path.parent.name))
    if vecnormalize is not None:
        stats: Path | None = Path(vecnormalize)
        assert stats is not None
        if not stats.is_file():
            raise ConfigError(f"--vecnormalize {stats} does not exist")
    else:
        stats = find_vecnormalize(path, env_id)
    return AgentFile(path=path, algo=algo, data=data, env_id=env_id, vecnormalize=stats)


def _space(space: gym.Space) -> str:
    """A space in a few characters: ``Box(4,)``, ``Discrete(2)``."""
    if isinstance(space, gym.spaces.Box):
        return f"Box{space.shape}"
    return " ".join(str(space).split())


def _check_spaces(agent: AgentFile, env: VecEnv, env_id: str) -> None:
    observation, action = agent.spaces
    if (observation, action) != (env.observation_space, env.action_space):
        mine = f"{_space(observation)} -> {_space(action)}"
        theirs = f"{_space(env.observation_space)} -> {_space(env.action_space)}"
        differ = " (the same shapes, other bounds or dtypes)" if mine == theirs else ""
        raise ConfigError(f"{agent.path} acts on {mine}, but {env_id} has {theirs}{differ}")


def fine_tuning_kwargs(agent: AgentFile, cfg: TrainConfig) -> dict[str, Any]:
    """
    The hyperparameters that replace the file's for fine-tuning: the run's ``algo`` keys (``prune-rl prune`` keeps
    only those given on its command line), the run's seed, and for DQN exploration at the agent's final rate (a
    trained agent explores as it ended, not from 1.0).

    :param agent: The agent's file.
    :param cfg: The run's config.
    :return: Keyword arguments for ``load``.
    """
    kwargs = {key: value for key, value in cfg.algo.kwargs.items() if key != "policy"}
    if "policy_kwargs" in kwargs:
        raise ConfigError("the networks come from the model: algo.policy_kwargs cannot be changed")
    _, n_actions = action_kind(agent.spaces[1])
    kwargs = algo_kwargs(kwargs, n_actions)
    if "exploration_final_eps" in agent.data and "exploration_initial_eps" not in kwargs:
        kwargs["exploration_initial_eps"] = kwargs.get("exploration_final_eps", agent.data["exploration_final_eps"])
    return {**kwargs, "seed": cfg.seed}


def load_agent(cfg: TrainConfig, env: VecEnv) -> tuple[BaseAlgorithm, VecEnv]:
    """
    Load ``init.model`` into the run's environment to fine-tune it.

    The networks, their activation and initialisation, the action bounds and the optimizers' state are the file's;
    so are the hyperparameters, except the run's ``algo`` keys (those given on the command line). With
    ``env.normalize``, the environment is normalised with ``init.vecnormalize``'s statistics and settings. An
    off-policy agent starts with an empty replay buffer, which it fills for ``learning_starts`` steps (at least one
    batch) before its first gradient step.

    :param cfg: The run's config.
    :param env: The training environment, as :func:`prune_rl.environment.make_env` built it.
    :return: The model, and the environment (re-wrapped with the file's statistics).
    :raises ConfigError: If the file is not an SB3 model, trained another algorithm, or acts on other spaces.
    """
    assert cfg.init.model is not None
    agent = read_agent(cfg.init.model, cfg.init.vecnormalize)
    if agent.algo != cfg.algo.name:
        raise ConfigError(f"{agent.path} holds a {agent.algo} agent, not {cfg.algo.name} (algo is read from the file)")
    _check_spaces(agent, env, cfg.env.id)
    if cfg.env.normalize:
        if cfg.init.vecnormalize is None:
            raise ConfigError(f"env.normalize=true, but no VecNormalize statistics were given for {agent.path}")
        assert isinstance(env, VecNormalize)
        try:
            env = VecNormalize.load(cfg.init.vecnormalize, env.venv)
        except Exception as exc:  # a file of something else: any unpickling error
            raise ConfigError(f"{cfg.init.vecnormalize} does not load as VecNormalize statistics ({exc})") from None
        env.training = True
    elif cfg.init.vecnormalize is not None:
        raise ConfigError(f"VecNormalize statistics {cfg.init.vecnormalize} were given, but env.normalize=false")
    kwargs = fine_tuning_kwargs(agent, cfg)
    if "learning_starts" in agent.data and "learning_starts" not in kwargs:
        kwargs["learning_starts"] = max(int(agent.data["learning_starts"]), int(agent.data.get("batch_size", 1)))
    return ALGOS[cfg.algo.name].load(agent.path, env=env, device=cfg.device, **kwargs), env


def log_loaded(cfg: TrainConfig, model: BaseAlgorithm) -> None:
    """
    Say in the run's log what was loaded: the agent, its statistics, and for off-policy agents the replay buffer's
    warm-up (once every check passed, so that a refused run prints one line).

    :param cfg: The run's config.
    :param model: The loaded model.
    """
    log.info("%s: a %s agent, fine-tuned on %s", cfg.init.model, cfg.algo.name, cfg.env.id)
    if cfg.init.vecnormalize is not None:
        log.info("VecNormalize statistics %s", cfg.init.vecnormalize)
    else:
        log.info("no VecNormalize statistics found: the agent sees raw observations (--vecnormalize PATH if it had them)")
    if isinstance(model, OffPolicyAlgorithm):
        log.info(
            "the replay buffer starts empty: the loaded agent acts for learning_starts=%d steps to fill it before the "
            "first gradient step",
            model.learning_starts,
        )
