"""Pruning methods, each one module behind the :class:`Pruner` interface (pure PyTorch: no SB3, Hydra or gymnasium).

``pruning=<name>`` on the command line picks ``conf/pruning/<name>.yaml``, whose ``method`` (default: its
``name``) is a key of :data:`PRUNERS`. A new method is one module here, one entry below and one config file.
"""

from prune_rl.methods.base import AUTO, PROBE_WINDOWS, ProbeFn, Pruner, PrunerConfig
from prune_rl.methods.dsp import DSPConfig, DynamicStructuredPruner, RepairConfig
from prune_rl.methods.magnitude import GlobalMagnitudePruner, MagnitudeConfig, MagnitudePruner, matched_weight_sparsity
from prune_rl.methods.scratch import ScratchConfig, ScratchPruner, run_widths
from prune_rl.methods.structured import L1StructuredPruner, RandomStructuredPruner, StructuredPruner

PRUNERS: dict[str, type[Pruner]] = {
    "dsp": DynamicStructuredPruner,
    "l1_structured": L1StructuredPruner,
    "random_structured": RandomStructuredPruner,
    "magnitude": MagnitudePruner,
    "global_magnitude": GlobalMagnitudePruner,
    "scratch": ScratchPruner,
}
"""``pruning.method`` -> the class; each class names its config dataclass in ``config_class``."""

__all__ = [
    "AUTO",
    "PROBE_WINDOWS",
    "PRUNERS",
    "DSPConfig",
    "DynamicStructuredPruner",
    "GlobalMagnitudePruner",
    "L1StructuredPruner",
    "MagnitudeConfig",
    "MagnitudePruner",
    "ProbeFn",
    "Pruner",
    "PrunerConfig",
    "RandomStructuredPruner",
    "RepairConfig",
    "ScratchConfig",
    "ScratchPruner",
    "StructuredPruner",
    "matched_weight_sparsity",
    "run_widths",
]
