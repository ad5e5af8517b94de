"""The one-cut diagnostic's per-layer statistics."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from conftest import load_script
from stable_baselines3 import PPO

from prune_rl.core import NeuronMask
from prune_rl.sb3.networks import prunable_nets


def test_layer_stats_count_alive_neurons_their_weights_and_saturation() -> None:
    cut_once = load_script("cut_once")
    torch.manual_seed(0)
    model = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=64, batch_size=64, policy_kwargs={"net_arch": [4, 4]})
    first, second = (layer for net in prunable_nets(model) if net.role == "policy" for layer in net.layers)
    states = torch.randn(32, 4)
    assert [row["alive"] for row in cut_once.layer_stats(model, states)] == [4, 4]

    NeuronMask(first, torch.tensor([True, True, True, False])).apply_()
    with torch.no_grad():
        second.producer.weight.mul_(1000.0)  # every pre-activation far from 0: tanh saturates
    rows = cut_once.layer_stats(model, states)
    assert [row["layer"] for row in rows] == [first.name, second.name]
    assert rows[0]["alive"] == 3
    assert rows[0]["in_norm"] == pytest.approx(float(first.producer.weight.detach()[:3].norm(dim=1).mean()))
    assert rows[0]["saturated"] < 0.5  # orthogonal init, unit-scale inputs: mostly in tanh's middle
    assert rows[1]["saturated"] > 0.9
