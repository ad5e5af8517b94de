"""The Hydra application behind ``prune-rl train``.

It is a real ``@hydra.main`` app, so multirun (``-m``), sweepers, launchers, ``--cfg`` and output
directories behave as in any Hydra app. The composed config is converted to typed dataclasses here
and nowhere below.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prune_rl.config import ConfigError, train_config
from prune_rl.runner import rundir

if TYPE_CHECKING:
    from prune_rl.runner.checkpoint import Interrupted
    from prune_rl.sb3.divergence import Diverged

log = logging.getLogger(__name__)

CONFIG_PATH = str(Path(__file__).parent / "conf")
_COMPOSE_LOCK = threading.Lock()  # Hydra's GlobalHydra is one per process: one composition at a time


def compose_config(overrides: Sequence[str] = (), return_hydra_config: bool = False, name: str = "train") -> DictConfig:
    """
    Compose the root config as ``prune-rl train`` does, without running it (Hydra's Compose API).

    Safe to call from several threads (e.g. the benchmark script's parallel jobs): Hydra keeps its state in a
    process-wide singleton, so calls are serialised.

    :param overrides: Command-line style overrides (``env=hopper``, ``pruning.sparsity=0.9``).
    :param return_hydra_config: Include the ``hydra`` node (launcher, run directories).
    :param name: The root config: ``train``, or ``prune`` (``prune-rl prune``).
    :return: The unresolved config.
    """
    from hydra import compose, initialize_config_dir

    with _COMPOSE_LOCK, initialize_config_dir(config_dir=CONFIG_PATH, version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=return_hydra_config)


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


VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--info", "-i", "--experimental-rerun")  # Hydra flags with a value
CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")  # another config: Hydra checks


def _one_line(exc: Exception, overrides: Sequence[str] = ()) -> str:
    """Hydra's composition errors as one line: the unknown option or key, what is known, a likely intended key."""
    message = str(exc)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", message)
    if missing:
        group, option = missing.groups()
        known = [line.strip() for line in message.split("Available options")[-1].split("Config search path")[0].splitlines()]
        known = [k for k in known if k and not k.endswith(":")]
        return f"unknown {group} option {option!r} (known: {', '.join(known)})"
    key = re.search(r"Could not override '([^']+)'", message)
    if key:
        name = key.group(1)
        others = [o for o in overrides if not o.lstrip("+~").startswith(f"{name}=")]
        hint = [k for k in difflib.get_close_matches(name, _known_keys(others), n=2) if k != name][:1]
        close = f"did you mean {hint[0]}? " if hint else ""
        return f"unknown config key {name!r} ({close}prune-rl train --cfg job lists the keys; +{name}=... adds a new one)"
    return "; ".join(line.strip() for line in message.splitlines() if line.strip() and "hydra.cc/docs" not in line)


def _known_keys(overrides: Sequence[str]) -> list[str]:
    """Every dotted key of the config the other overrides compose (for "did you mean" hints)."""
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        keys.append(prefix.rstrip("."))

    try:
        walk(OmegaConf.to_container(compose_config(overrides)), "")
    except Exception:  # another override is wrong too: hint from the default config
        walk(OmegaConf.to_container(compose_config()), "")
    return [k for k in keys if k]


def check_overrides(args: Sequence[str], name: str = "train") -> str | None:
    """
    Compose the config as ``prune-rl train ARGS`` would, each value of a sweep in turn, to refuse in one line what
    Hydra would refuse in a block (an unknown option or key, an override that does not parse), before any job runs.

    :param args: The arguments after ``train``.
    :param name: The root config (``prune`` for ``prune-rl prune``).
    :return: The problem in one line, or ``None``.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if os.environ.get("HYDRA_FULL_ERROR") == "1" or any(a.split("=")[0] in CONFIG_FLAGS for a in args):
        return None
    multirun = "-m" in args or "--multirun" in args
    overrides, skip = [], False
    for arg in args:
        if skip or arg.startswith("-"):
            skip = arg in VALUE_FLAGS and arg not in ("--info", "-i")
            continue
        overrides.append(arg)
    if multirun and any(re.fullmatch(r"hydra/launcher=(slurm|submitit_slurm)", o) for o in overrides):
        if shutil.which("sbatch") is None:
            return (
                "hydra/launcher=slurm needs SLURM, and sbatch is not on PATH here: "
                "submit from the cluster, or use hydra/launcher=local"
            )
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:  # OverrideParseException
        return f"an override does not parse: {_one_line(exc)}"
    base, sweeps = [], []
    for i, override in enumerate(parsed):
        if not override.is_sweep_override():
            base.append(override.input_line)
            continue
        if not multirun:
            return f"{override.input_line} is a sweep: add -m (prune-rl train -m ...) to run one job per value"
        try:
            values = [f"{override.get_key_element()}={v}" for v in override.sweep_string_iterator()]
        except Exception:  # an interval sweep (a sweeper plugin's): left to the sweeper
            values = []
        base.append(values[0] if values else None)
        sweeps += [(i, value) for value in values[1:]]
    trials = [base] + [[value if j == i else o for j, o in enumerate(base)] for i, value in sweeps]
    for trial in trials:
        chosen = [o for o in trial if o is not None]
        try:
            compose_config(chosen, name=name)
        except Exception as exc:  # Hydra's composition errors
            return _one_line(exc, chosen)
    return None


def fail(message: str) -> None:
    """Print one clear line to stderr and exit with status 2 (no traceback)."""
    print(f"prune-rl: error: {message}", file=sys.stderr)
    sys.exit(2)


def requeued(run_dir: Path) -> bool:
    """
    :param run_dir: This job's run directory.
    :return: Whether SLURM restarted this job (``SLURM_RESTART_COUNT`` > 0) and its run stopped at a checkpoint
        without finishing: the job then resumes it instead of refusing the directory.
    """
    from prune_rl.runner.checkpoint import latest_checkpoint

    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    restarted = restarts.isdigit() and int(restarts) > 0
    return restarted and latest_checkpoint(run_dir) is not None and not rundir.is_finished(run_dir)


def stopped(run_dir: Path, exc: Interrupted) -> NoReturn:
    """Print how to resume a run that stopped on a signal, and exit with ``128 + signal`` as the shell would."""
    print(
        f"prune-rl: {exc} at {exc.timesteps} timesteps: checkpoint written; continue with: prune-rl resume {run_dir}",
        file=sys.stderr,
    )
    sys.exit(128 + exc.signum)


def diverged(run_dir: Path, exc: Diverged) -> NoReturn:
    """Say in one line that the run diverged, and where its last good checkpoint is; exit with status 1."""
    from prune_rl.runner.checkpoint import latest_checkpoint

    last = latest_checkpoint(run_dir)
    kept = f"; the last good checkpoint is {last}" if last is not None else "; no checkpoint was written before it"
    print(f"prune-rl: error: {exc}{kept} (lower algo.learning_rate, or check the rewards' scale)", file=sys.stderr)
    sys.exit(1)


def _job(cfg: DictConfig, fine_tune: bool = False) -> float:
    """
    Train one run in Hydra's output directory (the body of :func:`main` and :func:`prune_main`).

    :param cfg: The composed config.
    :param fine_tune: Whether it fine-tunes a trained agent (``prune-rl prune``): see :func:`fine_tuning`.
    :return: The final mean evaluation return (for Hydra sweepers that optimise it).
    """
    from prune_rl.runner.checkpoint import Interrupted  # heavy imports (torch, SB3) only once a run starts
    from prune_rl.runner.train import run
    from prune_rl.sb3.divergence import Diverged

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    existed = set(run_dir.iterdir()) - {run_dir / ".hydra", run_dir / f"{hydra_cfg.job.name}.log"}
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        data = {str(k): v for k, v in container.items()}
        data["config_files"] = config_files(dict(hydra_cfg.runtime.choices))
        if fine_tune:
            data = fine_tuning(data, list(hydra_cfg.overrides.task))
        typed = train_config(data)
        if requeued(run_dir):  # SLURM requeued this job after a preemption or a timeout: continue it
            results = run(typed, run_dir, resume=True)
        else:
            rundir.claim(run_dir)
            rundir.write_config(run_dir, data)
            results = run(typed, run_dir)
    except Interrupted as exc:
        stopped(run_dir, exc)
    except Diverged as exc:
        diverged(run_dir, exc)
    except (ConfigError, OmegaConfBaseException) as exc:  # OmegaConf's: e.g. a mandatory value (???) left unset
        message = str(exc).splitlines()[0]
        if hydra_cfg.mode == RunMode.MULTIRUN:  # this job fails alone: its error stays in its directory
            rundir.write_error(run_dir, message)
            log.error(message)
            raise JobFailed(f"{run_dir}: {message}") from None
        if not existed and not any(run_dir.glob("*.zip")):  # nothing of a run there: leave no directory behind
            shutil.rmtree(run_dir, ignore_errors=True)
        fail(message)
    return float(results.eval["mean_return"])


def fine_tuning(data: dict, overrides: Sequence[str]) -> dict:
    """
    What a ``prune-rl prune`` job takes from its own command line. The agent keeps the hyperparameters it was saved
    with, so the ``algo`` section keeps only the keys given (their values replace the file's), and ``config.yaml``
    says what was changed. Unless ``n_timesteps`` was given, the fine-tuning budget is ``init.budget`` of the task's
    training budget.

    :param data: The job's resolved config.
    :param overrides: The job's overrides (Hydra's ``overrides.task``).
    :return: The config, completed.
    """
    keys = [override.lstrip("+~").split("=", 1)[0] for override in overrides]
    given = {key.split(".")[1] for key in keys if key.startswith("algo.")}
    algo = dict(data["algo"])
    data = {**data, "algo": {"name": algo["name"], **{key: algo[key] for key in sorted(given) if key in algo}}}
    budget = (data.get("init") or {}).get("budget", 0.1)
    if "n_timesteps" not in keys and isinstance(budget, int | float) and isinstance(data.get("n_timesteps"), int):
        data["n_timesteps"] = max(int(budget * data["n_timesteps"]), 1)
    return data


def _quote(value: object) -> str:
    """A Hydra override value that stays one string whatever it holds (commas, spaces, brackets)."""
    text = str(value)
    return f"'{text}'" if "'" not in text else f'"{text}"'


def env_option(env_id: str) -> str | None:
    """:return: The ``conf/env`` option whose ``id`` is ``env_id`` (``CartPole-v1`` -> ``cartpole``), if any."""
    for path in sorted((Path(CONFIG_PATH) / "env").glob("*.yaml")):
        if OmegaConf.select(OmegaConf.load(path), "id", default=None) == env_id:
            return path.stem
    return None


def model_first(first: str, args: Sequence[str]) -> tuple[Path, list[str]]:
    """
    Find MODEL among ``prune-rl prune``'s arguments when Hydra flags came before it (``prune-rl prune -m MODEL ...``).

    :param first: What the CLI took as MODEL.
    :param args: The other arguments.
    :return: MODEL, and the arguments without it.
    :raises ConfigError: If no argument can be MODEL.
    """
    if not first.startswith("-"):
        return Path(first), list(args)
    rest, skip = [first, *args], False
    for i, arg in enumerate(rest):
        if not skip and not arg.startswith("-") and "=" not in arg:
            return Path(arg), rest[:i] + rest[i + 1 :]
        skip = arg in VALUE_FLAGS and arg not in ("--info", "-i")
    raise ConfigError("MODEL is missing: prune-rl prune MODEL [HYDRA ARGS...]")


def flags_first(args: Sequence[str]) -> list[str]:
    """
    :param args: Hydra flags and overrides, in any order.
    :return: The flags (with their values) first, then the overrides, as Hydra's parser needs them.
    """
    flags, overrides, skip = [], [], False
    for arg in args:
        if skip or arg.startswith("-"):
            flags.append(arg)
            skip = arg in VALUE_FLAGS and arg not in ("--info", "-i")
        else:
            overrides.append(arg)
    return [*flags, *overrides]


def prune_overrides(model: Path, vecnormalize: Path | None, args: Sequence[str]) -> list[str]:
    """
    The overrides ``prune-rl prune MODEL`` puts before the user's: the algorithm read from the file, the task its name
    or folder gives (unless ``env=`` is given), its number of environments, normalisation as found beside it, and the
    file itself.

    :param model: An SB3 ``.zip`` or a run directory.
    :param vecnormalize: Its ``VecNormalize`` statistics (``None``: look beside it).
    :param args: The user's arguments after MODEL.
    :return: The overrides.
    :raises ConfigError: If the file is not a model prune-rl can prune, was given another algorithm, or its task is
        not known.
    """
    from prune_rl.agent import read_agent

    agent = read_agent(model, vecnormalize)
    given = {a.lstrip("+~").split("=", 1)[0]: a.split("=", 1)[1] for a in args if "=" in a and not a.startswith("-")}
    out = []
    if given.get("algo", agent.algo) != agent.algo:
        raise ConfigError(f"{agent.path} holds a {agent.algo} agent: the algorithm is read from the file (drop algo=)")
    if "algo" not in given:
        out.append(f"algo={agent.algo}")
    if "env" not in given and "env.id" not in given:
        if agent.env_id is None:
            known = ", ".join(p.stem for p in sorted((Path(CONFIG_PATH) / "env").glob("*.yaml")) if p.stem != "gym")
            raise ConfigError(
                f"which task {agent.path} was trained on is not in its name or folder: "
                f"pass env=NAME ({known}) or env=gym env.id=ID"
            )
        option = env_option(agent.env_id)
        out += [f"env={option}"] if option is not None else ["env=gym", f"env.id={_quote(agent.env_id)}"]
    if "env.n_envs" not in given and isinstance(agent.data.get("n_envs"), int):  # PPO's rollouts: n_steps x n_envs
        out.append(f"env.n_envs={agent.data['n_envs']}")
    if "env.normalize" not in given:
        out.append(f"env.normalize={'true' if agent.vecnormalize is not None else 'false'}")
    out.append(f"init.model={_quote(agent.path.resolve())}")
    if agent.vecnormalize is not None:
        out.append(f"init.vecnormalize={_quote(agent.vecnormalize.resolve())}")
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float:
    """
    Train one run in Hydra's output directory.

    :param cfg: The composed config.
    :return: The final mean evaluation return (for Hydra sweepers that optimise it).
    """
    return _job(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="prune")
def prune_main(cfg: DictConfig) -> float:
    """
    Fine-tune a trained agent (``init.model``) while pruning it, in Hydra's output directory (``prune-rl prune``).

    :param cfg: The composed config.
    :return: The final mean evaluation return.
    """
    return _job(cfg, fine_tune=True)


class SweepReport(Callback):
    """
    After a multirun, the sweep's report in ``<sweep dir>/report``: tables, plots, and TensorBoard logs that put each
    task's dense and pruned runs on the same charts (``tensorboard --logdir <sweep dir>``). A sweep with a failed job
    writes none (``prune-rl report`` then writes it over the runs that finished).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        """:param config: The sweep's config (``hydra.sweep.dir``)."""
        from prune_rl.report import write_report

        sweep = Path(config.hydra.sweep.dir)
        try:
            write_report([sweep], sweep / "report", tensorboard=sweep / "report" / "tensorboard")
        except ValueError as exc:  # no run finished, or one does not read: the sweep's own errors say more
            log.warning("no sweep report: %s", exc)
            return
        log.info("sweep report: %s (tensorboard --logdir %s)", sweep / "report", sweep)


class JobFailed(Exception):
    """A job of a sweep was refused; the others run, and the sweep exits with an error at the end."""


if __name__ == "__main__":
    main()
