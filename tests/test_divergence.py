"""A diverging run stops with one line naming what is not finite and when, keeping its last good checkpoint."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prune_rl.runner.checkpoint import latest_checkpoint
from prune_rl.sb3.divergence import Diverged
from prune_rl.sb3.timing import PhaseTimeCallback
from prune_rl.runner.train import run

from conftest import fast, train_cfg


class _PoisonAfter(PhaseTimeCallback):
    """Turns one weight into NaN at the start of the 6th rollout, as an exploding update would have."""

    n = 6

    def _on_rollout_start(self) -> None:
        super()._on_rollout_start()
        self.n -= 1
        if self.n == 0:
            with torch.no_grad():
                next(self.model.policy.parameters())[0, 0] = float("nan")


def test_a_nan_parameter_stops_the_run_before_it_is_checkpointed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("prune_rl.runner.train.PhaseTimeCallback", _PoisonAfter)
    cfg = train_cfg([*fast("ppo", "cartpole"), "n_timesteps=1024", "checkpoint.every=0.25"])
    with pytest.raises(Diverged, match=r"parameter mlp_extractor\.policy_net\.0\.weight is not finite at 320 timesteps"):
        run(cfg, tmp_path)
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "model.zip").exists()
    last = latest_checkpoint(tmp_path)
    assert last is not None and (last / "state.json").read_text().count('"timesteps": 256')
    state = torch.load(last / "pruning.pt", weights_only=False)
    assert state is not None  # the last good checkpoint, written before the NaN, is the one kept


def test_an_exploding_learning_rate_ends_in_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    args = ["env=gym", "env.id=Pendulum-v1", "algo.learning_rate=1e6", "n_timesteps=1024", "algo.n_steps=256"]
    done = subprocess.run(
        [sys.executable, "-m", "prune_rl.cli", "train", *args, "progress_bar=false", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("prune-rl: error: training diverged: ")
    assert "Traceback" not in done.stderr and not (tmp_path / "results.json").exists()
