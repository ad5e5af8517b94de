"""The command line, through Typer's CliRunner and as a subprocess."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prune_rl.cli import app

from conftest import fast

runner = CliRunner()


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prune_rl.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "prune", "evaluate", "report", "board"):
        assert command in result.output


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys, prune_rl.cli; from typer.testing import CliRunner; CliRunner().invoke(prune_rl.cli.app, ['--help']);"
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'hydra') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_through_typer(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole"), f"hydra.run.dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["run_name"] == "cartpole__ppo__dsp__seed0"
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "model.zip").is_file() and (tmp_path / "masks.pt").is_file()
    assert "${" not in (tmp_path / "config.yaml").read_text()  # resolved


def test_print_config_passes_through_to_hydra() -> None:
    result = runner.invoke(app, ["train", "--cfg", "job", "env=walker2d"])
    assert result.exit_code == 0, result.output
    assert "id: Walker2d-v5" in result.output


def test_multirun_writes_one_directory_per_job(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "-m", "seed=0,1", *fast("ppo", "cartpole"), f"hydra.sweep.dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert dirs == ["0_cartpole__ppo__dsp__seed0", "1_cartpole__ppo__dsp__seed1", "report"]  # the sweep's report
    assert all((tmp_path / d / "results.json").is_file() for d in dirs[:2])


def test_subprocess_train_then_evaluate(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = _cli("train", *fast("ppo", "hopper"), f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr
    assert (run_dir / "vecnormalize.pkl").is_file()
    evaluated = _cli("evaluate", str(run_dir), "--n-episodes", "2")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("Hopper-v5 ppo: return ")
    saved = json.loads((run_dir / "results.json").read_text())["eval"]["mean_return"]
    assert f"{saved:.2f}" in evaluated.stdout  # same seed, same episodes: same return


def test_joblib_multirun(tmp_path: Path) -> None:
    done = _cli(
        "train", "-m", "seed=0,1", "hydra/launcher=local", *fast("dqn", "cartpole", "none"), f"hydra.sweep.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("*/results.json"))) == 2


def test_evaluate_rejects_a_non_run_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not a run directory" in result.output


def test_wheel_ships_every_config(tmp_path: Path) -> None:
    """A non-editable install must find the configs: they are package data."""
    pytest.importorskip("setuptools")
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(root), "-w", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    import zipfile

    (wheel,) = tmp_path.glob("prune_rl-*.whl")
    shipped = {n.split("prune_rl/conf/", 1)[1] for n in zipfile.ZipFile(wheel).namelist() if "prune_rl/conf/" in n}
    on_disk = {str(p.relative_to(root / "prune_rl" / "conf")) for p in (root / "prune_rl" / "conf").rglob("*.yaml")}
    assert on_disk and on_disk <= shipped


def test_board_starts_tensorboard_on_the_run_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    class Child:  # a TensorBoard that exits at once
        def __init__(self, cmd: list[str]) -> None:
            calls.append(cmd)

        def wait(self, timeout: float | None = None) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Child)
    result = runner.invoke(app, ["board", str(tmp_path), "--port", "6123"])
    assert result.exit_code == 0, result.output
    (cmd,) = calls
    assert cmd[1:3] == ["-m", "tensorboard.main"]
    assert cmd[cmd.index("--logdir") + 1] == str(tmp_path) and cmd[cmd.index("--port") + 1] == "6123"


def test_board_rejects_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["board", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output


def _descendants(pid: int) -> dict[int, str]:
    """Every living process below ``pid``: ``{pid: start time}`` (from /proc, so that a reused pid is not mistaken)."""
    stats: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if fields[0] != "Z":  # fields[0] is the state, [1] the parent, [19] the start time
            stats[int(entry.name)] = (int(fields[1]), fields[19])
    below: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, start) in stats.items():
            if ppid == parent and child not in below:
                below[child] = start
                frontier.append(child)
    return below


def _alive(pid: int, start: str) -> bool:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == start


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_board_stops_tensorboard(signum: signal.Signals, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    with socket.socket() as probe:  # a free port, on the loopback only
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "board.log").open("w")
    board = subprocess.Popen(
        [sys.executable, "-m", "prune_rl.cli", "board", str(tmp_path), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log,
        stderr=log,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even if pytest runs in the background
    )
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 90
        while True:
            if board.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"TensorBoard did not start: {(tmp_path / 'board.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        children = _descendants(board.pid)
        assert children, "TensorBoard runs as a child of prune-rl"
        board.send_signal(signum)
        assert board.wait(timeout=30) == 128 + signum
        stderr = (tmp_path / "board.log").read_text().strip().splitlines()
        assert stderr[-1] == f"prune-rl: board stopped on {signum.name}; TensorBoard stopped with it"
        deadline = time.monotonic() + 10  # a grandchild (TensorBoard's data server) exits once its pipe closes
        while any(_alive(pid, start) for pid, start in children.items()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid, start in children.items() if _alive(pid, start)], "a TensorBoard process survived"
        with socket.socket() as again:  # the port is free again
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
    finally:  # whatever failed, leave no process behind
        if board.poll() is None:
            children.update(_descendants(board.pid))
        for pid, start in children.items():
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)
        if board.poll() is None:
            board.kill()
            board.wait()
        log.close()


PRUNING_OPTIONS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "pruning").glob("*.yaml"))


@pytest.mark.parametrize("option", PRUNING_OPTIONS)
def test_every_pruning_option_writes_a_loadable_model_whose_pruned_weights_are_zero(option: str, tmp_path: Path) -> None:
    import torch
    from stable_baselines3 import PPO

    from prune_rl.sb3.callback import load_masks
    from prune_rl.sb3.networks import prunable_nets

    sparsity = [] if option == "none" else ["pruning.sparsity=0.5", "pruning.value_sparsity=0.5"]
    constant = ["algo.learning_rate=0.001"]  # the zoo's rate decays to 0 at the end, where revival would not show
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole", option), *sparsity, *constant, f"hydra.run.dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["pruning"] == option and f"pruning/{option}.yaml" in results["config_files"]
    model = PPO.load(tmp_path / "model.zip", device="cpu")  # plain SB3
    if option == "none":
        assert results["sparsity"] is None and not (tmp_path / "masks.pt").exists()
        return
    assert results["sparsity"]["pi"]["weight_sparsity"] > 0.4
    masks = load_masks(tmp_path / "masks.pt")
    for net in prunable_nets(model):
        if f"{net.name}.linear0" in masks:  # unstructured: per weight
            for i, linear in enumerate(net.linears):
                assert torch.all(linear.weight[~masks[f"{net.name}.linear{i}"]] == 0)
        else:
            for layer in net.layers:
                assert torch.all(layer.group_norms()[~masks[layer.name]] == 0)


def test_in_a_sweep_an_invalid_job_fails_alone_and_the_sweep_exits_non_zero(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "-m", "algo.learning_rate=-1,0.0003", *fast("ppo", "cartpole"), f"hydra.sweep.dir={tmp_path}"]
    )
    assert result.exit_code != 0
    failed, done = sorted(tmp_path.glob("*_cartpole__*"))
    assert (failed / "error.txt").read_text() == "algo.learning_rate must be > 0, got -1\n"
    assert not (failed / "results.json").exists() and (done / "results.json").is_file()


def test_submitit_local_sweep_writes_two_complete_run_directories(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    done = _cli(
        "train", "-m", "hydra/launcher=submitit_local", "seed=0,1", *fast("ppo", "cartpole"), f"hydra.sweep.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr
    runs = sorted(p.parent for p in tmp_path.glob("*/results.json"))
    assert len(runs) == 2 and all((run / "model.zip").is_file() and (run / "masks.pt").is_file() for run in runs)
