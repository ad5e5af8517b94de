"""PuRL's central claim, measured: does a reward at every pruning step find a good cut sooner than one at the end?

For each trained run directory given (dense runs, e.g. ``outputs/compare/runs/*__none__*``), the deployed network
is searched by :func:`prune_rl.sb3.purl.search` with ``reward=step`` (PuRL) and ``reward=episode`` (AMC), with
several seeds of the pruning agent, on the same stored states: ``--states`` states visited by the trained agent
acting deterministically on an env seeded apart from training and evaluation. Only the search runs (no recovery,
no RL training), so only the reward differs between the two arms. For PPO, A2C and DQN runs (the stored states
have no actions, which SAC's and TD3's critics would need).

A search "reaches" the target when the best fidelity it has found is at least ``--level`` times the best fidelity
any search (either reward, any seed) found for that network, sparsity and number of passes. Reported per reward:
how many searches reached it, the pruning episodes and seconds they took (a search that never reached it counts
its whole budget), the best fidelity at the end, the trained agent's deterministic episode, and the mean fidelity
of the last 20 episodes (what the agent learned, not what exploration stumbled on).

Example::

    python scripts/purl_reward_ablation.py outputs/compare/runs/cartpole__ppo__none__seed* --sparsity 0.93 \\
        --passes 1 3 --agent-seeds 5 --out results/purl_reward.md
"""

from __future__ import annotations

import argparse
import csv
import itertools
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from prune_rl.config import TrainConfig
from prune_rl.environment import make_env
from prune_rl.sb3.networks import prunable_nets
from prune_rl.sb3.probe import Probe
from prune_rl.sb3.purl import NeuronSubject, PruningEnv, PuRLConfig, search
from prune_rl.runner import rundir

COLUMNS = ("env", "sparsity", "passes", "reward", "searches", "reached", "episodes", "seconds", "best", "agent", "last20")
STATE_SEED = 20_000  # the states' env seed: apart from training (seed) and evaluation (seed + 10000)


def stored_states(run_dir: Path, cfg: TrainConfig, model: object, n_states: int) -> torch.Tensor:
    """:return: ``n_states`` observations the trained agent visits acting deterministically (normalised as it sees them)."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = make_env(cfg.env, seed=cfg.seed + STATE_SEED, n_envs=1, training=False)
    if isinstance(env, VecNormalize):
        env = VecNormalize.load(str(rundir.vecnormalize_file(run_dir, cfg)), env.venv)
        env.training, env.norm_reward = False, False
    obs, states = env.reset(), []
    while len(states) < n_states:
        states.append(np.array(obs[0], dtype=np.float32))
        action, _ = model.predict(obs, deterministic=True)  # type: ignore[attr-defined]
        obs, *_ = env.step(action)
    env.close()
    return torch.as_tensor(np.stack(states))


def searches(run_dir: Path, args: argparse.Namespace) -> list[dict]:
    """Every (sparsity, passes, reward, agent seed) search on one run's deployed network."""
    cfg = rundir.read_config(run_dir, lenient_pruning=True)
    model = rundir.load_model(run_dir, cfg)
    probe = Probe(model, args.states)
    probe.batch = (stored_states(run_dir, cfg, model, args.states), None)
    deployed = prunable_nets(model)[0]
    out = []
    for sparsity, passes, reward, seed in itertools.product(
        args.sparsity, args.passes, ("step", "episode"), range(args.agent_seeds)
    ):
        subject = NeuronSubject(deployed, probe, min_neurons=2)
        total = sum(subject.sizes)
        n_remove = total - max(int((1 - sparsity) * total + 1e-6), sum(subject.floors))
        env = PruningEnv(subject, n_remove, passes, reward)
        purl = PuRLConfig(name="purl", reward=reward, episodes=args.episodes, passes=passes, begin=0.0, end=1.0)
        found = search(env, purl, seed=seed)
        subject.reset()
        curve = list(itertools.accumulate(env.episode_fidelity[: args.episodes], max))
        out.append({
            "env": cfg.env.id, "run": run_dir.name, "sparsity": sparsity, "passes": passes, "reward": reward, "seed": seed,
            "curve": curve, "seconds_per_episode": found["seconds"] / env.episodes, "agent": found["agent_fidelity"],
            "last20": statistics.fmean(env.episode_fidelity[max(args.episodes - 20, 0) : args.episodes]),
        })  # fmt: skip
        print(f"{run_dir.name} s={sparsity} passes={passes} {reward} seed={seed}: best {curve[-1]:.3f}", flush=True)
    return out


def summarise(found: list[dict], level: float) -> list[dict]:
    """One row per (env, sparsity, passes, reward): the episodes to reach ``level`` of the best found, and the rest."""
    for item in found:  # the target of each network, sparsity and passes: level x the best any search found
        peers = [f for f in found if (f["run"], f["sparsity"], f["passes"]) == (item["run"], item["sparsity"], item["passes"])]
        target = level * max(f["curve"][-1] for f in peers)
        hit = next((i + 1 for i, best in enumerate(item["curve"]) if best >= target), None)
        item["reached"], item["episodes"] = hit is not None, hit or len(item["curve"])
    rows = []
    keys = sorted(
        {(f["env"], f["sparsity"], f["passes"], f["reward"]) for f in found}, key=lambda k: (k[0], k[1], k[2], k[3] != "step")
    )
    for env, sparsity, passes, reward in keys:
        group = [f for f in found if (f["env"], f["sparsity"], f["passes"], f["reward"]) == (env, sparsity, passes, reward)]

        def stat(values: list[float], digits: int) -> str:
            return f"{statistics.fmean(values):.{digits}f} ± {statistics.pstdev(values):.{digits}f}"

        rows.append({
            "env": env, "sparsity": sparsity, "passes": passes, "reward": reward, "searches": len(group),
            "reached": sum(f["reached"] for f in group),
            "episodes": stat([f["episodes"] for f in group], 1),
            "seconds": stat([f["episodes"] * f["seconds_per_episode"] for f in group], 2),
            "best": stat([f["curve"][-1] for f in group], 3),
            "agent": stat([f["agent"] for f in group], 3),
            "last20": stat([f["last20"] for f in group], 3),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="trained run directories (their model.zip is searched)")
    parser.add_argument("--sparsity", nargs="+", type=float, default=[0.93])
    parser.add_argument("--passes", nargs="+", type=int, default=[1])
    parser.add_argument("--episodes", type=int, default=200, help="pruning episodes per search")
    parser.add_argument("--agent-seeds", type=int, default=5)
    parser.add_argument("--states", type=int, default=2048)
    parser.add_argument("--level", type=float, default=0.99, help="share of the best fidelity found that counts as reached")
    parser.add_argument("--out", type=Path, default=Path("outputs/purl_reward.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = [item for run in args.runs for item in searches(run, args)]
    rows = summarise(found, args.level)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    command = shlex.join(["python", "scripts/purl_reward_ablation.py", *sys.argv[1:]])
    lines = [f"Made by `{command}`.", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
