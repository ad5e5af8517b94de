"""Replay a finished pruned run and keep what each pruning event saw: its probe states and the policy around it.

Training is deterministic (same config, code and seed, one torch thread), so a run trained again from its saved
``config.yaml`` repeats the original step for step. This script does that up to ``--until`` steps and, for every
pruning event from ``--since`` steps on, saves ``event_<steps>.pt`` in ``--out``: the probe's observations, the
policy's ``state_dict`` before and after the event (cut, fold and distillation), and the distillation losses.
It then prints, per event, the output loss of the cut on its own probe and on the other saved events' probe
states (pooled), and how spread the probe's observations were: a cut fitted to states the policy does not
otherwise visit shows as a small loss on its own probe and a large one on the others (results/walker2d_tuning.md,
eighteenth session). ``--analyse-only`` prints that for events saved before. PPO/A2C runs.

Examples::

    python scripts/replay_events.py outputs/tuning/walker_1m_distill/runs/walker2d__ppo__dsp__seed2_1000000 \\
        --since 600000 --until 710000 --out outputs/debug/seed2
    python scripts/replay_events.py RUN_DIR --out outputs/debug/seed2 --analyse-only
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from prune_rl.runner import rundir
from prune_rl.core import output_loss
from prune_rl.methods import DynamicStructuredPruner
from prune_rl.sb3.probe import Probe
from prune_rl.runner.train import run


class _Done(Exception):
    """Raised inside ``learn()`` once the last wanted event is saved."""


def _cpu_state(probe: Probe) -> dict[str, torch.Tensor]:
    """A copy of the policy's weights on the CPU, so saved events load and are analysed on any machine."""
    return {k: v.cpu().clone() for k, v in probe.model.policy.state_dict().items()}


def replay(run_dir: Path, out: Path, since: int, until: int) -> list[Path]:
    """
    Train ``run_dir``'s config again into ``out / "run"``, saving every pruning event from ``since`` steps on.

    :return: The saved event files, in order.
    """
    cfg = rundir.read_config(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    original = DynamicStructuredPruner.step

    def recording(self: DynamicStructuredPruner, progress: float, probe: Probe) -> None:  # type: ignore[override]
        steps = probe.model.num_timesteps
        if steps < since:
            original(self, progress, probe)
            return
        before = _cpu_state(probe)
        original(self, progress, probe)
        assert probe.batch is not None
        event = {
            "steps": steps,
            "obs": probe.batch[0].cpu().clone(),
            "before": before,
            "after": _cpu_state(probe),
            "distill_losses": self.distill_losses,
        }
        saved.append(out / f"event_{steps}.pt")
        torch.save(event, saved[-1])
        print(f"saved the event at {steps} steps", flush=True)
        if steps >= until:
            raise _Done

    DynamicStructuredPruner.step = recording  # type: ignore[method-assign, assignment]
    try:
        run(cfg, out / "run")
    except _Done:
        pass
    finally:
        DynamicStructuredPruner.step = original  # type: ignore[method-assign]
    return saved


def analyse(run_dir: Path, out: Path) -> list[dict[str, Any]]:
    """
    Per saved event: the cut's output loss on its own probe and on the other events' probe states.

    :param run_dir: The replayed run (its ``config.yaml`` and ``model.zip`` give the policy's structure).
    :param out: The directory the events were saved in.
    :return: One row per event: ``steps``, ``own`` and ``others`` (:func:`prune_rl.core.output_loss` of the
        policy after the event against before it), ``spread`` (mean standard deviation of the probe's
        observations) and ``rank`` (effective rank of the centred observations, Roy & Vetterli 2007).
    """
    model = rundir.load_model(run_dir, rundir.read_config(run_dir))
    policy = model.policy
    assert isinstance(policy, ActorCriticPolicy), "events can be analysed for PPO/A2C runs"
    policy.set_training_mode(False)

    probe = Probe(model, 0)

    def outputs(state: dict[str, torch.Tensor], obs: torch.Tensor) -> list[torch.Tensor]:
        policy.load_state_dict(state)
        probe.batch = (obs, None)
        with torch.no_grad():
            return probe()

    paths = sorted(out.glob("event_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    events = [torch.load(p, map_location="cpu") for p in paths]
    rows = []
    for i, (path, event) in enumerate(zip(paths, events, strict=True)):
        obs = event["obs"]
        others = [e["obs"] for j, e in enumerate(events) if j != i]
        singular = torch.linalg.svdvals(obs - obs.mean(0))
        row = {
            "steps": int(path.stem.split("_")[1]),
            "own": float(output_loss(outputs(event["after"], obs), outputs(event["before"], obs))),
            "others": float("nan"),
            "spread": float(obs.std(0).mean()),
            "rank": float(singular.sum() ** 2 / singular.pow(2).sum().clamp_min(1e-12)),
        }
        if others:
            pooled = torch.cat(others)
            row["others"] = float(output_loss(outputs(event["after"], pooled), outputs(event["before"], pooled)))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished pruned run")
    parser.add_argument("--out", type=Path, default=Path("outputs/replay"), help="where the events are saved")
    parser.add_argument("--since", type=int, default=0, help="save the events from this many steps on")
    parser.add_argument("--until", type=int, default=None, help="stop after the first event at or past this")
    parser.add_argument("--analyse-only", action="store_true", help="analyse the events already in --out")
    args = parser.parse_args()
    if not args.analyse_only:
        replay(args.run_dir, args.out, args.since, args.until if args.until is not None else 2**62)
    print("| steps | output loss, own probe | on the other events' probes | probe spread | effective rank |")
    print("|---|---|---|---|---|")
    for r in analyse(args.run_dir, args.out):
        print(f"| {r['steps']} | {r['own']:.3g} | {r['others']:.3g} | {r['spread']:.3f} | {r['rank']:.1f} |")


if __name__ == "__main__":
    main()
