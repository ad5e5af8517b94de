"""A run made before ``l1_structured`` was named ``l2_structured`` still resumes, evaluates and exports."""

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from prune_rl.runner.checkpoint import Interrupted
from prune_rl.cli import app
from prune_rl.config import train_config
from prune_rl.runner.train import run

from conftest import SignalAfter, compose, fast

runner = CliRunner()


def test_a_stopped_l1_structured_run_resumes_evaluates_and_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overrides = [*fast("ppo", "cartpole", "l2_structured"), "n_timesteps=512", "checkpoint.every=0.25"]
    data = OmegaConf.to_container(compose(overrides), resolve=True)
    assert isinstance(data, dict)
    data["pruning"].update(name="l1_structured", method="l1_structured")  # as config.yaml said before the rename
    data["run_name"] = "cartpole__ppo__l1_structured__seed0"
    OmegaConf.save(OmegaConf.create(data), tmp_path / "config.yaml")
    monkeypatch.setattr("prune_rl.runner.train.PhaseTimeCallback", type("StopAfterTwo", (SignalAfter,), {"n": 2}))
    with pytest.raises(Interrupted):
        run(train_config(data), tmp_path)
    monkeypatch.undo()

    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["resumed"] and results["timesteps"] == 512 and results["pruning"] == "l1_structured"
    result = runner.invoke(app, ["evaluate", str(tmp_path), "-n", "2"])
    assert result.exit_code == 0, result.output
    quick = ["--repeats", "2", "--min-run-time", "0.001", "--episodes", "2"]
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "onnx", *quick])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "export" / "policy.onnx").is_file()
