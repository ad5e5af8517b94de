"""Tiny fixtures shared by the tests: an [8, 8] MLP and small, fast run configs."""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from prune_rl.core import PrunableNet, mlp_layers
from prune_rl.sb3.timing import PhaseTimeCallback


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts are not a package) as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_mlp(seed: int = 0, n_in: int = 3, hidden: tuple[int, ...] = (8, 8), n_out: int = 2) -> nn.Sequential:
    """An MLP ``n_in -> hidden... -> n_out`` with tanh activations."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    sizes = [n_in, *hidden]
    for a, b in itertools.pairwise(sizes):
        mods += [nn.Linear(a, b), nn.Tanh()]
    mods.append(nn.Linear(sizes[-1], n_out))
    return nn.Sequential(*mods)


@pytest.fixture
def mlp() -> nn.Sequential:
    return tiny_mlp()


@pytest.fixture
def net(mlp: nn.Sequential) -> PrunableNet:
    layers, linears = mlp_layers("pi", mlp)
    return PrunableNet("pi", "policy", layers, linears)


# Overrides that keep a training run to a few seconds (SB3's own tests use similar sizes).
FAST = [
    "n_timesteps=256",
    "eval.n_episodes=2",
    "eval.freq=2",
    "progress_bar=false",
]
# The schedule's mechanics, unguarded and masked: tests of the guard and of shrinking (the defaults) turn them on.
FAST_PRUNING = ["pruning.probe_size=64", "pruning.interval=0.1", "pruning.guard=false", "pruning.shrink=false"]

# Per algo: tiny networks and update sizes so that a few hundred steps include gradient updates.
FAST_ALGO = {
    "ppo": [
        "algo.n_steps=64",
        "algo.batch_size=32",
        "algo.n_epochs=2",
        "env.n_envs=1",
        "++algo.policy_kwargs.net_arch={pi:[8,8],vf:[8,8]}",
    ],
    "a2c": ["algo.n_steps=8", "env.n_envs=1", "++algo.policy_kwargs.net_arch={pi:[8,8],vf:[8,8]}"],
    "dqn": [
        "algo.learning_starts=32",
        "algo.train_freq=4",
        "algo.gradient_steps=1",
        "algo.buffer_size=1000",
        "algo.target_update_interval=20",
        "++algo.policy_kwargs.net_arch=[8,8]",
    ],
    "sac": ["algo.learning_starts=32", "algo.buffer_size=1000", "algo.batch_size=16", "++algo.policy_kwargs.net_arch=[8,8]"],
    "td3": ["algo.learning_starts=32", "algo.buffer_size=1000", "algo.batch_size=16", "++algo.policy_kwargs.net_arch=[8,8]"],
}


def compose(overrides: list[str], return_hydra_config: bool = False):
    """Compose the root config as ``prune-rl train`` would."""
    from prune_rl.app import compose_config

    return compose_config(overrides, return_hydra_config)


def train_cfg(overrides: list[str]):
    """Compose and convert to the typed :class:`prune_rl.config.TrainConfig`."""
    from omegaconf import OmegaConf

    from prune_rl.config import train_config

    return train_config(OmegaConf.to_container(compose(overrides), resolve=True))  # type: ignore[arg-type]


def fast(algo: str, env: str, pruning: str = "dsp") -> list[str]:
    """Overrides for a run of a few hundred steps."""
    extra = FAST_PRUNING if pruning != "none" else []
    return [f"algo={algo}", f"env={env}", f"pruning={pruning}", *FAST, *FAST_ALGO[algo], *extra]


class SignalAfter(PhaseTimeCallback):
    """Sends ``signum`` to this process at the end of the ``n``-th rollout, as SLURM would at any moment (patch it
    in as ``prune_rl.runner.train.PhaseTimeCallback``; subclass to change ``n`` or ``signum``)."""

    n = 3
    signum = signal.SIGUSR1

    def _on_rollout_end(self) -> None:
        super()._on_rollout_end()
        self.n -= 1
        if self.n == 0:
            os.kill(os.getpid(), self.signum)
