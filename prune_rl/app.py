"""The Hydra application behind ``prune-rl train``.

It is a real ``@hydra.main`` app, so multirun (``-m``), sweepers, launchers, ``--cfg`` and output
directories behave as in any Hydra app. The composed config is converted to typed dataclasses here
and nowhere below.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prune_rl.config import ConfigError, train_config

log = logging.getLogger(__name__)

CONFIG_PATH = str(Path(__file__).parent / "conf")
_COMPOSE_LOCK = threading.Lock()  # Hydra's GlobalHydra is one per process: one composition at a time


def compose_config(overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """
    Compose the root config as ``prune-rl train`` does, without running it (Hydra's Compose API).

    Safe to call from several threads (e.g. the benchmark script's parallel jobs): Hydra keeps its state in a
    process-wide singleton, so calls are serialised.

    :param overrides: Command-line style overrides (``env=hopper``, ``pruning.sparsity=0.9``).
    :param return_hydra_config: Include the ``hydra`` node (launcher, run directories).
    :return: The unresolved config.
    """
    from hydra import compose, initialize_config_dir

    with _COMPOSE_LOCK, initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)


def fail(message: str) -> None:
    """Print one clear line to stderr and exit with status 2 (no traceback)."""
    print(f"prune-rl: error: {message}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float:
    """
    Train one run in Hydra's output directory.

    :param cfg: The composed config.
    :return: The final mean evaluation return (for Hydra sweepers that optimise it).
    """
    from prune_rl.train import run  # heavy imports (torch, SB3) only once a run starts

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(data, dict)
        typed = train_config({str(k): v for k, v in data.items()})
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        results = run(typed, run_dir)
    except ConfigError as exc:
        fail(str(exc))
    except OmegaConfBaseException as exc:  # e.g. a mandatory value (???) left unset
        fail(str(exc).splitlines()[0])
    return float(results["eval"]["mean_return"])


if __name__ == "__main__":
    main()
