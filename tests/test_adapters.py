"""One adapter per SB3 policy class: looked up by class, and each one describes its policy's networks."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import TQC
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.sac.policies import MultiInputPolicy as SACMultiInputPolicy

from prune_rl.sb3.adapters import ActorCriticAdapter, SACAdapter, TQCAdapter, policy_adapter
from prune_rl.sb3.networks import net_arch, prunable_nets

ARCH = [6, 5]
MODELS = {
    "ppo": (PPO, "CartPole-v1", {"n_steps": 16, "batch_size": 16}),
    "a2c": (A2C, "Pendulum-v1", {"n_steps": 4}),
    "dqn": (DQN, "CartPole-v1", {"learning_starts": 0, "buffer_size": 100}),
    "sac": (SAC, "Pendulum-v1", {"learning_starts": 0, "buffer_size": 100}),
    "td3": (TD3, "Pendulum-v1", {"learning_starts": 0, "buffer_size": 100}),
    "tqc": (TQC, "Pendulum-v1", {"learning_starts": 0, "buffer_size": 100, "policy_kwargs": {"n_quantiles": 3}}),
}


def _model(algo: str):  # type: ignore[no-untyped-def]
    cls, env_id, kwargs = MODELS[algo]
    kwargs = dict(kwargs)
    policy_kwargs = {**kwargs.pop("policy_kwargs", {}), "net_arch": ARCH}
    return cls("MlpPolicy", env_id, policy_kwargs=policy_kwargs, device="cpu", seed=0, **kwargs)


def _lr(_: float) -> float:
    return 1e-3


def test_subclasses_resolve_to_their_base_classes_adapter() -> None:
    obs = spaces.Dict({"x": spaces.Box(-1, 1, (3,), np.float32)})
    box = spaces.Box(-1, 1, (2,), np.float32)
    assert type(policy_adapter(MultiInputActorCriticPolicy(obs, spaces.Discrete(2), _lr))) is ActorCriticAdapter
    assert type(policy_adapter(SACMultiInputPolicy(obs, box, _lr))) is SACAdapter
    assert type(policy_adapter(_model("tqc").policy)) is TQCAdapter  # TQC's policy is not a SACPolicy


def test_an_unsupported_policy_is_refused_in_one_line() -> None:
    policy = MaskableActorCriticPolicy(spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(2), _lr)
    with pytest.raises(ValueError, match="does not support the policy class MaskableActorCriticPolicy") as info:
        policy_adapter(policy)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("algo", list(MODELS))
def test_each_adapter_names_its_networks_writes_net_arch_and_runs_the_deployed_network_as_sb3_acts(algo: str) -> None:
    model = _model(algo)
    adapter = policy_adapter(model.policy)
    nets = prunable_nets(model)
    assert nets[0].role == "policy" and all(net.role == "value" for net in nets[1:])
    assert all([layer.n_neurons for layer in net.layers] == ARCH for net in nets)
    narrow = {net.name: [4, 3] for net in nets}
    cls, env_id, _ = MODELS[algo]
    rebuilt = cls("MlpPolicy", env_id, policy_kwargs={**model.policy_kwargs, "net_arch": net_arch(model, narrow)})
    assert {net.name: [layer.n_neurons for layer in net.layers] for net in prunable_nets(rebuilt)} == narrow

    env = gym.make(env_id)
    obs = torch.as_tensor(np.stack([env.observation_space.sample() for _ in range(4)]))
    actions = torch.as_tensor(np.stack([env.action_space.sample() for _ in range(4)])).reshape(4, -1).float()
    model.policy.set_training_mode(False)
    with torch.no_grad():
        outputs = adapter.outputs(obs, actions)
        deployed = adapter.deployed(obs)
        body = torch.nn.Sequential(*adapter.deployed_layers()[1])(obs)
    assert len(outputs) >= len(nets) and all(len(out) == 4 for out in outputs)
    torch.testing.assert_close(body, deployed, rtol=0, atol=0)
    acted = model.predict(obs.numpy(), deterministic=True)[0]  # what SB3 does after the deployed network
    done = {
        "argmax": lambda out: out.argmax(axis=-1),
        "clip": lambda out: np.clip(out, env.action_space.low, env.action_space.high),
        "unscale": model.policy.unscale_action,
    }[adapter.post()]
    np.testing.assert_allclose(done(deployed.numpy()), acted, rtol=1e-6)
