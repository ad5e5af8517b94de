"""Every pruning method ``pruning.method`` can name: the pure-PyTorch ones and those with an RL agent of their own.

:data:`prune_rl.methods.PRUNERS` holds the methods that need nothing but PyTorch; PuRL trains an SB3 agent, so it
lives in :mod:`prune_rl.sb3.purl` and joins them here, above both layers.
"""

from prune_rl.methods import OLD_NAMES as OLD_NAMES
from prune_rl.methods import PRUNERS as TORCH_PRUNERS
from prune_rl.methods import Pruner
from prune_rl.sb3.purl import PuRLPruner, PuRLWeightPruner

PRUNERS: dict[str, type[Pruner]] = {**TORCH_PRUNERS, "purl": PuRLPruner, "purl_unstructured": PuRLWeightPruner}
"""``pruning.method`` -> the class; each class names its config dataclass in ``config_class``."""
PRUNERS.update({old: PRUNERS[new] for old, new in OLD_NAMES.items()})  # runs made before a rename, and users, still read
