"""The run: its directory's files (:mod:`~prune_rl.runner.rundir`), training and resuming it
(:mod:`~prune_rl.runner.train`, :mod:`~prune_rl.runner.checkpoint`), evaluating and exporting it.

Importing the package (and :mod:`~prune_rl.runner.rundir`) stays cheap; the other modules import torch and SB3.
"""
