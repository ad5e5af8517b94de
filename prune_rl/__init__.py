"""prune-rl: compress deep RL policies while they train."""

__version__ = "0.1.0"
