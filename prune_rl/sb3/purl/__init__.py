"""PuRL: pruning a trained agent's policy with an RL agent of its own (Gupta et al., arXiv 2007.04756)."""

from prune_rl.sb3.purl.env import REWARDS, PruningEnv
from prune_rl.sb3.purl.pruner import AGENTS, PuRLConfig, PuRLPruner, PuRLWeightConfig, PuRLWeightPruner, search
from prune_rl.sb3.purl.subject import NeuronSubject, Subject, WeightSubject, fidelity

__all__ = [
    "AGENTS",
    "REWARDS",
    "NeuronSubject",
    "PruningEnv",
    "PuRLConfig",
    "PuRLPruner",
    "PuRLWeightConfig",
    "PuRLWeightPruner",
    "Subject",
    "WeightSubject",
    "fidelity",
    "search",
]
