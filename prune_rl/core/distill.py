"""Repair a cut by regressing the pruned networks' outputs back to their outputs before the cut.

A fold (:mod:`prune_rl.core.fold`) restores, by least squares, the *next layer's input* from the kept
neurons, one layer at a time. What the agent acts on is the network's *output*, and the error of each layer's
fold passes through the nonlinearities of the layers after it. :func:`distill_` fits the narrowed networks as a
whole to the outputs the networks gave before the cut, on the same recent states, with a few full-batch Adam
steps of their own (policy distillation, Rusu et al. 2016, "Policy distillation"; pruning followed by
distillation from the unpruned network, e.g. Polino et al. 2018, "Model compression via distillation and
quantization"). For a Gaussian policy with a state-independent standard deviation the loss on the action mean is
proportional to the KL divergence between the policies before and after the cut.

The training optimizer is not touched: its moments belong to the training loss, and a fresh Adam is used and
dropped. The masks are applied after every step, so pruned neurons stay exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import torch


class Reapplied(Protocol):
    """Anything that zeroes its pruned weights again when asked: a neuron or weight mask, a PuRL subject."""

    def apply_(self) -> None: ...


def output_loss(outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """
    The summed fraction of each target's variance that the outputs miss.

    :param outputs: The networks' outputs, e.g. ``[action mean, value]``, each ``(n_states, ...)``.
    :param targets: The outputs to match, same shapes.
    :return: ``sum_i mean((outputs_i - targets_i) ** 2) / var(targets_i)`` (a floor of 1e-8 on the variance),
        0 when the outputs equal the targets.
    """
    loss = torch.zeros(())
    for out, target in zip(outputs, targets, strict=True):
        loss = loss + (out - target).pow(2).mean() / target.var(unbiased=False).clamp_min(1e-8)
    return loss


def distill_(
    params: Iterable[torch.nn.Parameter],
    forward: Callable[[], Sequence[torch.Tensor]],
    targets: Sequence[torch.Tensor],
    masks: Iterable[Reapplied],
    steps: int,
    lr: float,
) -> tuple[float, float]:
    """
    Fit ``params`` so that ``forward()`` gives ``targets`` again, keeping the masks' dead neurons at zero.

    :param params: The parameters to fit (the pruned networks' Linear layers).
    :param forward: Runs the networks on the states the targets were taken on and returns their outputs.
    :param targets: The outputs before the cut (detached).
    :param masks: Every mask of the networks (per neuron or per weight), applied after each step.
    :param steps: Full-batch Adam steps (0: only measure).
    :param lr: Adam's learning rate.
    :return: :func:`output_loss` before and after; the parameters end at the best loss seen, so never above
        the loss before.
    """
    params, masks = list(params), list(masks)
    with torch.no_grad():
        before = float(output_loss(forward(), targets))
    if steps == 0 or before == 0.0:
        return before, before
    optimizer = torch.optim.Adam(params, lr=lr)
    best, best_params = before, [p.detach().clone() for p in params]
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = output_loss(forward(), targets)
        if float(loss.detach()) < best:  # the parameters this loss was computed with, before the step
            best, best_params = float(loss.detach()), [p.detach().clone() for p in params]
        loss.backward()
        optimizer.step()
        for mask in masks:
            mask.apply_()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        after = float(output_loss(forward(), targets))
        if after > best:  # Adam's steps can overshoot a small loss: keep the best parameters seen
            for param, value in zip(params, best_params, strict=True):
                param.copy_(value)
            after = best
    return before, after
