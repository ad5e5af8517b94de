"""The default run (guarded cuts, networks shrunk while training) through every tool that reads a run directory."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.runner.export import export_run
from prune_rl.runner.evaluate import evaluate_run
from prune_rl.report import collect
from prune_rl.report.tables import rows

from conftest import FAST, FAST_ALGO, train_cfg

runner = CliRunner()

# The defaults of conf/pruning_shared/keys.yaml (guard and shrink on), on a run short enough for a test.
DEFAULT_RUN = ["algo=ppo", "env=cartpole", *FAST, *FAST_ALGO["ppo"], "n_timesteps=2048", "pruning.probe_size=64",
               "pruning.interval=0.1", "++algo.policy_kwargs.net_arch={pi:[16,16],vf:[16,16]}"]  # fmt: skip


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default") / "run"
    cfg = train_cfg(DEFAULT_RUN)
    assert cfg.pruning.guard and cfg.pruning.shrink, "the defaults guard and shrink"
    return _train(out)


def _train(out: Path, *overrides: str) -> Path:
    result = runner.invoke(app, ["train", *DEFAULT_RUN, *overrides, f"hydra.run.dir={out}"])
    assert result.exit_code == 0, result.output
    return out


def _independent_count(model: PPO) -> list[int]:
    """Hidden neurons of the policy whose incoming and outgoing weights are not all zero, read from plain SB3."""
    net = model.policy.mlp_extractor.policy_net
    linears = [*(m for m in net if isinstance(m, torch.nn.Linear)), model.policy.action_net]
    return _held(linears)


def _held(linears: list[torch.nn.Linear]) -> list[int]:
    """Per hidden layer between consecutive Linear layers: neurons with some nonzero incoming and outgoing weight."""
    return [int(((a.weight != 0).any(dim=1) & (b.weight != 0).any(dim=0)).sum()) for a, b in itertools.pairwise(linears)]


def test_a_default_run_shrinks_and_says_what_the_guard_decided(default_run: Path) -> None:
    results = json.loads((default_run / "results.json").read_text())
    guard = results["guard"]
    assert guard["tolerance"] == 0.05 and guard["kept"] + guard["reduced"] >= 1
    assert set(guard) >= {"kept", "reduced", "rejected", "deferred", "stopped", "reached", "target", "short", "decisions"}
    assert all(d["change"] <= 0.05 for d in guard["decisions"] if d["outcome"] != "rejected")
    model = PPO.load(default_run / "model.zip", device="cpu")  # plain SB3, at the narrow widths
    widths = results["widths"]["pi"]
    assert [layer.out_features for layer in model.policy.mlp_extractor.policy_net if hasattr(layer, "out_features")] == widths
    assert sum(widths) < 32
    alive = results["sparsity"]["pi"]["alive_per_layer"]
    assert list(alive.values()) == _independent_count(model), "results.json counts what the network holds"
    header = (default_run / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"prune/guard/kept", "prune/guard/deferred", "prune/guard/change", "prune/guard/stopped"} <= set(header)


def test_a_shrunk_run_evaluates_and_reports(default_run: Path) -> None:
    evaluated = evaluate_run(default_run, n_episodes=2)
    assert evaluated["n_episodes"] == 2
    (record,) = collect([default_run])
    (row,) = rows([record])
    results = json.loads((default_run / "results.json").read_text())
    assert row["neuron_sparsity"] == pytest.approx(results["sparsity"]["pi"]["neuron_sparsity"], abs=1e-4)
    assert row["guard_share"] == pytest.approx(results["guard"]["seconds"] / results["wall_seconds"], abs=1e-5)


def test_a_shrunk_run_exports(default_run: Path) -> None:
    card = export_run(default_run, n_states=64, min_run_time=0.01)
    assert (default_run / "export" / "policy.onnx").is_file() and (default_run / "export" / "compact.zip").is_file()
    assert card["check"]["compact"]["identical"] == 1.0 and card["check"]["onnx"]["identical"] == 1.0


def test_purl_and_scratch_start_from_a_shrunk_run(default_run: Path, tmp_path: Path) -> None:
    purl_dir = _train(tmp_path / "purl", "pruning=purl", f"pruning.from_run={default_run}", "pruning.episodes=4",
                      "pruning.sparsity=0.8", "pruning.return_check=0", "pruning.distill_steps=10")  # fmt: skip
    purl = json.loads((purl_dir / "results.json").read_text())
    assert purl["start_from"] == str(default_run) and purl["sparsity"]["pi"]["neuron_sparsity"] >= 0.8 - 1e-9
    assert purl["guard"]["kept"] == 1 and purl["guard"]["short"] is None  # one search, its whole cut kept
    scratch_dir = _train(tmp_path / "scratch", "pruning=scratch", f"pruning.from_run={default_run}", "n_timesteps=256")
    scratch = json.loads((scratch_dir / "results.json").read_text())
    shrunk = json.loads((default_run / "results.json").read_text())["widths"]
    assert scratch["widths"]["pi"] == [max(w, 2) for w in shrunk["pi"]]
    assert scratch["guard"] is None  # nothing is cut while it trains


def test_dqn_counts_what_its_strong_regularizer_removed_and_keeps_each_layer_at_its_target(tmp_path: Path) -> None:
    from stable_baselines3 import DQN

    from conftest import fast

    out = tmp_path / "dqn"
    overrides = ["n_timesteps=1024", "pruning.sparsity=0.75", "pruning.strength=100", "++algo.policy_kwargs.net_arch=[16,16]"]
    result = runner.invoke(app, ["train", *fast("dqn", "cartpole"), *overrides, f"hydra.run.dir={out}"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    q_net = DQN.load(out / "model.zip", device="cpu").policy.q_net.q_net
    linears = [m for m in q_net if isinstance(m, torch.nn.Linear)]
    held = _held(linears)
    assert list(results["sparsity"]["q"]["alive_per_layer"].values()) == held  # as an independent count finds
    assert held == [4, 4]  # the regularizer alone would zero them all: each layer keeps its 25%


def test_sparsity_auto_runs_and_says_where_it_stopped(tmp_path: Path) -> None:
    out = _train(tmp_path / "auto", "pruning.sparsity=auto", "n_timesteps=1024")
    results = json.loads((out / "results.json").read_text())
    assert results["guard"]["target"] == "auto" and results["guard"]["short"].startswith("sparsity=auto stopped with pi at")
    assert results["sparsity"]["pi"]["neuron_sparsity"] > 0
    (row,) = rows(collect([out]))
    assert row["target"] == "auto"
