"""Adapters between Stable-Baselines3 and the pure-torch pruning core."""
