"""Fan-in learning-rate scaling: a layer fed by a pruned layer keeps the dense network's speed of learning.

With Adam every weight moves by about the learning rate per step, whatever the width, so the change of a
pre-activation ``z = W h`` per step grows with the number of inputs ``h`` that are alive: a layer reading 12
neurons instead of 256 learns about 21 times slower at the same learning rate. That is why maximal-update
parametrization scales the Adam learning rate of hidden and output layers by ``1 / fan_in`` (Yang et al. 2021,
"Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer", arXiv 2203.03466, Table 3). Here the
network does not change width by design but by pruning, so every layer that reads a hidden layer gets its
update multiplied by ``(n_neurons / n_alive) ** exponent``: exponent 1 is muP's rule, 0 leaves training alone.

The scaling is installed as optimizer step hooks (``Optimizer.register_step_pre_hook`` and
``register_step_post_hook``): the weights are copied before a step and the step's change is multiplied after
it, so it works for any optimizer and whatever learning-rate schedule the algorithm sets. A removed neuron's
column gets no update (its gradient and Adam moments are zero), so it stays exactly zero when scaled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from prune_rl.core.groups import HiddenLayer


def fan_in_scales(layers: Sequence[HiddenLayer], alive: Sequence[torch.Tensor], exponent: float) -> dict[torch.Tensor, float]:
    """
    Update scale of every weight matrix that reads a pruned hidden layer.

    :param layers: Hidden layers.
    :param alive: Their boolean masks, one per layer.
    :param exponent: The scale is ``(n_neurons / n_alive) ** exponent`` (1: muP's Adam rule, 0: no scaling).
    :return: ``{consumer.weight: scale}`` for the consumers whose scale is not 1 (their biases are not scaled:
        a bias moves the pre-activation by the learning rate at any width).
    """
    scales: dict[torch.Tensor, float] = {}
    for layer, keep in zip(layers, alive, strict=True):
        n_alive = max(int(keep.sum()), 1)
        scale = (layer.dense / n_alive) ** exponent
        if scale != 1.0:
            for consumer in layer.consumers:
                scales[consumer.weight] = scale
    return scales


class FanInLR:
    """
    Multiplies the updates that an optimizer makes to chosen parameters.

    :param optimizer: The optimizer whose steps are scaled; parameters it does not own are ignored.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self.scales: list[tuple[torch.Tensor, float]] = []
        self._before: list[torch.Tensor] = []
        self._handles: list[RemovableHandle] = []

    def set_scales(self, scales: dict[torch.Tensor, float]) -> None:
        """
        Choose the scaled parameters, and install the hooks the first time there are any.

        :param scales: ``{parameter: scale}``, e.g. from :func:`fan_in_scales`.
        """
        self.scales = [(p, s) for p, s in scales.items() if id(p) in self._owned and s != 1.0]
        self._before = [torch.empty_like(p) for p, _ in self.scales]  # reused every step: no allocation there
        if self.scales and not self._handles:
            self._handles = [
                self.optimizer.register_step_pre_hook(self._pre_step),
                self.optimizer.register_step_post_hook(self._post_step),
            ]

    def remove(self) -> None:
        """Uninstall the hooks (the optimizer steps as usual again)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @torch.no_grad()
    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for (param, _), before in zip(self.scales, self._before, strict=True):
            before.copy_(param)

    @torch.no_grad()
    def _post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for (param, scale), before in zip(self.scales, self._before, strict=True):
            param.add_(param - before, alpha=scale - 1.0)  # before + scale * (after - before)
