"""PuRL: the pruning environment, its reward, the subjects it cuts, and runs through the CLI."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.core import PrunableNet, mlp_layers
from prune_rl.sb3.purl import NeuronSubject, PruningEnv, PuRLConfig, WeightSubject, fidelity, search

from conftest import fast, tiny_mlp

runner = CliRunner()


def _subject(discrete: bool = True, hidden: tuple[int, ...] = (8, 8), min_neurons: int = 2) -> NeuronSubject:
    mlp = tiny_mlp(hidden=hidden, n_out=3)
    layers, linears = mlp_layers("pi", mlp)
    net = PrunableNet("pi", "policy", layers, linears, discrete=discrete)
    states = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    return NeuronSubject(net, lambda: [mlp(states)], min_neurons=min_neurons)


def test_the_pruning_env_follows_gymnasiums_api() -> None:
    check_env(PruningEnv(_subject(), n_remove=10, passes=2), skip_render_check=True)


def test_fidelity_by_hand() -> None:
    reference = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    outputs = torch.tensor([[1.0, 0.5], [1.0, 0.0], [3.0, 1.0], [0.0, 1.0]])
    assert fidelity(outputs, reference, discrete=True) == 0.75  # the second state changes its argmax
    # continuous: 1 - mean over dims of mean(err^2) / var(ref); errors^2 (0, 1, 1, 0) and (.25, 1, 0, 4)
    expected = 1 - ((2 / 4) / 0.6875 + (5.25 / 4) / 1.1875) / 2
    assert fidelity(outputs, reference, discrete=False) == pytest.approx(expected)
    assert fidelity(reference, reference, discrete=False) == 1.0 and fidelity(reference, reference, True) == 1.0


@pytest.mark.parametrize("reward", ["step", "episode"])
def test_the_reward_at_each_step_equals_a_hand_computation(reward: str) -> None:
    subject = _subject()
    mlp, states = tiny_mlp(hidden=(8, 8), n_out=3), torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    env = PruningEnv(subject, n_remove=10, reward=reward)  # 16 neurons, floors of 2
    env.reset(seed=0)
    # Step 1, action 0.5: the first layer must lose at least 10 - (8 - 2) = 4 and may lose 6 -> 4 + round(0.5 * 2) = 5.
    _, r1, done1, _, info1 = env.step(np.array([0.5], dtype=np.float32))
    # By hand: drop the 5 first-layer neurons of smallest group norm, then the 5 second-layer ones.
    with torch.no_grad():
        reference = mlp(states)
        first, second = mlp[0], mlp[2]
        norms = first.weight.pow(2).sum(1) + first.bias.pow(2) + second.weight.pow(2).sum(0)
        dead = torch.argsort(norms)[:5]
        first.weight[dead] = 0
        first.bias[dead] = 0
        second.weight[:, dead] = 0
        f1 = float((mlp(states).argmax(-1) == reference.argmax(-1)).float().mean())
        norms = second.weight.pow(2).sum(1) + second.bias.pow(2) + mlp[4].weight.pow(2).sum(0)
        dead2 = torch.argsort(norms)[:5]
        second.weight[dead2] = 0
        second.bias[dead2] = 0
        mlp[4].weight[:, dead2] = 0
        f2 = float((mlp(states).argmax(-1) == reference.argmax(-1)).float().mean())
    _, r2, done2, _, info2 = env.step(np.array([0.0], dtype=np.float32))  # the last layer takes what is left: 5
    assert (info1["fidelity"], info2["fidelity"]) == (f1, f2)
    assert not done1 and done2 and info2["kept"] == {"pi.0": 3, "pi.1": 3}
    if reward == "step":
        assert (r1, r2) == pytest.approx((f1 - 1.0, f2 - f1))
    else:
        assert (r1, r2) == pytest.approx((0.0, f2 - 1.0))


@pytest.mark.parametrize("passes", [1, 3])
def test_an_episode_reaches_the_target_exactly_and_never_empties_a_layer(passes: int) -> None:
    subject = _subject(hidden=(8, 6, 4), min_neurons=1)
    env = PruningEnv(subject, n_remove=15, passes=passes)  # 18 neurons, 3 floors: every neuron above them
    rng = np.random.default_rng(0)
    for episode in range(30):
        env.reset(seed=episode)
        done = False
        while not done:  # random actions, always the most, always the least
            action = [rng.uniform(), 1.0, 0.0][episode % 3]
            _, _, done, _, info = env.step(np.array([action], dtype=np.float32))
            assert all(kept >= 1 for kept in subject.kept())
        assert sum(subject.kept()) == 18 - 15 and info["sparsity"] == pytest.approx(15 / 18)
    assert env.episodes == 30 and len(env.episode_fidelity) == 30 and env.best_masks is not None


def test_reset_restores_the_unpruned_network() -> None:
    subject = _subject()
    before = [p.detach().clone() for p in subject.net.parameters()]
    subject.cut(0, 2)
    assert subject.kept() == [2, 8] and subject.fidelity() <= 1.0
    subject.reset()
    assert subject.kept() == [8, 8] and subject.fidelity() == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, subject.net.parameters(), strict=True))


def test_the_weight_subject_keeps_the_largest_weights_of_a_layer() -> None:
    mlp = tiny_mlp(hidden=(8,), n_out=2)
    layers, linears = mlp_layers("pi", mlp)
    net = PrunableNet("pi", "policy", layers, linears)
    subject = WeightSubject(net, lambda: [mlp(torch.ones(4, 3))], min_weights=4)
    largest = mlp[0].weight.detach().abs().flatten().topk(5).values
    subject.cut(0, 5)
    assert subject.kept() == [5, 16] and torch.equal(mlp[0].weight.abs().flatten().topk(5).values, largest)
    assert int((mlp[0].weight != 0).sum()) == 5


def test_a_search_keeps_its_best_episode_and_logs_it(tmp_path: Path) -> None:
    subject = _subject()
    env = PruningEnv(subject, n_remove=10)
    found = search(env, PuRLConfig(name="purl", episodes=16, begin=0.5, end=1.0), seed=0, log_dir=tmp_path)
    assert env.episodes == 17  # 16 of training and the deterministic one
    assert env.best_fidelity == max(env.episode_fidelity) and found["agent_fidelity"] in env.episode_fidelity
    assert sum(int(m.sum()) for m in env.best_masks or []) == 6
    with (tmp_path / "progress.csv").open() as f:
        episodes = [row for row in csv.DictReader(f) if row["purl/fidelity"]]  # the agent's own rows come between
    assert len(episodes) == 16 and float(episodes[-1]["purl/best_fidelity"]) == max(env.episode_fidelity[:16])


def test_purl_config_refuses_unknown_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown pruning.reward 'end'"):
        PuRLConfig(name="purl", reward="end", begin=0.5, end=1.0)
    with pytest.raises(ValueError, match=r"unknown pruning.agent 'dqn'"):
        PuRLConfig(name="purl", agent="dqn", begin=0.5, end=1.0)


def _train(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / name
    result = runner.invoke(
        app, ["train", *fast("ppo", "cartpole", "purl"), "pruning.episodes=8", *args, f"hydra.run.dir={out}"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_purl_prunes_a_trained_run_from_its_directory(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    dense = tmp_path / "dense"
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole", "none"), f"hydra.run.dir={dense}"])
    assert result.exit_code == 0, result.output
    out = _train(tmp_path, "purl", f"pruning.from_run={dense}", "pruning.sparsity=0.8", "pruning.reward=episode")
    results = json.loads((out / "results.json").read_text())
    assert results["start_from"] == str(dense) and results["start_timesteps"] == int(0.9 * 256)
    summary = results["pruning_summary"]
    for key in ("search_episodes", "search_steps", "search_seconds", "distill_seconds", "finetune_seconds", "fidelity"):
        assert key in summary
    assert summary["search_episodes"] == 9 and summary["search_steps"] == 18 and summary["reward"] == "episode"
    checked = summary["return_check"]  # the best allocations by fidelity, distilled, then ranked by real returns
    assert 1 <= len(checked) <= 3 and summary["kept"] == max(checked, key=lambda c: (c["return"], c["fidelity"]))["kept"]
    assert summary["fidelity"] == pytest.approx(max(checked, key=lambda c: (c["return"], c["fidelity"]))["fidelity"])
    assert results["sparsity"]["pi"]["alive_neurons"] == 4  # 16 neurons at 80%: 3, but each layer keeps min_neurons=2
    model = PPO.load(out / "model.zip", device="cpu")
    pi = model.policy.mlp_extractor.policy_net[0]
    assert int((pi.weight.abs().sum(1) > 0).sum()) == summary["kept"]["pi.0"]
    assert (out / "purl" / "progress.csv").is_file()  # the pruning agent's own log
    from prune_rl.sb3.callback import load_state
    from prune_rl.sb3.networks import prunable_nets
    from prune_rl.sb3.purl import PuRLPruner

    state = load_state(out / "pruner.pt")
    assert state["n_events"] == 1 and state["purl"]["kept"] == summary["kept"]
    resumed = PuRLPruner(PuRLConfig(name="purl", begin=0.9, end=1.0))
    resumed.setup(prunable_nets(model))
    resumed.load_state_dict(state)
    assert not resumed.due(0.95) and resumed.summary()["kept"] == summary["kept"]  # a continued run does not search again


def test_from_run_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole", "purl"), f"pruning.from_run={tmp_path}",
                                 f"hydra.run.dir={tmp_path / 'out'}"])  # fmt: skip
    assert result.exit_code == 2
    assert f"pruning.from_run={tmp_path} is not a run directory (config.yaml is missing)" in result.output


def test_from_run_refuses_a_run_of_another_task(tmp_path: Path) -> None:
    dense = tmp_path / "dense"
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole", "none"), f"hydra.run.dir={dense}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", *fast("ppo", "lunarlander", "purl"), f"pruning.from_run={dense}",
                                 f"hydra.run.dir={tmp_path / 'out'}"])  # fmt: skip
    assert result.exit_code == 2 and "trained ppo on CartPole-v1, not ppo on LunarLander-v3" in result.output


@pytest.mark.parametrize(("algo", "env", "option"), [("dqn", "cartpole", "purl"), ("sac", "hopper", "purl_unstructured")])
def test_purl_prunes_off_policy_agents(algo: str, env: str, option: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *fast(algo, env, option), "pruning.episodes=4", "pruning.sparsity=0.5",
                                 f"hydra.run.dir={tmp_path}"])  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["pruning_events"] == 1 and results["pruning_summary"]["search_episodes"] == 5
    deployed = next(iter(results["sparsity"].values()))
    assert deployed["role"] == "policy" and deployed["weight_sparsity"] >= 0.5


def test_from_run_refuses_an_off_policy_agent_whose_replay_buffer_is_not_saved(tmp_path: Path) -> None:
    dense = tmp_path / "dense"
    result = runner.invoke(app, ["train", *fast("dqn", "cartpole", "none"), f"hydra.run.dir={dense}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", *fast("dqn", "cartpole", "purl"), f"pruning.from_run={dense}",
                                 f"hydra.run.dir={tmp_path / 'out'}"])  # fmt: skip
    assert result.exit_code == 2 and "pruning.from_run needs an on-policy algorithm (ppo, a2c), not dqn" in result.output


def test_a_search_leaves_the_training_random_streams_as_they_were() -> None:
    import random

    env = PruningEnv(_subject(), n_remove=10)  # (building the tiny policy seeds torch itself)
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    expected = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    search(env, PuRLConfig(name="purl", episodes=8, begin=0.5, end=1.0), seed=0)
    assert (torch.rand(1).item(), np.random.rand(), random.random()) == expected
