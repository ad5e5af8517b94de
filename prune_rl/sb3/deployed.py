"""Deployable policies: a compact SB3 model with the pruned neurons removed, and an ONNX graph of its actions.

:func:`compact_model` rebuilds a pruned model's networks narrower (:func:`prune_rl.core.surgery.shrink_`, target
networks and critics included) and gives the policy the ``net_arch`` of the new widths, so the saved zip loads with
plain SB3 (``PPO.load``) and no prune-rl import. SB3 builds every critic of SAC and TD3 from one ``qf`` list, so the
critics are padded to the widest of them, per layer, with removed (all-zero) neurons, which changes nothing.

:class:`DeployedPolicy` is what ``model.predict(obs, deterministic=True)`` computes, as one torch module: the
VecNormalize observation normalisation (``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)``), the deployed
network and SB3's action post-processing: the argmax of logits (PPO/A2C) or Q-values (DQN), clipping to the action
bounds (PPO/A2C on a Box), tanh squashing and rescaling to the bounds (SAC, TQC, TD3). :func:`export_onnx` writes it
to ONNX, raw observations in, actions out; :func:`quantize_onnx` writes that graph again with 8-bit weights.
:meth:`DeployedPolicy.layers` lists the deployed network as plain modules, for writers of other formats
(:mod:`prune_rl.sb3.c_export`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from prune_rl.core.surgery import pad_keep, removable, shrink_
from prune_rl.sb3.adapters import policy_adapter
from prune_rl.sb3.networks import activation, net_arch, prunable_nets, uniform_critics


def compact_widths(model: BaseAlgorithm) -> dict[str, list[torch.Tensor]]:
    """
    Which neurons a compact copy keeps: those that feed something and get something (per network, per layer).

    SAC and TD3 critics are padded to the widest critic's widths; every layer keeps at least one neuron.

    :param model: A (pruned) SB3 model.
    :return: ``{net name: [keep mask per hidden layer]}``.
    """
    keeps = {net.name: [pad_keep(~removable(layer), 1) for layer in net.layers] for net in prunable_nets(model)}
    return uniform_critics(keeps)


def compact_model(model: BaseAlgorithm) -> BaseAlgorithm:
    """
    A copy of ``model`` whose networks hold only the neurons that still matter, loadable with plain SB3.

    :param model: A pruned SB3 model (PPO, A2C, DQN, SAC or TD3 with an MLP policy); it is not changed.
    :return: The compact model (same algorithm, fresh optimizers), acting as ``model`` does.
    """
    compact = copy.deepcopy(model)
    keeps = compact_widths(compact)
    act = activation(compact)
    for net in prunable_nets(compact):
        shrink_(net, keeps[net.name], act)
    widths = {name: [int(k.sum()) for k in keep] for name, keep in keeps.items()}
    policy_kwargs = {**compact.policy_kwargs, "net_arch": net_arch(compact, widths)}
    policy = compact.policy_class(  # type: ignore[operator]
        compact.observation_space, compact.action_space, compact.lr_schedule, **policy_kwargs
    )
    policy.load_state_dict(compact.policy.state_dict())
    compact.policy = policy.to(compact.device)
    compact.policy_kwargs = policy_kwargs
    if hasattr(compact, "_create_aliases"):  # DQN, SAC, TD3 keep aliases of the policy's networks
        compact._create_aliases()
    return compact


@torch.no_grad()
def widen_(dense: BaseAlgorithm, narrow: BaseAlgorithm, masks: dict[str, torch.Tensor], deployed_only: bool = False) -> None:
    """
    Give a model built at the dense widths the networks of a model shrunk during training, their removed neurons as
    zeros: the masked networks the shrunk ones stand for (the reference a compact policy is measured against, or an
    agent to prune further at its configured widths).

    :param dense: A model of the same algorithm at the configured widths (changed in place).
    :param narrow: The shrunk model.
    :param masks: The run's ``masks.pt``: which dense neurons are alive; the narrow layers hold exactly those.
    :param deployed_only: Widen only the deployed network (the others keep what ``dense`` holds).
    :raises ValueError: If a narrow network does not hold the masks' alive neurons.
    """
    pairs = list(zip(prunable_nets(dense), prunable_nets(narrow), strict=True))
    dense.policy.load_state_dict(
        {k: v for k, v in narrow.policy.state_dict().items() if dense.policy.state_dict()[k].shape == v.shape}, strict=False
    )
    for dense_net, narrow_net in pairs[:1] if deployed_only else pairs:
        index: dict[int, torch.Tensor] = {}  # id of a dense producer -> dense positions of the narrow layer's neurons
        for layer, narrow_layer in zip(dense_net.layers, narrow_net.layers, strict=True):
            kept = masks[layer.name].nonzero().squeeze(1)
            if len(kept) != narrow_layer.n_neurons:
                raise ValueError(f"{layer.name}: {narrow_layer.n_neurons} neurons held, but {len(kept)} alive in the masks")
            index[id(layer.producer)] = kept
        fed = {id(c): index[id(layer.producer)] for layer in dense_net.layers for c in layer.consumers}
        for big, small in zip(dense_net.linears, narrow_net.linears, strict=True):
            rows = index.get(id(big), torch.arange(big.out_features))
            cols = fed.get(id(big), torch.arange(big.in_features))
            big.weight.zero_()
            big.weight[rows.unsqueeze(1), cols] = small.weight.to(big.weight.device)
            if big.bias is not None and small.bias is not None:
                big.bias.zero_()
                big.bias[rows] = small.bias.to(big.bias.device)


class DeployedPolicy(nn.Module):
    """
    ``model.predict(obs, deterministic=True)`` as one module: normalisation, deployed network, action post-processing.

    :param model: The SB3 model (its policy is used, not copied).
    :param vecnormalize: The run's VecNormalize statistics, if it normalised observations.
    """

    obs_mean: torch.Tensor
    obs_scale: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    clip_obs: float
    bounds: tuple[float, float] | None

    def __init__(self, model: BaseAlgorithm, vecnormalize: VecNormalize | None = None) -> None:
        super().__init__()
        policy = model.policy
        if not isinstance(model.observation_space, spaces.Box):
            raise ValueError(f"export needs a Box observation space, got {type(model.observation_space).__name__}")
        if not isinstance(model.action_space, spaces.Box | spaces.Discrete):
            raise ValueError(f"export needs a Box or Discrete action space, got {type(model.action_space).__name__}")
        self.policy = policy
        self.adapter = policy_adapter(policy)
        self.n_params = sum(p.numel() for p in prunable_nets(model)[0].parameters())  # the deployed network's
        self.discrete = isinstance(model.action_space, spaces.Discrete)
        normalize = vecnormalize is not None and vecnormalize.norm_obs
        self.normalize = normalize
        if normalize:
            assert vecnormalize is not None
            rms = vecnormalize.obs_rms
            assert isinstance(rms, RunningMeanStd), "dict observations are not exported"
            self.register_buffer("obs_mean", torch.as_tensor(np.asarray(rms.mean), dtype=torch.float32))
            self.register_buffer(
                "obs_scale", torch.as_tensor(np.sqrt(np.asarray(rms.var) + vecnormalize.epsilon), dtype=torch.float32)
            )
            self.clip_obs = float(vecnormalize.clip_obs)
        if not self.discrete:
            space = model.action_space
            assert isinstance(space, spaces.Box)
            self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32))
            # The same bounds on every dimension (the usual case) become constants: onnxruntime's Clip is nearly free,
            # where Min and Max against a vector cost as much as the whole compact network at batch 4096.
            uniform = bool((space.low == space.low.flat[0]).all() and (space.high == space.high.flat[0]).all())
            self.bounds = (float(space.low.flat[0]), float(space.high.flat[0])) if uniform else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """
        :param obs: Raw observations, ``(batch, *obs_shape)``, float32.
        :return: Actions as ``predict`` returns them: ``(batch,)`` int64 (discrete) or ``(batch, *action_shape)``.
        """
        if self.normalize:
            obs = torch.clamp((obs - self.obs_mean) / self.obs_scale, -self.clip_obs, self.clip_obs)
        out = self.adapter.deployed(obs.flatten(1))
        if self.adapter.post() == "argmax":
            return out.argmax(dim=-1)
        if self.adapter.post() == "unscale":
            return self._unscale(out)
        if self.bounds is not None:
            return torch.clamp(out, *self.bounds)
        return torch.maximum(torch.minimum(out, self.high), self.low)

    def layers(self) -> tuple[list[nn.Module], str]:
        """
        The deployed network as a chain of plain modules, from the flat normalised observation to what the action
        post-processing takes.

        :return: ``(modules, post)``: ``nn.Linear`` layers and activations in order, and the post-processing:
            ``argmax`` (discrete), ``clip`` (to the action bounds) or ``unscale`` (``[-1, 1]`` to the bounds).
        :raises ValueError: If the policy is not a chain of Linear layers on flattened observations (a CNN).
        """
        extractor, body = self.adapter.deployed_layers()
        if not isinstance(extractor, FlattenExtractor):
            raise ValueError(f"its features extractor is {type(extractor).__name__}, not a chain of Linear layers")
        return body, self.adapter.post()

    def _unscale(self, squashed: torch.Tensor) -> torch.Tensor:
        """SB3's ``unscale_action``: ``[-1, 1]`` to the action bounds (nothing to do for bounds of -1 and 1)."""
        if self.bounds == (-1.0, 1.0):
            return squashed
        if self.bounds is not None:
            low, high = self.bounds
            return low + 0.5 * (squashed + 1.0) * (high - low)
        return self.low + 0.5 * (squashed + 1.0) * (self.high - self.low)


def export_onnx(module: DeployedPolicy, path: str | Path) -> None:
    """
    Write ``module`` to ONNX with a dynamic batch size: input ``obs`` (float32), output ``action``.

    :param module: The policy to export (put in evaluation mode).
    :param path: The ``.onnx`` file to write.
    """
    module.eval()
    obs_shape = module.policy.observation_space.shape
    assert obs_shape is not None
    example = torch.zeros(2, *obs_shape, dtype=torch.float32)
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=["obs"],
        output_names=["action"],
        dynamic_shapes={"obs": {0: torch.export.Dim("batch")}},
        dynamo=True,
        verbose=False,
    )


def quantize_onnx(src: str | Path, dst: str | Path) -> None:
    """
    Write the ONNX policy ``src`` again with 8-bit weights: onnxruntime's dynamic quantization (weights int8 per
    tensor, symmetric; activations quantized per call from their own range, so no calibration set is needed and no
    observation is clipped by a range seen elsewhere). Biases, normalisation and post-processing stay float.

    :param src: A float ONNX policy (:func:`export_onnx`).
    :param dst: The ``.onnx`` file to write.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process the graph (shape inference; nothing to gain on an MLP)
    try:
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def load_vecnormalize(path: str | Path, observation_space: Any) -> VecNormalize:
    """
    Read VecNormalize statistics without an environment (for export only: it can't step).

    :param path: A ``vecnormalize.pkl``.
    :param observation_space: The model's observation space.
    :return: The statistics, as a VecNormalize object.
    """
    import pickle

    with open(path, "rb") as f:
        vecnormalize = pickle.load(f)
    if not isinstance(vecnormalize, VecNormalize):
        raise ValueError(f"{path} does not hold VecNormalize statistics")
    if vecnormalize.observation_space.shape != observation_space.shape:
        raise ValueError(f"{path} normalises observations of shape {vecnormalize.observation_space.shape}")
    return vecnormalize
