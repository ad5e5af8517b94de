"""Pruned against dense in TensorBoard: what the event files of `prune-rl report --tensorboard` and a sweep hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from typer.testing import CliRunner

from prune_rl.cli import app

runner = CliRunner()
TASK = "CartPole-v1/ppo"


def _run(root: Path, method: str, seed: int, returns: list[float]) -> Path:
    """A run directory as `prune-rl train` writes it, with made-up numbers (widths 8+8, pruned to 2+2)."""
    path = root / f"{method}_{seed}"
    path.mkdir(parents=True)
    pruned = method != "none"
    (path / "config.yaml").write_text("seed: 0\n" + ("pruning:\n  sparsity: 0.75\n" if pruned else ""))
    pruning = ",prune/neuron_sparsity/pi,prune/alive/pi.0,prune/alive/pi.1"
    header = "time/total_timesteps,time/fps" + (pruning if pruned else "")
    rows = ["100,50" + (",0.5,4,4" if pruned else ""), "200,60" + (",0.75,2,2" if pruned else "")]
    (path / "progress.csv").write_text("\n".join([header, *rows]) + "\n")
    sparsity = {"pi": {"role": "policy", "neuron_sparsity": 0.75, "weight_sparsity": 0.9, "compact_weights": 20,
                       "alive_neurons": 4, "alive_per_layer": {"pi.0": 2, "pi.1": 2}}}  # fmt: skip
    results = {"env_id": "CartPole-v1", "algo": "ppo", "pruning": method, "seed": seed, "n_timesteps": 300,
               "timesteps": 300, "eval": {"mean_return": returns[-1]}, "sparsity": sparsity if pruned else None,
               "widths": {"pi": [8, 8], "vf": [8, 8]}}  # fmt: skip
    (path / "results.json").write_text(json.dumps(results))
    np.savez(path / "evaluations.npz", timesteps=np.array([100, 200]), results=np.array([[r, r] for r in returns[:-1]]))
    return path


def _scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_report_puts_each_tasks_dense_and_pruned_runs_on_the_same_charts(tmp_path: Path) -> None:
    _run(tmp_path / "runs", "none", 0, [100.0, 300.0, 500.0])
    _run(tmp_path / "runs", "dsp", 0, [90.0, 250.0, 480.0])
    result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 0, result.output
    task = tmp_path / "tb" / "CartPole-v1__ppo"
    dense, pruned = task / "dense__seed0", task / "dsp@0.75__seed0"
    tag = f"compare/{TASK}/"
    assert _scalars(dense, tag + "return") == [(100, 100.0), (200, 300.0), (300, 500.0)]  # evaluations, then the final one
    assert _scalars(pruned, tag + "return")[-1] == (300, 480.0)
    assert _scalars(pruned, tag + "neuron_sparsity") == [(100, 0.5), (200, 0.75), (300, 0.75)]  # events, then the end
    assert _scalars(pruned, tag + "width") == [(100, 8.0), (200, 4.0), (300, 4.0)]
    assert [v for _, v in _scalars(dense, tag + "width")] == [16.0, 16.0, 16.0]  # its configured pi: [8, 8]
    assert _scalars(dense, tag + "fps") == [(100, 50.0), (200, 60.0)]
    assert {v for _, v in _scalars(dense, tag + "neuron_sparsity")} == {0.0}

    report = EventAccumulator(str(tmp_path / "tb" / "report"), size_guidance={"tensors": 0, "images": 0})
    report.Reload()
    config = report.Tensors(metadata.CONFIG_SUMMARY_TAG)[0].tensor_proto.string_val[0]
    layout = layout_pb2.Layout.FromString(config)
    (category,) = layout.category
    assert category.title == f"{TASK}: pruned against dense"
    charts = {chart.title.split(": ")[1]: list(chart.multiline.tag) for chart in category.chart}
    assert charts["mean return (evaluation)"] == [r"^compare/CartPole\-v1/ppo/return$"]
    assert len(charts) == 4  # return, sparsity, width, fps
    table = report.Tensors("report/table/text_summary")[0].tensor_proto.string_val[0].decode()
    assert (
        table.startswith("| env | algo |") and "| dsp | 0.75 |" in table and "| 1 | 480.0 ± - | 0.96 |" in table
    )  # one seed: no std, no interval
    images = report.Tags()["images"]
    assert sorted(images) == ["report/frontier", "report/neurons", "report/profile", "report/returns"]
    assert report.Images("report/returns")[0].width > 100

    again = runner.invoke(app, ["report", str(tmp_path / "runs"), "--tensorboard", str(tmp_path / "tb")])
    assert again.exit_code == 0 and len(_scalars(pruned, tag + "width")) == 3  # written again, not twice


def test_a_sweep_writes_its_report_and_tensorboard_into_its_own_directory(tmp_path: Path) -> None:
    from conftest import fast

    sweep = tmp_path / "sweep"
    overrides = [o for o in fast("ppo", "cartpole", "none") if o != "pruning=none"]
    result = runner.invoke(app, ["train", "-m", "pruning=l1_structured,none", *overrides, f"hydra.sweep.dir={sweep}"])
    assert result.exit_code == 0, result.output
    assert (sweep / "report" / "results.md").is_file()
    runs = sorted(p.name for p in (sweep / "report" / "tensorboard" / "CartPole-v1__ppo").iterdir())
    assert runs == ["dense__seed0", "l1_structured@0.95__seed0"]
    widths = [_scalars(sweep / "report" / "tensorboard" / "CartPole-v1__ppo" / run, f"compare/{TASK}/width") for run in runs]
    assert {v for _, v in widths[0]} == {16.0} and widths[1][-1][1] < 16  # the deployed [8, 8] network, and narrowed


@pytest.mark.parametrize("missing", ["progress.csv", "evaluations.npz"])
def test_runs_without_progress_or_evaluations_still_draw_their_final_return(missing: str, tmp_path: Path) -> None:
    run = _run(tmp_path / "runs", "dsp", 0, [1.0, 2.0, 3.0])
    (run / missing).unlink()
    result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 0, result.output
    assert _scalars(tmp_path / "tb" / "CartPole-v1__ppo" / "dsp@0.75__seed0", f"compare/{TASK}/return")[-1] == (300, 3.0)
