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
from prune_rl.rundir import claim

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


GROUPS = ("env", "algo", "algo_env", "pruning", "pruning_env", "experiment")  # in the order they apply


def config_files(choices: dict[str, str | None]) -> list[str]:
    """
    The config files a composition read, per-task files included, so that no tuned value applies silently.

    :param choices: Hydra's ``runtime.choices`` (``{group: option}``; an ``optional`` group whose file does not
        exist is listed too).
    :return: ``["env/hopper.yaml", "algo/ppo.yaml", "algo_env/ppo_hopper.yaml", ...]``, the files that exist.
    """
    found = []
    for group in GROUPS:
        option = choices.get(group)
        if option and (Path(CONFIG_PATH) / group / f"{option}.yaml").is_file():
            found.append(f"{group}/{option}.yaml")
    return found


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

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        data = {str(k): v for k, v in container.items()}
        data["config_files"] = config_files(dict(hydra_cfg.runtime.choices))
        typed = train_config(data)
        claim(run_dir)
        OmegaConf.save(OmegaConf.create(data), run_dir / "config.yaml")
        results = run(typed, run_dir)
    except ConfigError as exc:
        fail(str(exc))
    except OmegaConfBaseException as exc:  # e.g. a mandatory value (???) left unset
        fail(str(exc).splitlines()[0])
    return float(results["eval"]["mean_return"])


if __name__ == "__main__":
    main()
