"""Dense vs pruned benchmark: every (task, seed) trained with ``pruning=none`` and ``pruning=dsp`` on one budget.

Resumable: a run whose ``results.json`` exists is skipped, so the matrix can be filled a task at a time and
over several sessions. A finished run whose ``config.yaml`` differs from what the same command composes now
(a default changed in between) is stale: it is reported and left alone, or moved to ``<root>/stale/`` and
trained again with ``--rerun-stale``, so that one table never mixes two versions of a method. Writes a
markdown and a CSV table of the finished runs of ``--envs`` and ``--algo`` in the root, by default into the root
beside them (``--table`` to write it elsewhere). ``--merge`` replaces only the table's rows of those tasks that
have runs in this root and keeps its other rows, each with the command that wrote it: the repository's table can
be updated one task at a time from roots made in different sessions or on different machines.

Beside the table, ``<table>_runs.csv`` keeps one record per run: its return, sparsity, a digest of its config
(seed aside) and the command that tabled it. With ``--merge`` a run's record replaces the file's record of the
same run and the file's other records are kept, and a task's row aggregates the root's runs with the file's
records of that task's other seeds, so seeds trained on another machine stay in the row after their run
directories are gone. Records made with another config than the root's runs of the same task and method stay in
the file but out of the row, and are reported; so are runs in the root that today's composition would train
differently.

Both the stale check and the training runs use the ``prune_rl`` package of the checkout this script is in,
whatever the working directory and whatever checkout is installed: a benchmark run from a second worktree (to
keep training on a frozen commit while the first one changes) trains and compares that worktree's code and
configs. Run roots are relative to the working directory.

Returns are each run's final evaluation (``eval.n_episodes``, 10 by default). ``--eval-episodes N`` evaluates
every finished run again over N episodes from its saved model (same seed, so the first episodes repeat the final
evaluation's), caches the result in the run directory as ``eval_<N>ep.json``, and tabulates that instead.

Examples::

    python scripts/benchmark_pruning.py --envs cartpole --seeds 0 1 2
    python scripts/benchmark_pruning.py --envs hopper --seeds 0 --jobs 2 --n-timesteps 300000
    python scripts/benchmark_pruning.py --table-only        # rebuild the tables from finished runs
    python scripts/benchmark_pruning.py --table-only --eval-episodes 50   # returns over 50 episodes per run
    python scripts/benchmark_pruning.py --envs cartpole --rerun-stale   # retrain runs made with old defaults
    python scripts/benchmark_pruning.py --table-only --eval-episodes 50 --table results/pruning_benchmark.md --merge
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The checkout this script belongs to: its prune_rl is the one composed here and trained in the subprocesses.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))

ENVS = ("cartpole", "lunarlander", "hopper", "walker2d")
METHODS = ("none", "dsp")
# Keys added to the config after runs were made, with the value that reproduces what those runs did (the only
# behaviour there was before the key existed). A run that lacks such a key is read as having this value.
# Paths are today's: a saved config written before dsp's knobs were cut (2026-12-02) is first read as today's
# (prune_rl.config.legacy_pruning), so its `compensate` is looked up as `repair.fold`.
ADDED_KEYS: dict[tuple[str, ...], object] = {
    ("pruning", "repair", "fold"): "none",
    ("pruning", "repair", "fan_in_lr"): 0.0,
    ("pruning", "schedule"): "cubic",
    ("pruning", "repair", "distill_steps"): 0,
    ("pruning", "repair", "distill_lr"): 1e-3,
    ("pruning", "probe_window"): "rollout",
}
# Values a key once took that now read differently (same behaviour, new spelling).
RENAMED_VALUES: dict[tuple[str, ...], dict[object, object]] = {
    ("pruning", "repair", "fold"): {False: "none", True: "mean"},
}


def run_dir(root: Path, env: str, algo: str, method: str, seed: int, budget: int | None) -> Path:
    tag = f"_{budget}" if budget else ""
    return root / "runs" / f"{env}__{algo}__{method}__seed{seed}{tag}"


def overrides(env: str, algo: str, method: str, seed: int, budget: int | None, extra: list[str]) -> list[str]:
    """The Hydra overrides of one benchmark run (its run directory aside)."""
    return [
        f"env={env}",
        f"algo={algo}",
        f"pruning={method}",
        f"seed={seed}",
        "progress_bar=false",
        *([f"n_timesteps={budget}"] if budget else []),
        *extra,
    ]


def composed(run_overrides: list[str]) -> dict:
    """The resolved config that ``prune-rl train`` composes today for these overrides."""
    from omegaconf import OmegaConf

    from prune_rl.app import compose_config

    return OmegaConf.to_container(compose_config(run_overrides), resolve=True)  # type: ignore[return-value]


def differences(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config trees, as ``key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += differences(old.get(key, "<absent>"), new.get(key, "<absent>"), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old} -> {new}"]


def _saved(out: Path, today: dict) -> dict:
    """A finished run's saved config, with keys added since and values renamed since read as they are today."""
    from omegaconf import OmegaConf

    from prune_rl.config import legacy_pruning

    saved = OmegaConf.to_container(OmegaConf.load(out / "config.yaml"), resolve=True)
    assert isinstance(saved, dict)
    saved.pop("config_files", None)  # which files were read, not a setting
    if isinstance(saved.get("pruning"), dict):
        saved["pruning"] = legacy_pruning(saved["pruning"])
        if saved["pruning"].get("name", "none") != "none":
            saved["pruning"].setdefault("method", saved["pruning"]["name"])
    for path, value in ADDED_KEYS.items():
        parent, now = _node(saved, path[:-1]), _node(today, path[:-1])
        # Only where today's config has the key: a dense run's `pruning` node never gets one.
        if isinstance(parent, dict) and isinstance(now, dict) and path[-1] in now:
            parent.setdefault(path[-1], value)
    for path, renames in RENAMED_VALUES.items():
        parent = _node(saved, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            old = parent[path[-1]]
            parent[path[-1]] = renames.get(old, old)
    return saved  # type: ignore[return-value]


def stale(out: Path, run_overrides: list[str]) -> list[str]:
    """How a finished run's saved config differs from today's composition (empty: still valid)."""
    today = composed(run_overrides)
    return differences(_saved(out, today), today)


def config_digest(config: dict) -> str:
    """
    A short digest of a run's config without its seed and name: equal for the seeds of one setting.

    Keys of :data:`ADDED_KEYS` that hold the value every run had before they existed are left out, so that a key
    added later does not change the digests of the runs already recorded.

    :param config: A resolved config (``_saved`` or ``composed``).
    """
    skip = ("seed", "run_name", "config_files")
    setting = json.loads(json.dumps({k: v for k, v in config.items() if k not in skip}, default=str))
    for path, value in ADDED_KEYS.items():
        parent = _node(setting, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] == value:
            del parent[path[-1]]
    return hashlib.sha1(json.dumps(setting, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _node(tree: object, keys: tuple[str, ...]) -> object:
    """The subtree of a config tree at ``keys`` (None where the path does not exist)."""
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def train(
    root: Path, env: str, algo: str, method: str, seed: int, budget: int | None, extra: list[str], rerun_stale: bool
) -> Path:
    out = run_dir(root, env, algo, method, seed, budget)
    run_overrides = overrides(env, algo, method, seed, budget, extra)
    if (out / "results.json").is_file():
        changed = stale(out, run_overrides)
        if not changed:
            print(f"skip (done): {out.name}", flush=True)
            return out
        print(f"stale: {out.name} was trained with another config ({'; '.join(changed)})", flush=True)
        if not rerun_stale:
            print("  left as it is; --rerun-stale moves it to stale/ and trains it again", flush=True)
            return out
        (root / "stale").mkdir(parents=True, exist_ok=True)
        out.rename(root / "stale" / f"{out.name}.{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    if not _lock(out / ".lock"):
        print(f"skip (running in another process): {out.name}", flush=True)
        return out
    cmd = [sys.executable, "-m", "prune_rl.cli", "train", *run_overrides, f"hydra.run.dir={out.resolve()}"]
    print("run:", " ".join(cmd[3:]), flush=True)
    try:
        with open(out / "stdout.log", "w") as log:
            # cwd=REPO: `python -m` imports prune_rl from its working directory first.
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    finally:
        (out / ".lock").unlink(missing_ok=True)
    if code != 0:
        print(f"FAILED ({code}): {out}/stdout.log", flush=True)
    return out


def _lock(path: Path) -> bool:
    """Take a run directory for this process; a lock left by a dead process is taken over."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or "0"), 0)
            return False  # its owner is alive
        except (ProcessLookupError, ValueError):
            path.unlink(missing_ok=True)
            return _lock(path)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _mean_std(values: list[float]) -> str:
    """Mean ± standard deviation across seeds (the mean alone for one seed)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


def reevaluate(out: Path, n_episodes: int) -> dict:
    """
    A finished run's deterministic evaluation over ``n_episodes``, cached in ``eval_<n_episodes>ep.json``.

    :param out: The run directory.
    :param n_episodes: Episodes.
    :return: ``{env_id, algo, mean_return, std_return, n_episodes, deterministic}``.
    """
    cache = out / f"eval_{n_episodes}ep.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from prune_rl.runner.evaluate import evaluate_run

    start = time.perf_counter()
    result = evaluate_run(out, n_episodes=n_episodes)
    print(f"evaluated {out.name} over {n_episodes} episodes in {time.perf_counter() - start:.0f} s", flush=True)
    cache.write_text(json.dumps(result, indent=2) + "\n")
    return result


RUN_COLUMNS = (
    "env",
    "algo",
    "timesteps",
    "method",
    "seed",
    "eval_episodes",
    "mean_return",
    "std_return",
    "policy_neurons",
    "policy_alive_neurons",
    "policy_neuron_sparsity",
    "policy_weight_sparsity",
    "value_neuron_sparsity",
    "value_weight_sparsity",
    "config",
    "written_by",
)
RUN_KEY = ("env", "algo", "timesteps", "method", "seed")


def run_records(
    root: Path,
    eval_episodes: int | None = None,
    envs: Sequence[str] = ENVS,
    algo: str | None = None,
    command: str = "",
    extra: Sequence[str] = (),
) -> list[dict]:
    """
    One record per finished run in the root: what the table aggregates, kept per run in ``<table>_runs.csv``.

    :param root: The benchmark root.
    :param eval_episodes: Evaluate every run again over this many episodes (None: the runs' final evaluations).
    :param envs: Only the runs of these tasks (short names, as in run directory names).
    :param algo: Only the runs of this algorithm (None: every algorithm).
    :param command: The command that tabulates them, kept in each record's ``written_by``.
    :param extra: The command's extra Hydra overrides: a run that today's composition with them would train
        differently is reported as stale (and still tabulated).
    :return: Records with the keys of :data:`RUN_COLUMNS`; the value columns are the mean over a run's value
        networks (SAC and TD3 have two critics), a dense run's sparsity columns are empty, and ``config`` is
        the :func:`config_digest` of the run's saved config.
    """

    records = []
    for path in sorted((root / "runs").glob("*/results.json")):
        env, run_algo = path.parent.name.split("__")[:2]  # run_dir's naming
        if env not in envs or algo not in (None, run_algo):
            continue
        r = json.loads(path.read_text())
        run_overrides = overrides(env, r["algo"], r["pruning"], r["seed"], r["n_timesteps"], list(extra))
        today = composed(run_overrides)
        saved = _saved(path.parent, today)
        if changed := differences(saved, today):
            print(f"stale: {path.parent.name} was trained with another config ({'; '.join(changed)})", flush=True)
        evaluation = reevaluate(path.parent, eval_episodes) if eval_episodes else r["eval"]
        nets = list((r.get("sparsity") or {}).values())
        policy = [s for s in nets if s["role"] == "policy"][:1]
        value = [s for s in nets if s["role"] == "value"]

        def mean(stats: list[dict], key: str) -> float | str:
            return statistics.mean(s[key] for s in stats) if stats else ""

        records.append(
            {
                "env": r["env_id"],
                "algo": r["algo"],
                "timesteps": r["n_timesteps"],
                "method": r["pruning"],
                "seed": r["seed"],
                "eval_episodes": evaluation["n_episodes"],
                "mean_return": evaluation["mean_return"],
                "std_return": evaluation["std_return"],
                "policy_neurons": mean(policy, "neurons"),
                "policy_alive_neurons": mean(policy, "alive_neurons"),
                "policy_neuron_sparsity": mean(policy, "neuron_sparsity"),
                "policy_weight_sparsity": mean(policy, "weight_sparsity"),
                "value_neuron_sparsity": mean(value, "neuron_sparsity"),
                "value_weight_sparsity": mean(value, "weight_sparsity"),
                "config": config_digest(saved),
                "written_by": command,
            }
        )
    return records


def aggregate(records: list[dict]) -> list[dict]:
    """
    The table's rows: dense and pruned runs aggregated per (env, algo, budget).

    No wall-time ratio here: dense and pruned runs of a task may have run at different times and loads; the
    pruning overhead is measured by ``scripts/bench_overhead.py``, interleaved in one run.

    :param records: Run records (:func:`run_records`, or read back from a runs CSV: values may be strings).
    :return: One row per task, sorted by task.
    """
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in records:
        key = (r["env"], r["algo"], int(r["timesteps"]))
        groups.setdefault(key, {}).setdefault(r["method"], []).append(r)
    rows = []
    for (env_id, algo, budget), by_method in sorted(groups.items()):
        dense, pruned = by_method.get("none", []), by_method.get("dsp", [])
        dense, pruned = sorted(dense, key=lambda r: int(r["seed"])), sorted(pruned, key=lambda r: int(r["seed"]))
        d_ret = [float(r["mean_return"]) for r in dense]
        p_ret = [float(r["mean_return"]) for r in pruned]
        ratio = statistics.mean(p_ret) / statistics.mean(d_ret) if d_ret and p_ret and statistics.mean(d_ret) else None
        val = [r for r in pruned if r["value_neuron_sparsity"] != ""]

        def mean(runs: list[dict], key: str) -> str:
            return f"{statistics.mean(float(r[key]) for r in runs):.3f}" if runs else "-"

        rows.append(
            {
                "env": env_id,
                "algo": algo,
                "timesteps": budget,
                "seeds_dense": len(dense),
                "seeds_pruned": len(pruned),
                "eval_episodes": "/".join(sorted({str(r["eval_episodes"]) for r in dense + pruned})),
                "return_dense": _mean_std(d_ret),
                "return_pruned": _mean_std(p_ret),
                "return_ratio": f"{ratio:.3f}" if ratio is not None else "-",
                "policy_neuron_sparsity": mean(pruned, "policy_neuron_sparsity"),
                "policy_weight_sparsity": mean(pruned, "policy_weight_sparsity"),
                "policy_alive_neurons": "/".join(str(int(float(r["policy_alive_neurons"]))) for r in pruned)
                + (f" of {int(float(pruned[0]['policy_neurons']))}" if pruned else ""),
                "value_neuron_sparsity": mean(val, "value_neuron_sparsity"),
                "value_weight_sparsity": mean(val, "value_weight_sparsity"),
            }
        )
    return rows


def table(root: Path, eval_episodes: int | None = None, envs: Sequence[str] = ENVS, algo: str | None = None) -> list[dict]:
    """
    Aggregate the finished runs in the root per (env, algo, budget): :func:`aggregate` of :func:`run_records`.

    :param root: The benchmark root.
    :param eval_episodes: Evaluate every run again over this many episodes (None: the runs' final evaluations).
    :param envs: Only the runs of these tasks (short names, as in run directory names).
    :param algo: Only the runs of this algorithm (None: every algorithm).
    """
    return aggregate(run_records(root, eval_episodes, envs, algo))


ROW_KEY = ("env", "algo", "timesteps")
WRITTEN_BY = re.compile(r"<!-- (?:(?P<row>.+?) )?written by: (?P<command>.*) -->")


def _key(row: dict) -> str:
    return " ".join(str(row[k]) for k in ROW_KEY)


def read_table(out: Path) -> tuple[list[dict], dict[str, str]]:
    """
    A table written before: its CSV rows and the command that wrote each row (from the markdown's comments).

    :param out: The table's path (``.md``; the CSV beside it holds the rows).
    :return: The rows (empty if there is no table) and ``{"env algo timesteps": command}``.
    """
    if not out.with_suffix(".csv").is_file():
        return [], {}
    with open(out.with_suffix(".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    commands: dict[str, str] = {}
    text = out.with_suffix(".md").read_text() if out.with_suffix(".md").is_file() else ""
    for match in WRITTEN_BY.finditer(text):
        for row in rows if match["row"] is None else [r for r in rows if _key(r) == match["row"]]:
            commands[_key(row)] = match["command"]
    return rows, commands


def merge(rows: list[dict], command: str, out: Path) -> tuple[list[dict], dict[str, str]]:
    """
    ``rows`` in place of the table's rows for the same tasks; the table's rows of other tasks kept.

    :param rows: New rows, all written by ``command``.
    :param command: The command that made them.
    :param out: The table to merge into.
    :return: The merged rows, sorted by task, and the command that wrote each.
    """
    old, old_commands = read_table(out)
    if old and rows and list(old[0]) != [str(k) for k in rows[0]]:
        raise SystemExit(
            f"{out.with_suffix('.csv')} has other columns than this script writes: write it again without --merge"
        )
    new_keys = {_key(r) for r in rows}
    kept = [r for r in old if _key(r) not in new_keys]
    commands = {k: old_commands.get(k, "(unknown)") for k in map(_key, kept)} | {k: command for k in new_keys}
    merged = sorted(
        kept + [{k: str(v) for k, v in r.items()} for r in rows], key=lambda r: (r["env"], r["algo"], int(r["timesteps"]))
    )
    return merged, commands


def runs_csv(out: Path) -> Path:
    """The per-run CSV beside the table ``out``: ``<stem>_runs.csv``."""
    return out.with_name(f"{out.stem}_runs.csv")


def read_records(out: Path) -> list[dict]:
    """The run records written beside the table ``out`` before (empty if there are none)."""
    if not runs_csv(out).is_file():
        return []
    with open(runs_csv(out), newline="") as f:
        return list(csv.DictReader(f))


def _run_key(record: dict) -> tuple[str, ...]:
    return tuple(str(record[k]) for k in RUN_KEY)


def merge_records(new: list[dict], old: list[dict]) -> tuple[list[dict], list[dict]]:
    """
    ``new`` run records merged into ``old`` ones, and the records the rows of ``new``'s tasks aggregate.

    A new record replaces the old record of the same run (task, method and seed); old records of other runs
    are kept, so a row can gather seeds trained on different machines whose run directories are gone. An old
    record of a task and method that ``new`` has, made with another config (``config`` digest) than all of
    ``new``'s, stays in the file but out of the row, and is reported.

    :param new: Records of the runs in this root (:func:`run_records`).
    :param old: Records read back from the runs CSV (:func:`read_records`).
    :return: All records, sorted by run, and those of ``new``'s tasks that the rows aggregate.
    """
    replaced = {_run_key(r) for r in new}
    merged = [r for r in old if _run_key(r) not in replaced] + [{k: str(v) for k, v in r.items()} for r in new]
    merged.sort(key=lambda r: (r["env"], r["algo"], int(r["timesteps"]), r["method"], int(r["seed"])))
    tasks = {_run_key(r)[:3] for r in new}
    settings: dict[tuple[str, ...], set[str]] = {}
    for r in new:
        settings.setdefault(_run_key(r)[:4], set()).add(str(r["config"]))
    used = []
    for r in merged:
        if _run_key(r)[:3] not in tasks:
            continue
        wanted = settings.get(_run_key(r)[:4])
        if wanted is not None and r.get("config") not in wanted:
            print(f"left out: {' '.join(_run_key(r))} (config {r.get('config')}, this root's {sorted(wanted)})")
            continue
        used.append(r)
    return merged, used


def write_tables(
    rows: list[dict], out: Path, command: str, merge_into: bool = False, records: list[dict] | None = None
) -> None:
    """
    Write ``rows`` as ``out`` (markdown) and the CSV beside it, and ``records`` as the runs CSV.

    :param rows: One row per task (env, algo, budget).
    :param out: The markdown table's path.
    :param command: The command that made the rows, written into the markdown as a comment.
    :param merge_into: Keep the existing table's rows of tasks that ``rows`` lack (see :func:`merge`) and, with
        ``records``, the runs CSV's records of runs that ``records`` lack (see :func:`merge_records`); the rows
        of ``records``' tasks are then aggregated from both.
    :param records: The runs behind ``rows`` (:func:`run_records`), written to :func:`runs_csv`.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        print("no finished runs yet")
        return
    if records is not None and merge_into:
        records, used = merge_records(records, read_records(out))
        rows = aggregate(used)
    comments = [f"<!-- written by: {command} -->"]
    if merge_into:
        rows, commands = merge(rows, command, out)
        if len(set(commands.values())) > 1:
            comments = [f"<!-- {_key(r)} written by: {commands[_key(r)]} -->" for r in rows]
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if records is not None:
        with open(runs_csv(out), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(RUN_COLUMNS))
            writer.writeheader()
            writer.writerows(records)
    lines = [*comments, "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[len(comments) :]))
    print(f"wrote {out.with_suffix('.md')}, .csv" + (f" and {runs_csv(out).name}" if records is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-timesteps", type=int, default=None, help="budget (default: each task's own)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--root", type=Path, default=Path("outputs/benchmark"), help="where run directories go")
    parser.add_argument("--table", type=Path, default=None, help="markdown table (default: ROOT/pruning_benchmark.md)")
    parser.add_argument(
        "--merge", action="store_true", help="replace only the table's rows of tasks with runs in ROOT, keep the rest"
    )
    parser.add_argument("--table-only", action="store_true", help="only rebuild the tables")
    parser.add_argument("--rerun-stale", action="store_true", help="retrain runs whose config changed since")
    parser.add_argument(
        "--eval-episodes", type=int, default=None, help="evaluate finished runs again over N episodes for the tables"
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_intermixed_args()  # overrides may come before and after options
    if args.eval_episodes is not None and args.eval_episodes < 1:
        parser.error(f"--eval-episodes must be at least 1, got {args.eval_episodes}")

    ok = True
    if not args.table_only:
        todo = list(itertools.product(args.envs, args.seeds, args.methods))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:

            def one(task: tuple[str, int, str]) -> bool:
                env, seed, method = task
                try:
                    out = train(args.root, env, args.algo, method, seed, args.n_timesteps, args.overrides, args.rerun_stale)
                except Exception as exc:  # say so now, not when the other jobs are done; they go on
                    print(f"FAILED: {env} seed {seed} {method}: {type(exc).__name__}: {exc}", flush=True)
                    return False
                return (out / "results.json").is_file()

            ok = all(list(pool.map(one, todo)))
    out = args.table if args.table is not None else args.root / "pruning_benchmark.md"
    command = "python " + " ".join(sys.argv)
    records = run_records(args.root, args.eval_episodes, args.envs, args.algo, command, args.overrides)
    write_tables(aggregate(records), out, command, args.merge, records)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
