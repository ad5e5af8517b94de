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
from typing import TYPE_CHECKING, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prune_rl.config import ConfigError, train_config
from prune_rl.rundir import claim

if TYPE_CHECKING:
    from prune_rl.checkpoint import Interrupted
    from prune_rl.sb3.divergence import Diverged

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


def stopped(run_dir: Path, exc: Interrupted) -> NoReturn:
    """Print how to resume a run that stopped on a signal, and exit with ``128 + signal`` as the shell would."""
    print(
        f"prune-rl: {exc} at {exc.timesteps} timesteps: checkpoint written; continue with: prune-rl resume {run_dir}",
        file=sys.stderr,
    )
    sys.exit(128 + exc.signum)


def diverged(run_dir: Path, exc: Diverged) -> NoReturn:
    """Say in one line that the run diverged, and where its last good checkpoint is; exit with status 1."""
    from prune_rl.checkpoint import latest_checkpoint

    last = latest_checkpoint(run_dir)
    kept = f"; the last good checkpoint is {last}" if last is not None else "; no checkpoint was written before it"
    print(f"prune-rl: error: {exc}{kept} (lower algo.learning_rate, or check the rewards' scale)", file=sys.stderr)
    sys.exit(1)


def resume_run(run_dir: Path) -> dict:
    """
    Continue a stopped run from its latest checkpoint, in its own directory, to its configured budget.

    :param run_dir: The run directory.
    :return: The content of ``results.json``.
    """
    from prune_rl.checkpoint import latest_checkpoint
    from prune_rl.rundir import missing_file
    from prune_rl.train import RESULTS_FILE, run

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (config.yaml is missing)")
    if (run_dir / RESULTS_FILE).is_file() and missing_file(run_dir) is None:
        raise ConfigError(f"{run_dir} finished already (it has {RESULTS_FILE}); nothing to resume")
    if latest_checkpoint(run_dir) is None:
        raise ConfigError(f"{run_dir} has no checkpoint to resume from (checkpoint.every was 0 and no signal came)")
    try:
        data = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
    except Exception as exc:  # a truncated or corrupt file: any parser error
        raise ConfigError(f"{run_dir / 'config.yaml'} does not read ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{run_dir / 'config.yaml'} does not hold a run's config")
    cfg = train_config({str(k): v for k, v in data.items()})
    file_log = logging.FileHandler(run_dir / "train.log")
    file_log.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(file_log)
    logging.getLogger().setLevel(logging.INFO)
    try:
        return run(cfg, run_dir, resume=True)
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float:
    """
    Train one run in Hydra's output directory.

    :param cfg: The composed config.
    :return: The final mean evaluation return (for Hydra sweepers that optimise it).
    """
    from prune_rl.checkpoint import Interrupted  # heavy imports (torch, SB3) only once a run starts
    from prune_rl.sb3.divergence import Diverged
    from prune_rl.train import run

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
    except Interrupted as exc:
        stopped(run_dir, exc)
    except Diverged as exc:
        diverged(run_dir, exc)
    except ConfigError as exc:
        fail(str(exc))
    except OmegaConfBaseException as exc:  # e.g. a mandatory value (???) left unset
        fail(str(exc).splitlines()[0])
    return float(results["eval"]["mean_return"])


if __name__ == "__main__":
    main()
