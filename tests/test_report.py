"""prune-rl report: tables and plots over any set of run directories; one clear line when there is none."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.report import collect, write_report
from prune_rl.report.plots import frontier, frontier_means, over_training
from prune_rl.report.tables import markdown, rows

from conftest import fast, train_cfg

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _run(root: Path, method: str, seed: int, final: float, curve: list[float], kept: int | None = None) -> Path:
    """A run directory as `prune-rl train` writes it, with made-up numbers."""
    path = root / f"{method}_{seed}"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("seed: 0\n" + ("pruning:\n  sparsity: 0.9\n" if kept is not None else ""))
    sparsity = None
    if kept is not None:
        sparsity = {"pi": {"role": "policy", "neuron_sparsity": 0.9, "weight_sparsity": 0.99, "compact_weights": kept,
                           "alive_per_layer": {"pi.0": 4, "pi.1": 4}}}  # fmt: skip
        with (path / "progress.csv").open("w") as f:
            f.write("time/total_timesteps,prune/alive/pi.0,prune/alive/pi.1\n100,64,64\n200,8,4\n300,4,4\n")
    results = {"env_id": "CartPole-v1", "algo": "ppo", "pruning": method, "seed": seed, "n_timesteps": 300,
               "eval": {"mean_return": final}, "sparsity": sparsity}  # fmt: skip
    (path / "results.json").write_text(json.dumps(results))
    np.savez(path / "evaluations.npz", timesteps=np.array([100, 200, 300]), results=np.array([[c, c] for c in curve]))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "multirun"
    _run(root, "none", 0, 400.0, [100, 200, 400])
    _run(root, "none", 1, 500.0, [100, 300, 500])
    _run(root, "dsp", 0, 450.0, [50, 250, 450], kept=30)
    _run(root, "dsp", 1, 350.0, [50, 150, 350], kept=40)
    (root / "not_a_run").mkdir()
    return root


def test_the_table_gives_mean_std_and_the_ratio_to_dense_over_seeds(runs: Path, tmp_path: Path) -> None:
    write_report([runs], tmp_path / "report")
    with (tmp_path / "report" / "results.csv").open() as f:
        dense, dsp = list(csv.DictReader(f))
    assert (dense["method"], dense["seeds"], dense["n"], dense["return"], dense["std"], dense["ratio"]) == (
        "none",
        "0,1",
        "2",
        "450.0",
        "70.71",  # the sample standard deviation: sqrt((50^2 + 50^2) / (2 - 1))
        "1.0",
    )
    assert (dsp["method"], dsp["target"], dsp["return"], dsp["ratio"], dsp["kept_weights"]) == (
        "dsp",
        "0.9",
        "400.0",
        "0.889",
        "35",
    )
    text = (tmp_path / "report" / "results.md").read_text()
    # the interval over seeds: of two seeds each, the extremes (350 / 500, 450 / 400) come up 1 in 16 resamples
    assert (
        "| CartPole-v1 | ppo | 300 | dsp | 0.9 | 0,1 | 2 | 400.0 ± 70.71 | 0.889 [0.7, 1.125] | 0.9 | 0.99 | 35 | - |" in text
    )
    assert text.startswith(f"<!-- written by: prune-rl report {runs} --out {tmp_path / 'report'}")
    # across tasks: dsp's scores 450 / 450 and 350 / 450; of two scores none is cut, so the IQM is their mean
    assert "| dsp | 0.9 | 1 | 2 | 0.889 [0.778, 1.0] |" in text
    assert (dsp["ratio_low"], dsp["ratio_high"]) == ("0.7", "1.125")


def test_the_plots_draw_the_runs_numbers(runs: Path, tmp_path: Path) -> None:
    records = collect([runs])
    returns = over_training(records, "curve")[("CartPole-v1", "ppo")]
    np.testing.assert_allclose(returns["none"][1], [100, 250, 450])
    np.testing.assert_allclose(returns["dsp@0.9"][2], [0, 50, 50])  # the band: one std over seeds
    neurons = over_training(records, "neurons")[("CartPole-v1", "ppo")]
    assert set(neurons) == {"dsp@0.9"} and list(neurons["dsp@0.9"][1]) == [128, 12, 8]
    points = frontier(records)[("CartPole-v1", "ppo")]
    assert points == {"dsp": [(30.0, 450.0, 0.9), (40.0, 350.0, 0.9)]}
    assert frontier_means(points["dsp"]) == [(35.0, 400.0)]  # the line: one point per target sparsity
    write_report([runs], tmp_path / "report")
    import matplotlib.image

    for name in ("returns.png", "neurons.png", "frontier.png", "profile.png"):
        pixels = matplotlib.image.imread(tmp_path / "report" / name)
        assert pixels.shape[0] > 100 and pixels.std() > 0.05  # drawn, not blank


def test_report_reads_real_runs_through_the_cli(tmp_path: Path) -> None:
    for pruning in ("none", "l1_structured"):
        result = runner.invoke(
            app, ["train", *fast("ppo", "cartpole", pruning), f"hydra.run.dir={tmp_path / 'runs' / pruning}"]
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "2 rows over 2 runs" in result.output
    rows = list(csv.DictReader((tmp_path / "runs" / "report" / "results.csv").open()))
    assert [r["method"] for r in rows] == ["none", "l1_structured"] and float(rows[1]["weight_sparsity"]) > 0.5


def test_report_refuses_a_folder_without_runs_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and f"no run directory (with results.json and config.yaml) under {tmp_path}" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_runs_of_one_method_at_two_budgets_are_drawn_apart(tmp_path: Path) -> None:
    """A fine-tuning by `prune-rl prune` beside the same method's training run is not averaged with it as a seed."""
    from prune_rl.report.collect import RunRecord

    def record(n_timesteps: int, method: str) -> RunRecord:
        steps = np.array([n_timesteps / 2, n_timesteps])
        return RunRecord(path=tmp_path, env="CartPole-v1", algo="ppo", method=method, target=None, seed=0,
                         n_timesteps=n_timesteps, final_return=1.0, curve=(steps, np.array([1.0, 2.0])))  # fmt: skip

    series = over_training([record(100, "none"), record(1000, "none")], "curve")[("CartPole-v1", "ppo")]
    assert set(series) == {"none (1000 steps)", "none (100 steps)"}
    assert over_training([record(100, "none")], "curve")[("CartPole-v1", "ppo")].keys() == {"none"}


def test_two_runs_of_one_configuration_and_seed_are_refused_not_averaged(runs: Path, tmp_path: Path) -> None:
    """One dense baseline per configuration: a rerun of dense seed 0 (another sweep) would shift every ratio."""
    shutil.copytree(runs / "none_0", tmp_path / "other_sweep" / "none_0")
    result = runner.invoke(app, ["report", str(runs), str(tmp_path / "other_sweep"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert f"two runs of CartPole-v1 ppo none seed 0 at 300 steps: {runs / 'none_0'} and" in result.output


def test_summaries_are_small_and_give_the_same_report(runs: Path, tmp_path: Path) -> None:
    (runs / "dsp_0" / "model.zip").write_bytes(b"x" * 1000)  # what a summary leaves behind
    result = runner.invoke(app, ["report", str(runs), "--summaries", str(tmp_path / "sum"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "sum").iterdir()) == ["dsp_0", "dsp_1", "none_0", "none_1"]
    assert sorted(p.name for p in (tmp_path / "sum" / "dsp_0").iterdir()) == [
        "config.yaml", "evaluations.npz", "progress.csv", "results.json"]  # fmt: skip
    write_report([runs], tmp_path / "b")
    assert (tmp_path / "a" / "results.csv").read_text() == (tmp_path / "b" / "results.csv").read_text()
    assert (
        (tmp_path / "a" / "results.md")
        .read_text()
        .startswith(f"<!-- written by: prune-rl report {tmp_path / 'sum'} --out {tmp_path / 'a'}; from new runs: ")
    )
    assert [r.neurons[1].tolist() for r in collect([tmp_path / "sum"]) if r.method == "dsp"] == [[128, 12, 8]] * 2
    # written again from other runs, the folder's summaries are replaced, not added to
    shutil.rmtree(runs / "dsp_1")
    result = runner.invoke(app, ["report", str(runs), "--summaries", str(tmp_path / "sum"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0 and not (tmp_path / "sum" / "dsp_1").exists()


def test_the_committed_summaries_reproduce_the_readme_table_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """results/report/ and the README's Results table are what `prune-rl report results/runs` writes today."""
    monkeypatch.chdir(ROOT)
    write_report(["results/runs"], tmp_path)
    committed = (ROOT / "results" / "report" / "results.md").read_text()
    assert committed.startswith(
        "<!-- written by: prune-rl report results/runs --out results/report; "
        "from new runs: prune-rl report RUN_DIRS... --summaries results/runs --out results/report -->"
    )
    written = (tmp_path / "results.md").read_text()
    assert written.split("\n", 1)[1] == committed.split("\n", 1)[1]
    readme = (ROOT / "README.md").read_text().split("## Results", 1)[1].split("\n## ", 1)[0]
    table = [line for line in readme.splitlines() if line.startswith("|")]
    default = train_cfg([]).pruning  # the README shows the default's rows: what `prune-rl train env=...` gets
    everything = rows(collect([ROOT / "results" / "runs"]))
    shown = [r for r in everything if (r["method"], r["target"]) == (default.name, default.sparsity)]
    assert table and "\n".join(table) + "\n" == markdown(shown)
