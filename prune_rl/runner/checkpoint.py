"""Checkpoints of a training run, the signals that stop it cleanly, and what ``prune-rl resume`` reads back.

A checkpoint is a folder, ``RUN_DIR/checkpoint/``, written between a gradient phase and the next rollout, after any
pruning event due there, so that nothing is half done:

- ``model.zip``: the SB3 model with its optimizers, step counters and last observations (``model.save``);
- ``replay_buffer.pkl``: the replay buffer (off-policy algorithms);
- ``venv.pkl``: the training environments themselves (cloudpickle), where they can be pickled (classic control and
  Box2D tasks can; MuJoCo's cannot, and a resumed run starts new episodes there);
- ``vecnormalize.pkl``: the VecNormalize statistics;
- ``pruning.pt``: the pruning callback's state (the pruner's ``state_dict``, the probe's);
- ``rng.pt``: the global random states of torch, numpy and ``random``;
- ``state.json``, written last: timesteps done, seconds spent, the evaluations' schedule.

It is written to ``.checkpoint.tmp`` and renamed into place; the previous one is renamed to ``checkpoint.old``
first and deleted once the new one is in place, so a kill at any moment leaves one complete checkpoint, which
:func:`latest_checkpoint` finds. With the environments saved, a resumed CPU run ends with the same parameters and
masks as one never stopped.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import cloudpickle
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from prune_rl.runner.rundir import CHECKPOINT_DIR, MODEL_FILE, VECNORMALIZE_FILE

log = logging.getLogger(__name__)

REPLAY_BUFFER_FILE = "replay_buffer.pkl"
VENV_FILE = "venv.pkl"
PRUNING_FILE = "pruning.pt"
RNG_FILE = "rng.pt"
STATE_FILE = "state.json"
# SLURM's time limit and preemption, sbatch --signal, submitit's warning before a timeout or preemption, Ctrl-C
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


class StopSignals:
    """
    While active, SIGTERM, SIGUSR1 and SIGINT ask the run to stop at the next checkpoint instead of killing it.

    A second SIGINT (Ctrl-C twice) stops at once, as usual. :meth:`chain` then hands the signal to the handler that
    was there before, if it was a Python one: submitit's, which requeues the job on SLURM (the requeued job resumes
    from the checkpoint, see :func:`prune_rl.app.main`).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._chained: Any = None

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (a launcher's worker thread): signals stay as they are
                break
        return self

    def __exit__(self, *exc: object) -> None:
        if self.received is not None:
            self._chained = self._previous.get(self.received)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def chain(self) -> None:
        """Call the handler the received signal had before (once the checkpoint is written), if it was Python's."""
        handler = self._chained
        if callable(handler) and handler is not signal.default_int_handler and self.received is not None:
            handler(self.received, None)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts

    @property
    def name(self) -> str:
        """:return: The received signal's name (``SIGTERM``), or an empty string."""
        return signal.Signals(self.received).name if self.received is not None else ""


class Interrupted(Exception):
    """
    The run stopped on a signal after writing a checkpoint.

    :param signum: The signal.
    :param timesteps: Timesteps done.
    """

    def __init__(self, signum: int, timesteps: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.timesteps = timesteps


def save_rng(model: BaseAlgorithm) -> dict[str, Any]:
    """
    :param model: The model (its action space draws SAC's and TD3's first, random actions).
    :return: The global random states of torch, numpy and ``random``, and the action space's.
    """
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "random": random.getstate(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def load_rng(state: dict[str, Any], model: BaseAlgorithm) -> None:
    """
    :param state: As from :func:`save_rng`.
    :param model: The loaded model (``load`` seeds it again, which this undoes).
    """
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])
    model.action_space.np_random.bit_generator.state = state["action_space"]


def _inner(env: VecEnv) -> VecEnv:
    return env.venv if isinstance(env, VecNormalize) else env


def write_checkpoint(run_dir: Path, model: BaseAlgorithm, env: VecEnv, states: dict[str, Any]) -> Path:
    """
    Write a complete checkpoint of the run, atomically (see the module's docstring).

    :param run_dir: The run directory.
    :param model: The model (its ``env`` is the training env).
    :param env: The training env (VecNormalize outermost, if any).
    :param states: ``pruning`` (the pruning callback's state, or ``None``) and whatever ``state.json`` holds.
    :return: The checkpoint folder.
    """
    tmp = run_dir / f".{CHECKPOINT_DIR}.tmp"
    final, old = run_dir / CHECKPOINT_DIR, run_dir / f"{CHECKPOINT_DIR}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save(tmp / MODEL_FILE)
    if isinstance(model, OffPolicyAlgorithm):
        model.save_replay_buffer(tmp / REPLAY_BUFFER_FILE)
    if isinstance(env, VecNormalize):
        env.save(str(tmp / VECNORMALIZE_FILE))
    venv = _inner(env)
    timer = vars(venv).pop("step_wait", None)  # PhaseTimeCallback's timer, an instance attribute: not the env's own
    try:
        blob = cloudpickle.dumps(venv)
    except Exception:  # e.g. MuJoCo's simulator state: the resumed run starts new episodes
        blob = None
    finally:
        if timer is not None:
            venv.step_wait = timer  # type: ignore[method-assign]
    if blob is not None:
        (tmp / VENV_FILE).write_bytes(blob)
    torch.save(states.get("pruning"), tmp / PRUNING_FILE)
    torch.save(save_rng(model), tmp / RNG_FILE)
    info = {k: v for k, v in states.items() if k != "pruning"}
    (tmp / STATE_FILE).write_text(json.dumps({**info, "timesteps": int(model.num_timesteps)}, indent=2) + "\n")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """
    :param run_dir: A run directory.
    :return: Its newest complete checkpoint (``checkpoint/``, or ``checkpoint.old/`` if a kill came between the two
        renames), or ``None``.
    """
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        folder = Path(run_dir) / name
        if (folder / STATE_FILE).is_file() and (folder / MODEL_FILE).is_file():
            return folder
    return None


def remove_checkpoints(run_dir: str | Path) -> None:
    """:param run_dir: A run directory whose run finished: its checkpoints (and a half-written one) go."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old", f".{CHECKPOINT_DIR}.tmp"):
        shutil.rmtree(Path(run_dir) / name, ignore_errors=True)


def load_env(folder: Path, fresh: VecEnv) -> tuple[VecEnv, bool]:
    """
    The training env of a checkpoint: the saved environments if there are, else ``fresh``'s, with the saved
    VecNormalize statistics.

    :param folder: The checkpoint.
    :param fresh: A newly made training env for the run's config.
    :return: The env, and whether its environments are the saved ones (mid-episode, as they were).
    """
    venv_file = folder / VENV_FILE
    restored = venv_file.is_file()
    venv = pickle.loads(venv_file.read_bytes()) if restored else _inner(fresh)
    if restored:
        _inner(fresh).close()
    if isinstance(fresh, VecNormalize):
        env = VecNormalize.load(str(folder / VECNORMALIZE_FILE), venv)
        env.training = True
        return env, restored
    return venv, restored


class CheckpointCallback(BaseCallback):
    """
    Writes a checkpoint every ``every`` of the training budget, and one when a stop signal came, then stops training.

    Put it last among the callbacks: at a rollout's start it runs after the pruning event due there.

    :param run_dir: The run directory.
    :param every: Fraction of the budget between checkpoints (0: only on a signal).
    :param total_timesteps: The run's budget.
    :param signals: The stop signals being watched.
    :param states: Returns what else the checkpoint holds (see :func:`write_checkpoint`).
    """

    def __init__(self, run_dir: Path, every: float, total_timesteps: int, signals: StopSignals, states: Any) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.every = every
        self.total_timesteps = total_timesteps
        self.signals = signals
        self.states = states
        self.next_at = 0
        self.stopped = False
        self.seconds = 0.0
        self.saved_at = 0  # timesteps of the last checkpoint

    def _init_callback(self) -> None:
        step = max(int(self.every * self.total_timesteps), 1) if self.every > 0 else 0
        self.next_at = (self.model.num_timesteps // step + 1) * step if step else self.total_timesteps + 1

    def _on_rollout_start(self) -> None:
        due = self.model.num_timesteps >= self.next_at and self.model.num_timesteps < self.total_timesteps
        if not (due or self.signals.received is not None):
            return
        start = time.perf_counter()
        write_checkpoint(self.run_dir, self.model, self.model.get_env(), self.states())  # type: ignore[arg-type]
        self.seconds += time.perf_counter() - start
        self.saved_at = int(self.model.num_timesteps)
        self._init_callback()
        if self.signals.received is not None:
            self.stopped = True

    def _on_step(self) -> bool:
        return not self.stopped  # False ends learn() right after the checkpoint


def read_state(folder: Path) -> dict[str, Any]:
    """
    :param folder: A checkpoint (:func:`latest_checkpoint`).
    :return: Its ``state.json``: timesteps done, seconds spent, the evaluations' schedule, where the run started.
    """
    return json.loads((folder / STATE_FILE).read_text())


def load_pruning(folder: Path) -> dict[str, Any]:
    """
    :param folder: A checkpoint of a pruned run.
    :return: The pruning callback's state it holds.
    """
    return torch.load(folder / PRUNING_FILE, weights_only=False)


def load_checkpoint(folder: Path, algo: type[BaseAlgorithm], env: VecEnv, device: str) -> tuple[BaseAlgorithm, VecEnv]:
    """
    Load a checkpoint's model, environments, replay buffer and random states.

    :param folder: The checkpoint.
    :param algo: The run's algorithm class.
    :param env: A newly made training env for the run's config (closed if the checkpoint holds its own).
    :param device: Where the model goes.
    :return: The model and its training env, as they were when the checkpoint was written.
    :raises ValueError: If the model does not load (a corrupt zip), as :class:`prune_rl.config.ConfigError`.
    """
    from prune_rl.config import ConfigError

    env, restored = load_env(folder, env)
    if not restored:
        log.warning("%s: the environments could not be saved; the resumed run starts new episodes", folder)
    try:
        model = algo.load(folder / MODEL_FILE, env=env, device=device, force_reset=not restored)
    except Exception as exc:  # a corrupt zip: any reader error
        raise ConfigError(f"{folder / MODEL_FILE} does not load ({str(exc).splitlines()[0]})") from None
    if isinstance(model, OffPolicyAlgorithm):
        model.load_replay_buffer(folder / REPLAY_BUFFER_FILE)
    load_rng(torch.load(folder / RNG_FILE, weights_only=False), model)
    return model, env
