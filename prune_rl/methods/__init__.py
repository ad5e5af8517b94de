"""Pruning methods, each one module behind the :class:`Pruner` interface (pure PyTorch: no SB3, Hydra or gymnasium).

``pruning=<name>`` on the command line picks ``conf/pruning/<name>.yaml``, whose ``method`` (default: its
``name``) is a key of :data:`PRUNERS`. A new method is one module here, one entry below and one config file.
"""

from prune_rl.config import AUTO, PROBE_WINDOWS, PrunerConfig
from prune_rl.methods.base import ProbeFn, Pruner
from prune_rl.methods.dsp import DSPConfig, DynamicStructuredPruner, RepairConfig
from prune_rl.methods.magnitude import GlobalMagnitudePruner, MagnitudeConfig, MagnitudePruner, matched_weight_sparsity
from prune_rl.methods.scratch import ScratchConfig, ScratchPruner, run_widths
from prune_rl.methods.structured import L1StructuredPruner, L2StructuredPruner, RandomStructuredPruner, StructuredPruner

PRUNERS: dict[str, type[Pruner]] = {
    "dsp": DynamicStructuredPruner,
    "l2_structured": L2StructuredPruner,
    "random_structured": RandomStructuredPruner,
    "magnitude": MagnitudePruner,
    "global_magnitude": GlobalMagnitudePruner,
    "scratch": ScratchPruner,
}
"""``pruning.method`` -> the class; each class names its config dataclass in ``config_class``."""

OLD_NAMES: dict[str, str] = {"l1_structured": "l2_structured"}
"""A method's old ``pruning.method`` -> its name today (runs made before, and users, still name it so)."""

__all__ = [
    "AUTO",
    "OLD_NAMES",
    "PROBE_WINDOWS",
    "PRUNERS",
    "DSPConfig",
    "DynamicStructuredPruner",
    "GlobalMagnitudePruner",
    "L1StructuredPruner",
    "L2StructuredPruner",
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
