"""PuRL: an SB3 agent learns, on :class:`PruningEnv`, how much to prune each layer of a trained agent's policy.

After Gupta et al., "Learning to Prune Deep Neural Networks via Reinforcement Learning" (arXiv 2007.04756); the
MDP, its reward and the recovery step are documented in ``docs/purl.md``. Behind the :class:`Pruner` interface it is
one event: the agent trains dense until ``begin`` (or an earlier run's trained agent stands in for that part, with
``from_run``), the search prunes the deployed network there, a short distillation towards the unpruned outputs
repairs it, and RL training goes on with the masks fixed until the end of the budget (the fine-tuning part of the
recovery). Value and critic networks are not searched: they are cut once, by magnitude, to ``value_sparsity``.

- ``purl`` (:class:`PuRLPruner`): whole neurons, ranked within a layer by ``importance``.
- ``purl_unstructured`` (:class:`PuRLWeightPruner`): single weights of every Linear layer, ranked by magnitude.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from prune_rl.core import IMPORTANCES, PrunableNet, distill_, magnitude_importance, magnitude_keep, n_kept, select_alive
from prune_rl.core.weight_mask import weight_quota
from prune_rl.config import AUTO, PrunerConfig, check_choice
from prune_rl.methods.base import ProbeFn
from prune_rl.methods.magnitude import MagnitudeConfig, MagnitudePruner
from prune_rl.methods.structured import StructuredPruner
from prune_rl.sb3.purl.env import REWARDS, PruningEnv
from prune_rl.sb3.purl.subject import NeuronSubject, Subject, WeightSubject

AGENTS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC}


def agent_defaults(agent: str, horizon: int, episodes: int) -> dict[str, Any]:
    """
    The pruning agent's SB3 arguments unless ``agent_kwargs`` says otherwise: undiscounted, updated often.

    :param agent: ``ppo``, ``a2c`` or ``sac``.
    :param horizon: Steps per pruning episode.
    :param episodes: Episodes of the search.
    :return: Constructor arguments (``gamma=1``: the fidelity changes add up to the episode's final fidelity).
    """
    common = {"gamma": 1.0, "learning_rate": 1e-3}
    if agent == "ppo":  # an update every 8 episodes (or all of them, if fewer)
        gaussian = {"net_arch": [64, 64], "log_std_init": -1.0}
        n_steps = min(8, episodes) * horizon
        return {**common, "n_steps": n_steps, "batch_size": n_steps, "gae_lambda": 1.0, "policy_kwargs": gaussian}
    if agent == "a2c":
        return {**common, "n_steps": horizon, "gae_lambda": 1.0, "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -1.0}}
    return {**common, "learning_starts": 10 * horizon, "batch_size": 64, "buffer_size": episodes * horizon + 1}


@dataclass
class PuRLConfig(PrunerConfig):
    """
    PuRL's knobs (``conf/pruning/purl.yaml``). ``sparsity`` is the deployed network's target (of its hidden neurons,
    or of its weights unstructured), reached exactly; ``begin`` is where in the budget the search runs.

    :param from_run: A run directory whose trained agent to prune (it stands for the first ``begin`` of training).
    :param reward: ``step`` (PuRL: a reward at every pruning step) or ``episode`` (AMC: only at the end).
    :param agent: The pruning agent: ``ppo``, ``a2c`` or ``sac``.
    :param agent_kwargs: Its SB3 constructor arguments, over :func:`agent_defaults`.
    :param episodes: Pruning episodes the agent trains for (each prunes the network once; on-policy agents round up
        to whole rollouts).
    :param passes: Sweeps over the layers per episode.
    :param importance: How a layer's neurons are ranked (:data:`prune_rl.core.IMPORTANCES`; structured only).
    :param distill_steps: Full-batch Adam steps fitting the pruned policy to the unpruned outputs after the search.
    :param distill_lr: Their learning rate.
    :param return_check: The search's best allocations (by fidelity) that are distilled and then re-ranked by the mean
        return of real episodes, the best of which is kept (0: keep the allocation of highest fidelity).
    :param return_episodes: Deterministic episodes each of them is evaluated on.
    """

    from_run: str | None = None
    reward: str = "step"
    agent: str = "ppo"
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int = 200
    passes: int = 1
    importance: str = "magnitude"
    distill_steps: int = 1000
    distill_lr: float = 1e-2
    return_check: int = 3
    return_episodes: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sparsity == AUTO:
            raise ValueError("pruning=purl searches one cut at a fixed sparsity: set pruning.sparsity to a number, not auto")
        check_choice("reward", self.reward, REWARDS)
        check_choice("agent", self.agent, AGENTS)
        check_choice("importance", self.importance, IMPORTANCES)
        if self.return_check < 0 or self.return_episodes < 1:
            raise ValueError(
                f"need pruning.return_check >= 0 and return_episodes >= 1, got {self.return_check}, {self.return_episodes}"
            )
        if self.episodes < 1 or self.passes < 1:
            raise ValueError(f"pruning.episodes and pruning.passes must be >= 1, got {self.episodes}, {self.passes}")
        if self.distill_steps < 0 or self.distill_lr <= 0:
            raise ValueError(
                f"need pruning.distill_steps >= 0 and distill_lr > 0, got {self.distill_steps}, {self.distill_lr}"
            )


@dataclass
class PuRLWeightConfig(PuRLConfig, MagnitudeConfig):
    """``purl_unstructured`` (``conf/pruning/purl_unstructured.yaml``): PuRL's keys and ``min_weights``."""


class SearchCallback(BaseCallback):
    """
    Logs every pruning episode to the pruning agent's logger (``purl/`` tags), at the agent's step count.

    Per episode: ``episode_reward``, ``fidelity`` (final), ``best_fidelity``, ``sparsity``, ``kept/<layer>``; per step
    ``t``: ``step<t>/removed_share`` (of the layer's alive units) and ``step<t>/fidelity``.

    :param env: The pruning environment (its best episode so far is read from it).
    """

    def __init__(self, env: PruningEnv) -> None:
        super().__init__()
        self.env = env
        self._return = 0.0
        self._t = 0

    def _on_step(self) -> bool:
        info, reward, done = self.locals["infos"][0], float(self.locals["rewards"][0]), bool(self.locals["dones"][0])
        self._return += reward
        self.logger.record(f"purl/step{self._t}/removed_share", info["removed_share"])
        self.logger.record(f"purl/step{self._t}/fidelity", info["fidelity"])
        self._t += 1
        if done:
            self.logger.record("purl/episode_reward", self._return)
            self.logger.record("purl/fidelity", info["fidelity"])
            self.logger.record("purl/best_fidelity", self.env.best_fidelity)
            self.logger.record("purl/sparsity", info["sparsity"])
            for layer, kept in info["kept"].items():
                self.logger.record(f"purl/kept/{layer}", kept)
            self.logger.dump(self.num_timesteps)
            self._return, self._t = 0.0, 0
        return True


def search(env: PruningEnv, cfg: PuRLConfig, seed: int, log_dir: Path | None = None) -> dict[str, Any]:
    """
    Train the pruning agent for ``cfg.episodes`` episodes, then run it once deterministically.

    The training's random streams are left as they were: SB3 seeds Python's, NumPy's and torch's global generators
    when it builds the agent, so their states are restored afterwards.

    :param env: The pruning environment.
    :param cfg: PuRL's configuration.
    :param seed: Seed of the agent.
    :param log_dir: Where the agent's TensorBoard and CSV logs go (``None``: not written).
    :return: ``agent_fidelity`` (of the deterministic episode), ``seconds``; the best episode is read from ``env``.
    """
    start = time.perf_counter()
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()  # SB3 seeds the global generators
    try:
        found = _search(env, cfg, seed, log_dir)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    return {**found, "seconds": time.perf_counter() - start}


def _search(env: PruningEnv, cfg: PuRLConfig, seed: int, log_dir: Path | None) -> dict[str, Any]:
    kwargs = {**agent_defaults(cfg.agent, env.horizon, cfg.episodes), **cfg.agent_kwargs}
    agent = AGENTS[cfg.agent]("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    if log_dir is not None:
        agent.set_logger(configure(str(log_dir), ["tensorboard", "csv"]))
    agent.learn(total_timesteps=cfg.episodes * env.horizon, callback=SearchCallback(env))
    obs, _ = env.reset(seed=seed)
    done, info = False, dict[str, Any]()
    while not done:
        action, _ = agent.predict(obs, deterministic=True)
        obs, _, done, _, info = env.step(np.asarray(action))
    return {"agent_fidelity": float(info["fidelity"])}


RETURN_SEED = 40_000  # the return check's env seed: apart from training (seed) and evaluation (seed + 10000)


def episode_return(model: BaseAlgorithm, n_episodes: int, seed: int) -> float:
    """
    Mean return of ``model`` acting deterministically on a fresh copy of its training task.

    The copy is made from the training env's spec (keyword arguments included) and, when the model trains on
    VecNormalize, normalised with a frozen copy of its statistics; the training env is not touched.

    :param model: The SB3 model, with its training env.
    :param n_episodes: Episodes.
    :param seed: Seed of the copy.
    :return: The mean undiscounted return.
    """
    import copy

    import gymnasium as gym
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

    training = model.get_env()
    assert training is not None, "the return check needs the model's training env"
    spec = training.get_attr("spec")[0]
    env: VecEnv = DummyVecEnv([lambda: Monitor(gym.make(spec.id, **spec.kwargs))])  # the spec without its wrappers
    normalize = model.get_vec_normalize_env()
    if normalize is not None:
        env = VecNormalize(env, training=False, norm_obs=normalize.norm_obs, norm_reward=False,
                           clip_obs=normalize.clip_obs, epsilon=normalize.epsilon)  # fmt: skip
        env.obs_rms = copy.deepcopy(normalize.obs_rms)
    env.seed(seed)
    returns, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True)
    env.close()
    return float(np.mean(returns))


class PuRLMixin:
    """The search-then-recover event shared by both PuRL pruners (they differ in units and masks)."""

    scales_cut: ClassVar[bool] = False  # the search sets the whole cut: a guard keeps it or undoes it

    cfg: PuRLConfig
    nets: list[PrunableNet]
    n_events: int
    seed: int
    log_dir: Path | None
    stopped: bool

    def __init__(self, cfg: PuRLConfig, seed: int = 0) -> None:
        super().__init__(cfg, seed)  # type: ignore[call-arg]  # the Pruner after this mixin in the MRO
        self.report: dict[str, Any] = {}
        self._event_end: float | None = None

    def start_from(self) -> str | None:
        """:return: ``from_run``: the run whose trained agent this run prunes."""
        return self.cfg.from_run

    def target(self, net: PrunableNet, progress: float) -> float:
        """:return: The final sparsity: the search makes the whole cut at once."""
        return self.final_sparsity(net)  # type: ignore[attr-defined]  # the Pruner after this mixin in the MRO

    def due(self, progress: float) -> bool:
        """:return: Whether the search is due: once, at ``begin``."""
        return self.n_events == 0 and progress >= self.cfg.begin and not self.stopped

    def _subject(self, net: PrunableNet, probe: ProbeFn) -> Subject:
        raise NotImplementedError

    def _n_remove(self, subject: Subject) -> int:
        """:return: Units to remove: ``sparsity`` of them, as far as the layers' floors allow."""
        total = sum(subject.sizes)
        return total - max(n_kept(float(self.cfg.sparsity), total), sum(subject.floors))

    def _set_masks(self, net: PrunableNet, masks: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def _cut_value(self, net: PrunableNet) -> None:
        raise NotImplementedError

    def _mask_objects(self, net: PrunableNet) -> list[Any]:
        raise NotImplementedError

    def prune(self, progress: float, probe: ProbeFn) -> None:
        """Search the deployed network's cut, check the best ones' real returns, apply one, cut the value networks."""
        deployed, cfg = self.nets[0], self.cfg
        subject = self._subject(deployed, probe)
        env = PruningEnv(subject, self._n_remove(subject), cfg.passes, cfg.reward)
        found = search(env, cfg, self.seed, self.log_dir / "purl" if self.log_dir is not None else None)
        start = time.perf_counter()
        model = getattr(probe, "model", None)  # the SB3 model behind the probe: real episodes need it
        checked = self._check_returns(env, subject, probe, model) if cfg.return_check > 0 and model is not None else []
        check_seconds = time.perf_counter() - start
        chosen = max(checked, key=lambda c: (c["return"], c["fidelity"])) if checked else None
        masks = chosen["masks"] if chosen is not None else env.top(1)[0][1]
        subject.reset()
        self._set_masks(deployed, masks)
        for net in self.nets[1:]:
            self._cut_value(net)
        start = time.perf_counter()
        before = subject.fidelity()
        if chosen is not None:  # distilled during the check already
            with torch.no_grad():
                for param, value in zip(deployed.parameters(), chosen["params"], strict=True):
                    param.copy_(value)
        else:
            objects = self._mask_objects(deployed)
            distill_(
                deployed.parameters(), lambda: probe()[:1], [subject.reference], objects, cfg.distill_steps, cfg.distill_lr
            )
        after = subject.fidelity()
        self._event_end = time.perf_counter()
        self.report = {
            "search_progress": progress,
            "finetune_fraction": 1.0 - progress,
            "reward": cfg.reward,
            "agent": cfg.agent,
            "search_episodes": env.episodes,
            "search_steps": env.episodes * env.horizon,
            "search_seconds": found["seconds"],
            "best_fidelity": env.best_fidelity,
            "best_episode": env.best_episode,
            "agent_fidelity": found["agent_fidelity"],
            "return_check": [{key: c[key] for key in ("kept", "search_fidelity", "fidelity", "return")} for c in checked],
            "return_check_seconds": check_seconds,
            "kept": dict(zip(subject.names, [int(m.sum()) for m in masks], strict=True)),
            "fidelity_before_distill": before,
            "fidelity": after,
            "distill_steps": cfg.distill_steps,
            "distill_seconds": self._event_end - start,
            "finetune_seconds": 0.0,
            "episode_fidelity": env.episode_fidelity,
        }

    def _check_returns(self, env: PruningEnv, subject: Subject, probe: ProbeFn, model: Any) -> list[dict[str, Any]]:
        """Distill each of the search's best allocations and measure its real return (the weights are restored)."""
        cfg, deployed, checked = self.cfg, self.nets[0], []
        for search_fidelity, masks in env.top(cfg.return_check):
            subject.apply(masks)
            distill_(
                deployed.parameters(), lambda: probe()[:1], [subject.reference], [subject], cfg.distill_steps, cfg.distill_lr
            )
            checked.append({
                "kept": dict(zip(subject.names, [int(m.sum()) for m in masks], strict=True)),
                "search_fidelity": search_fidelity,
                "fidelity": subject.fidelity(),
                "return": episode_return(model, cfg.return_episodes, self.seed + RETURN_SEED),
                "masks": masks,
                "params": [param.detach().clone() for param in deployed.parameters()],
            })  # fmt: skip
        subject.reset()
        return checked

    def close(self) -> None:
        """Measure the fine-tuning time since the event (at the end of every ``learn()`` call)."""
        if self._event_end is not None:
            self.report["finetune_seconds"] = time.perf_counter() - self._event_end

    def scalars(self) -> dict[str, float]:
        """:return: ``prune/purl/fidelity`` (after distillation) and the search's cost, once it has run."""
        if not self.report:
            return {}
        return {f"prune/purl/{key}": float(self.report[key]) for key in ("fidelity", "best_fidelity", "search_episodes")}

    def summary(self) -> dict[str, Any]:
        """:return: The search's result and cost, and the recovery's (for ``results.json``)."""
        return dict(self.report)

    def state_dict(self) -> dict[str, Any]:
        """:return: The pruner's state and the search's report (a continued run neither searches again nor forgets it)."""
        return {**super().state_dict(), "purl": dict(self.report)}  # type: ignore[misc]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """:param state: As from :meth:`state_dict`."""
        super().load_state_dict(state)  # type: ignore[misc]
        self.report = dict(state.get("purl", {}))


class PuRLPruner(PuRLMixin, StructuredPruner):
    """
    PuRL on whole neurons: the search sets the deployed network's hidden widths, exactly at ``sparsity``.

    "Learning to Prune Deep Neural Networks via Reinforcement Learning" (Gupta et al., arXiv 2007.04756).

    :param cfg: Its configuration.
    :param seed: Seed of the pruning agent.
    """

    config_class: ClassVar[type[PrunerConfig]] = PuRLConfig
    cfg: PuRLConfig

    def _subject(self, net: PrunableNet, probe: ProbeFn) -> Subject:
        return NeuronSubject(net, probe, self.cfg.min_neurons, self.cfg.importance)

    def _set_masks(self, net: PrunableNet, masks: list[torch.Tensor]) -> None:
        self.cut_(net, [keep.to(layer.producer.weight.device) for keep, layer in zip(masks, net.layers, strict=True)], [])

    def _cut_value(self, net: PrunableNet) -> None:
        scores = magnitude_importance(net.layers)
        widths = [layer.dense for layer in net.layers]
        alive, _ = select_alive(scores, self.alive(net), self.cfg.value_sparsity, self.cfg.min_neurons, widths=widths)
        self.cut_(net, alive, scores)

    def _mask_objects(self, net: PrunableNet) -> list[Any]:
        return [self.neuron_masks[layer.name] for layer in net.layers]


class PuRLWeightPruner(PuRLMixin, MagnitudePruner):
    """
    PuRL on single weights: the search sets how many weights each Linear layer keeps, exactly at ``sparsity``.

    "Learning to Prune Deep Neural Networks via Reinforcement Learning" (Gupta et al., arXiv 2007.04756).

    :param cfg: Its configuration.
    :param seed: Seed of the pruning agent.
    """

    config_class: ClassVar[type[PrunerConfig]] = PuRLWeightConfig
    cfg: PuRLWeightConfig

    def _subject(self, net: PrunableNet, probe: ProbeFn) -> Subject:
        return WeightSubject(net, probe, self.cfg.min_weights)

    def _set_masks(self, net: PrunableNet, masks: list[torch.Tensor]) -> None:
        for mask, keep in zip(self.weight_masks[net.name], masks, strict=True):
            self._set(mask, keep.to(mask.alive.device))

    def _cut_value(self, net: PrunableNet) -> None:
        for mask in self.weight_masks[net.name]:
            quota = weight_quota(self.cfg.value_sparsity, mask.n_weights)
            self._set(mask, magnitude_keep(mask.linear.weight, mask.alive, quota))

    def _mask_objects(self, net: PrunableNet) -> list[Any]:
        return list(self.weight_masks[net.name])

    def close(self) -> None:
        """Stop masking gradients and measure the fine-tuning time."""
        MagnitudePruner.close(self)
        PuRLMixin.close(self)
