"""Compact models and ONNX policies act exactly as the masked models they come from; export refuses bad runs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.core import NeuronMask, PrunableNet, mlp_layers
from prune_rl.core.surgery import shrink_
from prune_rl.sb3.deployed import DeployedPolicy, compact_model, export_onnx
from prune_rl.sb3.networks import prunable_nets

from conftest import fast, tiny_mlp

runner = CliRunner()
CASES = {
    "ppo-discrete": (PPO, "CartPole-v1", {"net_arch": {"pi": [16, 16], "vf": [16, 16]}}),
    "ppo-continuous": (PPO, "Pendulum-v1", {"net_arch": {"pi": [16, 16], "vf": [16, 16]}}),
    "a2c": (A2C, "CartPole-v1", {"net_arch": {"pi": [16, 16], "vf": [16, 16]}}),
    "dqn": (DQN, "CartPole-v1", {"net_arch": [16, 16]}),
    "sac": (SAC, "Pendulum-v1", {"net_arch": [16, 16]}),
    "td3": (TD3, "Pendulum-v1", {"net_arch": [16, 16]}),
}


def _masked(case: str, seed: int = 0):
    """A freshly built model whose every network loses random neurons (a different number per critic)."""
    cls, env_id, policy_kwargs = CASES[case]
    extra = {"learning_starts": 0, "buffer_size": 100} if cls in (DQN, SAC, TD3) else {}
    model = cls("MlpPolicy", env_id, policy_kwargs=policy_kwargs, seed=seed, device="cpu", **extra)
    generator = torch.Generator().manual_seed(seed)
    for i, net in enumerate(prunable_nets(model)):
        for layer in net.layers:
            alive = torch.zeros(layer.n_neurons, dtype=torch.bool)
            alive[torch.randperm(layer.n_neurons, generator=generator)[: 3 + i]] = True
            NeuronMask(layer, alive).apply_()
    return model


def _observations(model, n: int = 3000) -> np.ndarray:
    space = model.observation_space
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, *space.shape)) * np.minimum(np.abs(space.high), 3.0)).astype(np.float32)


def _same(actions: np.ndarray, reference: np.ndarray, discrete: bool) -> None:
    if discrete:
        assert np.array_equal(actions.reshape(-1), reference.reshape(-1))
    else:
        np.testing.assert_allclose(actions, reference, atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_a_compact_model_acts_as_the_masked_one_with_fewer_parameters(case: str) -> None:
    model = _masked(case)
    compact = compact_model(model)
    obs = _observations(model)
    discrete = case in ("ppo-discrete", "a2c", "dqn")
    _same(compact.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0], discrete)
    assert sum(p.numel() for p in compact.policy.parameters()) < sum(p.numel() for p in model.policy.parameters())
    states = torch.as_tensor(obs)
    with torch.no_grad():
        if case in ("sac", "td3"):  # critics and their targets, padded to the widest critic (4 of 16 neurons)
            actions = torch.as_tensor(model.predict(obs, deterministic=True)[0])
            for a, b in zip(compact.critic(states, actions), model.critic(states, actions), strict=True):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
            for a, b in zip(compact.critic_target(states, actions), model.critic_target(states, actions), strict=True):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
            assert compact.policy_kwargs["net_arch"] == {"pi": [3, 3], "qf": [5, 5]}
        if case == "dqn":
            torch.testing.assert_close(compact.q_net_target(states), model.q_net_target(states))
        if case.startswith("ppo"):
            torch.testing.assert_close(compact.policy.predict_values(states), model.policy.predict_values(states))


def test_shrinking_folds_a_neuron_without_inputs_into_the_next_bias() -> None:
    mlp = tiny_mlp(hidden=(6, 6))
    layers, linears = mlp_layers("pi", mlp)
    net = PrunableNet("pi", "policy", layers, linears)
    states = torch.randn(32, 3)
    with torch.no_grad():
        mlp[0].weight[2] = 0  # neuron 2 of the first layer: no inputs, a constant tanh(bias)
        mlp[2].weight[:, 4] = 0  # neuron 4 of the first layer: no outputs
        before = mlp(states)
    keep = [torch.tensor([True, True, False, True, False, True]), torch.ones(6, dtype=torch.bool)]
    shrink_(net, keep, torch.tanh)
    assert mlp[0].out_features == 4 and mlp[2].in_features == 4
    torch.testing.assert_close(mlp(states), before)
    with pytest.raises(ValueError, match="still has incoming and outgoing weights"):
        shrink_(net, [torch.tensor([False, True, True, True]), torch.ones(6, dtype=torch.bool)], torch.tanh)


def test_the_compact_zip_loads_with_plain_sb3(tmp_path: Path) -> None:
    model = _masked("ppo-discrete")
    compact_model(model).save(tmp_path / "compact.zip")
    code = (
        "import sys; from stable_baselines3 import PPO; "
        f"m = PPO.load({str(tmp_path / 'compact.zip')!r}, device='cpu'); "
        "assert 'prune_rl' not in sys.modules; print(m.policy_kwargs['net_arch'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stdout.strip() == "{'pi': [3, 3], 'vf': [4, 4]}"


@pytest.mark.parametrize(("case", "normalize"), [("ppo-discrete", False), ("ppo-continuous", True), ("dqn", False),
                                                 ("sac", True), ("td3", False)])  # fmt: skip
def test_the_onnx_policy_matches_predict_on_raw_observations(case: str, normalize: bool, tmp_path: Path) -> None:
    import onnxruntime

    model = compact_model(_masked(case))
    vecnormalize = None
    if normalize:
        vecnormalize = VecNormalize(make_vec_env(CASES[case][1], n_envs=1, seed=0), clip_obs=2.0)
        vecnormalize.obs_rms.update(_observations(model, 500) * 2 + 1)  # statistics away from 0 and 1
    export_onnx(DeployedPolicy(model, vecnormalize), tmp_path / "policy.onnx")
    raw = _observations(model)
    seen = vecnormalize.normalize_obs(raw) if vecnormalize is not None else raw
    session = onnxruntime.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    actions = session.run(None, {"obs": raw})[0]
    _same(actions, model.predict(seen, deterministic=True)[0], discrete=case in ("ppo-discrete", "dqn"))


def _trained(tmp_path: Path, pruning: str = "l1_structured", *extra: str) -> Path:
    out = tmp_path / pruning
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole", pruning), *extra, f"hydra.run.dir={out}"])
    assert result.exit_code == 0, result.output
    return out


QUICK = ["--repeats", "2", "--min-run-time", "0.001", "--episodes", "2"]  # timings and returns, kept tiny


def test_export_writes_every_format_and_a_cost_card(tmp_path: Path) -> None:
    run = _trained(tmp_path)
    result = runner.invoke(app, ["export", str(run), *QUICK])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "export" / "cost.json").read_text())
    assert card["formats"] == ["onnx", "int8", "c"]
    assert card["check"]["compact"] == {"identical": 1.0} and card["check"]["onnx"] == {"identical": 1.0}
    if shutil.which("cc") is not None:
        assert card["check"]["c"] == {"identical": 1.0}
    assert card["compact"]["params"] < card["dense"]["params"] and card["ratios"]["flops"] > 1
    assert card["dense"]["flops"] == 2 * (4 * 8 + 8 * 8 + 8 * 2)  # the [8, 8] policy of the fast config, batch 1
    runtimes = ["torch", "onnxruntime", "onnxruntime_int8"] + (["c"] if shutil.which("cc") else [])
    assert list(card["compact"]["runtimes"]) == list(card["dense"]["runtimes"]) == list(card["speedup"]) == runtimes
    for cost in (card["dense"], card["compact"]):
        for measured in cost["runtimes"].values():
            for times in (measured["latency_us"], measured["batch_ms"]):
                assert 0 < times["min"] <= times["median"] <= times["max"]
    onnx, int8 = card["compact"]["runtimes"]["onnxruntime"], card["compact"]["runtimes"]["onnxruntime_int8"]
    assert int8["weight_bytes"] < onnx["weight_bytes"]
    assert card["int8"]["weight_bytes_ratio"] == pytest.approx(int8["weight_bytes"] / onnx["weight_bytes"])
    assert card["int8"]["returns"]["episodes"] == 2 and "identical" in card["int8"]["agreement_with_float"]
    files = {p.name for p in (run / "export").iterdir()}
    assert {"policy.onnx", "policy.int8.onnx", "policy.h", "policy.c", "policy_bench.c", "compact.zip"} <= files
    assert "policy.onnx.data" not in files and "fewer FLOPs" in result.output and "int8 return" in result.output


def test_export_writes_the_formats_asked_for(tmp_path: Path) -> None:
    run = _trained(tmp_path)
    result = runner.invoke(app, ["export", str(run), "--format", "onnx", "-f", "c", *QUICK])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "export" / "cost.json").read_text())
    assert card["formats"] == ["onnx", "c"] and "int8" not in card and "onnxruntime_int8" not in card["compact"]["runtimes"]
    assert (run / "export" / "policy.c").is_file() and not (run / "export" / "policy.int8.onnx").exists()
    result = runner.invoke(app, ["export", str(run), "--format", "int8,onnx", *QUICK])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "export" / "cost.json").read_text())["formats"] == ["onnx", "int8"]
    assert (run / "export" / "policy.int8.onnx").is_file() and not (run / "export" / "policy.c").exists()
    result = runner.invoke(app, ["export", str(run), "--format", "onnx,tflite"])
    assert result.exit_code == 2 and "unknown export format tflite (known: onnx, int8, c)" in result.output


def test_a_run_shrunk_while_training_is_measured_against_the_dense_network_it_replaced(tmp_path: Path) -> None:
    run = _trained(tmp_path, "l1_structured", "pruning.shrink=true")
    result = runner.invoke(app, ["export", str(run), "--format", "onnx", *QUICK])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "export" / "cost.json").read_text())
    assert card["check"]["compact"] == {"identical": 1.0} and card["check"]["onnx"] == {"identical": 1.0}
    assert card["dense"]["flops"] == 2 * (4 * 8 + 8 * 8 + 8 * 2) and card["ratios"]["flops"] > 1
    masks = torch.load(run / "masks.pt")
    assert card["net_arch"]["pi"] == [int(masks["pi.0"].sum()), int(masks["pi.1"].sum())]


def test_export_refuses_bad_runs_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 2 and "is not a run directory: config.yaml is missing" in result.output
    dense = _trained(tmp_path, "none")
    result = runner.invoke(app, ["export", str(dense)])
    assert result.exit_code == 2 and "has no masks.pt: it is a dense run" in result.output
    pruned = _trained(tmp_path)
    (pruned / "model.zip").write_bytes(b"not a zip")
    result = runner.invoke(app, ["export", str(pruned)])
    assert result.exit_code == 2 and "model.zip does not load" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_onnx_policy_clips_to_bounds_that_differ_per_dimension(tmp_path: Path) -> None:
    import onnxruntime
    from gymnasium import spaces

    model = PPO("MlpPolicy", make_vec_env("LunarLander-v3", env_kwargs={"continuous": True}), device="cpu", seed=0)
    bounds = spaces.Box(np.array([-0.2, -0.5], dtype=np.float32), np.array([0.1, 0.5], dtype=np.float32))
    model.action_space = model.policy.action_space = bounds  # (vector bounds: Min and Max, not a scalar Clip)
    export_onnx(DeployedPolicy(model), tmp_path / "policy.onnx")
    raw = _observations(model)
    session = onnxruntime.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    actions = session.run(None, {"obs": raw})[0]
    _same(actions, model.predict(raw, deterministic=True)[0], discrete=False)
    assert actions[:, 0].max() <= 0.1 and actions[:, 0].min() >= -0.2
