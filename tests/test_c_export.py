"""The C policy compiles with the system's cc and acts as policy.onnx does on 2000 observations, for every policy
that export writes, with and without VecNormalize; a policy that is not an MLP is refused."""

import shutil
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from prune_rl.runner.export import observations
from prune_rl.sb3.c_export import c_actions, c_float, c_sources, compile_c, write_c
from prune_rl.sb3.deployed import DeployedPolicy, compact_model, export_onnx

from test_export import CASES, _masked, _observations

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")


def test_floats_are_written_so_that_they_read_back_exactly() -> None:
    values = np.random.default_rng(0).normal(size=1000).astype(np.float32) * 10.0 ** np.arange(-20, 20, 0.04)[:1000]
    for value in [*values, 1.0, -0.0, 3e38]:
        assert np.float32(float(c_float(value).rstrip("f"))) == np.float32(value)
    assert c_float(2.0) == "2.0f" and c_float(float("inf")) == "INFINITY" and c_float(-float("inf")) == "-INFINITY"


@needs_cc
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_the_c_policy_acts_as_the_onnx_policy(case: str, normalize: bool, tmp_path: Path) -> None:
    import onnxruntime

    model = compact_model(_masked(case))
    vecnormalize = None
    if normalize:
        vecnormalize = VecNormalize(make_vec_env(CASES[case][1], n_envs=1, seed=0), clip_obs=2.0)
        vecnormalize.obs_rms.update(_observations(model, 500) * 2 + 1)  # statistics away from 0 and 1
    policy = DeployedPolicy(model, vecnormalize).eval()
    export_onnx(policy, tmp_path / "policy.onnx")
    write_c(policy, tmp_path)
    binary = compile_c(tmp_path, tmp_path / "policy_bench")
    env = make_vec_env(CASES[case][1], n_envs=1, seed=1)
    raw = observations(env, policy, 2000)  # visited by the policy
    env.close()
    session = onnxruntime.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"obs": raw})[0]
    actions = c_actions(binary, raw)
    if policy.discrete:
        assert np.array_equal(actions[:, 0].astype(np.int64), reference)
    else:
        assert actions.shape == reference.reshape(len(raw), -1).shape
        assert np.max(np.abs(actions - reference.reshape(len(raw), -1))) <= 1e-5
    header = (tmp_path / "policy.h").read_text()
    assert f"#define POLICY_OBS_DIM {raw.shape[1]}" in header
    assert "void policy_act(const float obs[POLICY_OBS_DIM], float act[POLICY_ACT_DIM]);" in header


@needs_cc
def test_the_c_policy_clips_to_bounds_that_differ_per_dimension(tmp_path: Path) -> None:
    from gymnasium import spaces

    model = PPO("MlpPolicy", make_vec_env("LunarLander-v3", env_kwargs={"continuous": True}), device="cpu", seed=0)
    bounds = spaces.Box(np.array([-0.2, -0.5], dtype=np.float32), np.array([0.1, 0.5], dtype=np.float32))
    model.action_space = model.policy.action_space = bounds
    policy = DeployedPolicy(model).eval()
    write_c(policy, tmp_path)
    raw = _observations(model, 2000)
    actions = c_actions(compile_c(tmp_path, tmp_path / "policy_bench"), raw)
    np.testing.assert_allclose(actions, model.predict(raw, deterministic=True)[0], atol=1e-5)
    assert actions[:, 0].max() <= 0.1 and actions[:, 0].min() >= -0.2


class _Images(gymnasium.Env):
    """An image task: PPO builds its CnnPolicy (NatureCNN) for it."""

    observation_space = gymnasium.spaces.Box(0, 255, (36, 36, 1), dtype=np.uint8)
    action_space = gymnasium.spaces.Discrete(2)


def test_a_cnn_policy_is_refused() -> None:
    model = PPO("CnnPolicy", _Images(), device="cpu", n_steps=8, batch_size=8)
    with pytest.raises(ValueError, match="features extractor is NatureCNN"):
        c_sources(DeployedPolicy(model))


def test_export_refuses_to_write_a_cnn_policy_as_c_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from prune_rl.cli import app

    from test_export import _trained

    run = _trained(tmp_path)
    cnn = PPO("CnnPolicy", _Images(), device="cpu", n_steps=8, batch_size=8)
    # (a run's loader refuses image runs before export, as SB3 transposes their observations: load a CNN model directly)
    monkeypatch.setattr("prune_rl.runner.rundir.load_model", lambda *_: cnn)
    result = CliRunner().invoke(app, ["export", str(run), "--format", "c"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "the policy cannot be written as C: its features extractor is NatureCNN" in result.output
    assert not (run / "export" / "policy.c").exists()
