"""Replaying a finished run repeats its pruning events exactly, and keeps what each of them saw."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from omegaconf import OmegaConf

from prune_rl.config import train_config
from prune_rl.runner.train import run

from conftest import compose, fast, load_script


def test_a_replayed_run_repeats_its_events_and_their_analysis_reads_them(tmp_path: Path) -> None:
    replay_events = load_script("replay_events")
    overrides = [*fast("ppo", "cartpole"), "n_timesteps=512", "pruning.sparsity=0.5", "pruning.value_sparsity=0.5"]
    overrides += ["pruning.repair.fold=linear", "pruning.importance=reconstruction", "pruning.repair.distill_steps=3"]
    cfg = compose(overrides)
    original = tmp_path / "original"
    original.mkdir()
    OmegaConf.save(cfg, original / "config.yaml", resolve=True)  # as prune-rl train writes it
    results = run(train_config(OmegaConf.to_container(cfg, resolve=True)), original)  # type: ignore[arg-type]

    out = tmp_path / "replay"
    saved = replay_events.replay(original, out, since=0, until=2**62)  # the whole run, every event saved
    again = json.loads((out / "run" / "results.json").read_text())
    assert again["eval"] == results.eval and again["sparsity"] == results.sparsity  # step for step
    assert len(saved) >= 2
    events = [torch.load(p) for p in saved]
    assert all(e["obs"].shape[1] == 4 and e["after"].keys() == e["before"].keys() for e in events)

    rows = replay_events.analyse(original, out)
    assert [r["steps"] for r in rows] == [e["steps"] for e in events] == sorted(e["steps"] for e in events)
    assert all(not math.isnan(r["others"]) and r["spread"] > 0 for r in rows)
    # a cut's loss on its own probe is the one the callback logged after distilling; an event that cut nothing
    # leaves the policy as it was
    assert any(r["own"] > 0 for r in rows)
    for r, e in zip(rows, events, strict=True):
        assert r["own"] == 0.0 or math.isclose(r["own"], e["distill_losses"][1], rel_tol=1e-4)
