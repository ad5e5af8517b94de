"""Pure-PyTorch pruning core: neuron groups, importance, regularizer, schedule, masks, repair steps.

Nothing in this package imports Stable-Baselines3, Hydra or gymnasium.
Conventions: "sparsity" is always the fraction *removed* (0 = dense, 1 = empty).
"""

from prune_rl.core.fold import FOLDS, fold_, fold_linear_, fold_mean_, mean_activations
from prune_rl.core.distill import distill_, output_loss
from prune_rl.core.fan_in import FanInLR, fan_in_scales
from prune_rl.core.groups import HiddenLayer, PrunableNet, compact_weight_count, link_mirrors, mlp_layers
from prune_rl.core.importance import (
    IMPORTANCES,
    activation_importance,
    deviation_importance,
    magnitude_importance,
    reconstruction_importance,
    taylor_importance,
)
from prune_rl.core.mask import ALLOCATIONS, NeuronMask, cut_share, layer_quota, n_kept, select_alive
from prune_rl.core.regularizer import ANCHORS, GroupLasso
from prune_rl.core.schedule import SCHEDULES, CubicSparsity, GeometricSparsity, Sparsity
from prune_rl.core.weight_mask import WeightMask, global_magnitude_keep, magnitude_keep, weight_quota

__all__ = [
    "ALLOCATIONS",
    "ANCHORS",
    "FOLDS",
    "IMPORTANCES",
    "SCHEDULES",
    "CubicSparsity",
    "FanInLR",
    "GeometricSparsity",
    "GroupLasso",
    "HiddenLayer",
    "NeuronMask",
    "PrunableNet",
    "Sparsity",
    "WeightMask",
    "activation_importance",
    "compact_weight_count",
    "cut_share",
    "deviation_importance",
    "distill_",
    "fan_in_scales",
    "fold_",
    "fold_linear_",
    "fold_mean_",
    "global_magnitude_keep",
    "layer_quota",
    "link_mirrors",
    "magnitude_importance",
    "magnitude_keep",
    "mean_activations",
    "mlp_layers",
    "n_kept",
    "output_loss",
    "reconstruction_importance",
    "select_alive",
    "taylor_importance",
    "weight_quota",
]
