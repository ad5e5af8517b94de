"""The dense-vs-pruned benchmark script: resumable, refuses to mix configs, writes its tables."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, FAST_ALGO, FAST_PRUNING, load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark_pruning.py"


def test_differences_names_changed_added_and_removed_keys() -> None:
    bench = load_script("benchmark_pruning")
    old = {"seed": 0, "pruning": {"name": "dsp", "sparsity": 0.95, "begin": 0.1}}
    new = {"seed": 0, "pruning": {"name": "dsp", "sparsity": 0.9, "allocation": "layer"}}
    assert bench.differences(old, new) == [
        "pruning.allocation: <absent> -> layer",
        "pruning.begin: 0.1 -> <absent>",
        "pruning.sparsity: 0.95 -> 0.9",
    ]
    assert bench.differences(old, old) == []


def _bench(root: Path, *extra: str) -> str:
    fast = [o for o in [*FAST, *FAST_ALGO["ppo"], *FAST_PRUNING] if not o.startswith(("n_timesteps", "progress_bar"))]
    cmd = [sys.executable, str(SCRIPT), "--envs", "cartpole", "--seeds", "0", "--methods", "dsp"]
    cmd += ["--n-timesteps", "256", "--root", str(root), "--table", str(root / "table.md"), *fast, *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_benchmark_resumes_and_retrains_only_stale_runs(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "cartpole__ppo__dsp__seed0_256"
    out = _bench(tmp_path)
    assert "run: train env=cartpole algo=ppo pruning=dsp seed=0" in out
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert [(r["env"], r["seeds_pruned"], r["timesteps"]) for r in rows] == [("CartPole-v1", "1", "256")]
    assert (tmp_path / "table.md").read_text().count("| CartPole-v1 | ppo | 256 |") == 1

    assert "skip (done): cartpole__ppo__dsp__seed0_256" in _bench(tmp_path)

    out = _bench(tmp_path, "eval.n_episodes=3")  # the same run, composed differently: stale, kept by default
    assert "stale: cartpole__ppo__dsp__seed0_256" in out and "eval.n_episodes: 2 -> 3" in out
    assert "run:" not in out and (run / "results.json").is_file()

    out = _bench(tmp_path, "--rerun-stale", "eval.n_episodes=3")
    assert "run: train" in out
    assert (run / "results.json").is_file()
    assert len(list((tmp_path / "stale").glob("cartpole__ppo__dsp__seed0_256.*/results.json"))) == 1


def test_eval_episodes_evaluates_every_run_again_once_and_tabulates_it(tmp_path: Path) -> None:
    _bench(tmp_path)
    run = tmp_path / "runs" / "cartpole__ppo__dsp__seed0_256"
    final = json.loads((run / "results.json").read_text())["eval"]
    [row] = csv.DictReader(open(tmp_path / "table.csv"))
    assert row["eval_episodes"] == str(final["n_episodes"])

    out = _bench(tmp_path, "--table-only", "--eval-episodes", "3")
    assert "evaluated cartpole__ppo__dsp__seed0_256 over 3 episodes" in out
    again = json.loads((run / "eval_3ep.json").read_text())
    assert again["n_episodes"] == 3 and again["env_id"] == "CartPole-v1"
    [row] = csv.DictReader(open(tmp_path / "table.csv"))
    assert row["eval_episodes"] == "3" and row["return_pruned"] == f"{again['mean_return']:.1f}"
    [record] = csv.DictReader(open(tmp_path / "table_runs.csv"))  # the run behind the row, at full precision
    assert (record["method"], record["seed"], record["eval_episodes"]) == ("dsp", "0", "3")
    assert float(record["mean_return"]) == again["mean_return"] and "--eval-episodes 3" in record["written_by"]

    assert "evaluated" not in _bench(tmp_path, "--table-only", "--eval-episodes", "3")  # cached


def test_the_table_goes_into_the_root_unless_told_otherwise(tmp_path: Path) -> None:
    _bench(tmp_path)
    repo_table = ROOT / "results" / "pruning_benchmark.md"
    before = repo_table.read_text() if repo_table.is_file() else None
    cmd = [sys.executable, str(SCRIPT), "--table-only", "--root", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = csv.DictReader(open(tmp_path / "pruning_benchmark.csv"))
    assert row["env"] == "CartPole-v1"
    # tabled without the fast overrides it was trained with: tabled, and reported as made with another config
    assert "stale: cartpole__ppo__dsp__seed0_256 was trained with another config" in done.stdout
    assert (tmp_path / "pruning_benchmark.md").read_text().startswith("<!-- written by: python ")
    assert (repo_table.read_text() if repo_table.is_file() else None) == before  # a tuning root never writes it


def test_a_table_covers_only_the_tasks_and_algorithm_the_command_names(tmp_path: Path) -> None:
    import shutil

    _bench(tmp_path)
    runs = tmp_path / "runs"
    for name, key, value in [("lunarlander__ppo", "env_id", "LunarLander-v3"), ("cartpole__a2c", "algo", "a2c")]:
        copy = runs / f"{name}__dsp__seed0_256"
        shutil.copytree(runs / "cartpole__ppo__dsp__seed0_256", copy)
        results = json.loads((copy / "results.json").read_text()) | {key: value}
        (copy / "results.json").write_text(json.dumps(results))
    bench = load_script("benchmark_pruning")

    def tasks(**kwargs: object) -> list[tuple[str, str]]:
        return [(r["env"], r["algo"]) for r in bench.table(tmp_path, **kwargs)]

    assert tasks() == [("CartPole-v1", "a2c"), ("CartPole-v1", "ppo"), ("LunarLander-v3", "ppo")]
    assert tasks(envs=["cartpole"], algo="ppo") == [("CartPole-v1", "ppo")]
    assert tasks(envs=["lunarlander", "hopper"]) == [("LunarLander-v3", "ppo")]

    # --merge with --envs rewrites only that task's rows: the others keep the command that wrote them
    table = tmp_path / "table.md"
    base = [sys.executable, str(SCRIPT), "--table-only", "--root", str(tmp_path), "--table", str(table), "--merge"]
    for envs in (["cartpole", "lunarlander"], ["lunarlander"]):
        done = subprocess.run([*base, "--envs", *envs], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    header = table.read_text().splitlines()[:2]
    assert header[0].startswith("<!-- CartPole-v1 ppo 256 written by: ") and "--envs cartpole lunarlander" in header[0]
    assert header[1].startswith("<!-- LunarLander-v3 ppo 256 written by: ") and header[1].endswith("--envs lunarlander -->")


def _row(env: str, timesteps: int, ratio: str) -> dict:
    return {"env": env, "algo": "ppo", "timesteps": timesteps, "return_ratio": ratio}


def test_merge_replaces_only_the_tasks_it_has_rows_for_and_says_who_wrote_each(tmp_path: Path) -> None:
    bench = load_script("benchmark_pruning")
    out = tmp_path / "table.md"
    bench.write_tables([_row("CartPole-v1", 100, "1.000"), _row("Walker2d-v5", 500, "0.795")], out, "first")
    bench.write_tables([_row("Walker2d-v5", 500, "1.012")], out, "second", merge_into=True)
    assert [(r["env"], r["return_ratio"]) for r in csv.DictReader(open(out.with_suffix(".csv")))] == [
        ("CartPole-v1", "1.000"),
        ("Walker2d-v5", "1.012"),
    ]
    text = out.read_text()
    assert "<!-- CartPole-v1 ppo 100 written by: first -->" in text
    assert "<!-- Walker2d-v5 ppo 500 written by: second -->" in text
    assert text.count("| Walker2d-v5 |") == 1

    # a merged table's per-row commands survive the next merge; a new budget is a new row, sorted in
    bench.write_tables([_row("Walker2d-v5", 200, "0.900")], out, "third", merge_into=True)
    rows = bench.read_table(out)
    assert [bench._key(r) for r in rows[0]] == ["CartPole-v1 ppo 100", "Walker2d-v5 ppo 200", "Walker2d-v5 ppo 500"]
    assert rows[1] == {"CartPole-v1 ppo 100": "first", "Walker2d-v5 ppo 200": "third", "Walker2d-v5 ppo 500": "second"}

    bench.write_tables([_row("Hopper-v5", 500, "1.092")], out, "fourth")  # without --merge: only its own rows
    assert [r["env"] for r in csv.DictReader(open(out.with_suffix(".csv")))] == ["Hopper-v5"]
    assert out.read_text().startswith("<!-- written by: fourth -->\n")


def _record(method: str, seed: int, ret: float, config: str = "a", by: str = "first") -> dict:
    sparse = method == "dsp"
    return {
        "env": "Walker2d-v5",
        "algo": "ppo",
        "timesteps": 1000,
        "method": method,
        "seed": seed,
        "eval_episodes": 50,
        "mean_return": ret,
        "std_return": 1.0,
        "policy_neurons": 512 if sparse else "",
        "policy_alive_neurons": 24 if sparse else "",
        "policy_neuron_sparsity": 0.953125 if sparse else "",
        "policy_weight_sparsity": 0.99 if sparse else "",
        "value_neuron_sparsity": 0.5 if sparse else "",
        "value_weight_sparsity": 0.7 if sparse else "",
        "config": config,
        "written_by": by,
    }


def test_the_config_digest_tells_settings_apart_and_not_seeds() -> None:
    bench = load_script("benchmark_pruning")

    def digest(method: str, seed: int, *extra: str) -> str:
        return bench.config_digest(bench.composed(bench.overrides("cartpole", "ppo", method, seed, None, list(extra))))

    assert digest("dsp", 0) == digest("dsp", 3)
    assert len({digest("dsp", 0), digest("none", 0), digest("dsp", 0, "pruning.repair.fan_in_lr=0.5")}) == 3


def test_merge_gathers_a_tasks_seeds_from_the_runs_file_and_leaves_out_other_configs(tmp_path: Path) -> None:
    bench = load_script("benchmark_pruning")
    out = tmp_path / "table.md"

    def write(records: list[dict], by: str) -> dict:
        bench.write_tables(bench.aggregate(records), out, by, merge_into=True, records=records)
        [row] = csv.DictReader(open(out.with_suffix(".csv")))
        return row

    first = [_record("none", 0, 100.0), _record("dsp", 0, 90.0)]
    assert write(first, "first")["return_ratio"] == "0.900"
    # seed 1 from another machine's root (seed 0's run directories are not there): the row has both seeds
    row = write([_record("none", 1, 300.0, by="second"), _record("dsp", 1, 330.0, by="second")], "second")
    assert (row["seeds_dense"], row["seeds_pruned"], row["return_ratio"]) == ("2", "2", "1.050")
    assert row["return_dense"] == "200.0 ± 100.0" and row["policy_alive_neurons"] == "24/24 of 512"
    runs = list(csv.DictReader(open(tmp_path / "table_runs.csv")))
    assert [(r["method"], r["seed"], r["written_by"]) for r in runs] == [
        ("dsp", "0", "first"),
        ("dsp", "1", "second"),
        ("none", "0", "first"),
        ("none", "1", "second"),
    ]
    # a seed trained again replaces its record; pruned runs of another setting keep the old ones out of the row
    row = write([_record("dsp", 1, 150.0, config="b", by="third")], "third")
    assert (row["seeds_dense"], row["seeds_pruned"], row["return_ratio"]) == ("2", "1", "0.750")
    assert len(list(csv.DictReader(open(tmp_path / "table_runs.csv")))) == 4  # seed 0's pruned record is kept


@pytest.mark.parametrize(
    ("path", "other"),
    [
        (("pruning", "repair", "fold"), "linear"),
        (("pruning", "repair", "fan_in_lr"), 1.0),
        (("pruning", "schedule"), "geometric"),
        (("pruning", "repair", "distill_steps"), 50),
    ],
)
def test_a_run_made_before_a_key_existed_is_read_with_that_keys_old_behaviour(
    path: tuple[str, ...], other: object, tmp_path: Path
) -> None:
    from omegaconf import OmegaConf

    bench = load_script("benchmark_pruning")
    assert path in bench.ADDED_KEYS
    overrides = bench.overrides("cartpole", "ppo", "dsp", 0, None, [])
    saved = bench.composed(overrides)
    del bench._node(saved, path[:-1])[path[-1]]  # written before the key was added
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "config.yaml")
    assert bench.stale(tmp_path, overrides) == []
    key = ".".join(path)
    assert bench.stale(tmp_path, [*overrides, f"{key}={other}"]) == [f"{key}: {bench.ADDED_KEYS[path]} -> {other}"]


def test_a_run_made_when_compensate_was_a_switch_is_not_stale(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    bench = load_script("benchmark_pruning")
    overrides = bench.overrides("cartpole", "ppo", "dsp", 0, None, ["pruning.repair.fold=mean"])
    saved = bench.composed(overrides)
    pruning = saved["pruning"]  # how the same setting was written before 2026-11-22: one flat section
    repair = pruning.pop("repair")
    pruning.update(compensate=True, fan_in_lr=repair["fan_in_lr"], distill_steps=repair["distill_steps"])
    pruning.update(distill_lr=repair["distill_lr"], allocation="layer")
    pruning["regularizer"] = {k: pruning.pop(k) for k in ("strength", "value_strength", "gamma")}
    del pruning["method"]
    OmegaConf.save(OmegaConf.create(saved), tmp_path / "config.yaml")
    assert bench.stale(tmp_path, overrides) == []
    linear = [*overrides, "pruning.repair.fold=linear"]
    assert bench.stale(tmp_path, linear) == ["pruning.repair.fold: mean -> linear"]


def test_an_added_key_is_not_read_into_a_config_that_never_has_it(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    bench = load_script("benchmark_pruning")
    overrides = bench.overrides("cartpole", "ppo", "none", 0, None, [])
    OmegaConf.save(OmegaConf.create(bench.composed(overrides)), tmp_path / "config.yaml")
    assert bench.stale(tmp_path, overrides) == []  # a dense run has no pruning.compensate, then or now


def test_merge_refuses_a_table_with_other_columns(tmp_path: Path) -> None:
    bench = load_script("benchmark_pruning")
    out = tmp_path / "table.md"
    bench.write_tables([_row("CartPole-v1", 100, "1.000") | {"old_column": "x"}], out, "first")
    with pytest.raises(SystemExit, match="other columns"):
        bench.write_tables([_row("CartPole-v1", 100, "0.990")], out, "second", merge_into=True)
    assert "first" in out.read_text()  # left as it was


def test_runs_train_this_checkouts_code_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `python -m prune_rl.cli` imports prune_rl from its working directory: run from another checkout, the
    # script would have trained that checkout's code while its stale check composed this one's configs.
    bench = load_script("benchmark_pruning")
    calls: list[tuple[list[str], dict]] = []

    def call(cmd: list[str], **kwargs: object) -> int:
        calls.append((cmd, kwargs))
        return 0

    monkeypatch.setattr(bench.subprocess, "call", call)
    monkeypatch.chdir(tmp_path)
    out = bench.train(Path("root"), "cartpole", "ppo", "none", 0, 1000, [], False)
    ((cmd, kwargs),) = calls
    assert kwargs["cwd"] == ROOT
    assert cmd[-1] == f"hydra.run.dir={tmp_path / 'root' / 'runs' / out.name}"
    assert str(ROOT) == bench.sys.path[0]


def test_a_key_added_at_its_old_behaviour_leaves_the_digest_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_script("benchmark_pruning")
    config = bench.composed(bench.overrides("cartpole", "ppo", "dsp", 0, None, []))
    before = bench.config_digest(config)
    config["pruning"]["new_key"] = 7  # a key added later, at the value that repeats what runs did without it
    monkeypatch.setitem(bench.ADDED_KEYS, ("pruning", "new_key"), 7)
    assert bench.config_digest(config) == before
    config["pruning"]["new_key"] = 8  # a run that sets it otherwise is another setting
    assert bench.config_digest(config) != before
