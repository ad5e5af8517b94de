"""How much of a trained agent's return survives one cut, without any training after it.

Loads a finished run (``model.zip``, ``vecnormalize.pkl``), records the states its deterministic policy visits,
and for each sparsity and each compensation cuts the policy's hidden neurons once (scored by the run's
importance criterion, or ``--importance``, on those states, with the layer allocation of ``select_alive``) and
evaluates the cut agent. It isolates what a cut takes from a network that carries a learned behaviour, which
training-time pruning has to win back: ``none`` drops the neurons, ``mean`` folds their mean activation into the
next layer's bias and ``linear`` also their least-squares estimate from the kept neurons
(``prune_rl.core.fold_linear_``). The value network is left dense (it does not act).

``--distill-steps`` also fits each cut policy back to the dense policy's outputs on the same states
(``prune_rl.core.distill_``, full-batch Adam at ``--distill-lr``) before it is evaluated; 0 (the default)
evaluates the cut alone. Several values compare them.

``--stats`` also prints, for each policy hidden layer of the dense and of every cut agent, its alive neurons,
the mean norm of their incoming weights and the share of (neuron, state) pairs with ``|activation| > tanh(2)``
(for tanh units: the saturated share, where gradients through the unit are under a tenth of their peak).

Example::

    python scripts/cut_once.py outputs/tuning/walker_seed4/runs/walker2d__ppo__none__seed4_500000 \\
        --sparsities 0.25 0.5 0.75 0.9 0.95 --episodes 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from prune_rl.config import TrainConfig
from prune_rl.environment import make_env
from prune_rl.core import FOLDS as COMPENSATIONS  # the folds, by their old name here
from prune_rl.core import IMPORTANCES, HiddenLayer, NeuronMask, distill_, fold_, select_alive
from prune_rl.core.importance import probe_activations
from prune_rl.sb3.networks import prunable_nets
from prune_rl.sb3.probe import Probe
from prune_rl.runner import rundir
from prune_rl.runner.evaluate import evaluate


SATURATED = float(np.tanh(2.0))  # |activation| past which a tanh unit passes under a tenth of its peak gradient


def visited_states(model: BaseAlgorithm, cfg: TrainConfig, vecnorm: Path | None, n_states: int) -> torch.Tensor:
    """Normalised observations of the deterministic policy, on an env seeded apart from the evaluation's."""
    env = make_env(cfg.env, seed=cfg.seed + 10_000, n_envs=1, training=False)
    if isinstance(env, VecNormalize) and vecnorm is not None:
        env = VecNormalize.load(str(vecnorm), env.venv)
        env.training, env.norm_reward = False, False
    obs, states = env.reset(), list[np.ndarray]()
    while len(states) < n_states:
        assert isinstance(obs, np.ndarray)
        states.append(obs[0].copy())
        action, _ = model.predict(obs, deterministic=True)
        obs, _, _, _ = env.step(action)
    env.close()
    return torch.as_tensor(np.stack(states), dtype=torch.float32)


def policy_probe(model: BaseAlgorithm, states: torch.Tensor) -> tuple[Probe, list[HiddenLayer]]:
    """The policy's hidden layers, and a probe that runs the model on ``states`` (in evaluation mode, on its device)."""
    probe = Probe(model, len(states))
    probe.batch = (states.to(model.device), None)
    model.policy.set_training_mode(False)
    return probe, [layer for net in prunable_nets(model) if net.role == "policy" for layer in net.layers]


def cut(
    model: BaseAlgorithm,
    cfg: TrainConfig,
    states: torch.Tensor,
    sparsity: float,
    compensation: str,
    distill_steps: int = 0,
    distill_lr: float = 1e-3,
) -> tuple[int, tuple[float, float]]:
    """
    Cut the policy network once in place, then distill it towards its outputs before the cut.

    :return: Its alive hidden neurons, and the output loss (:func:`prune_rl.core.output_loss`) before and after
        distillation.
    """
    probe, layers = policy_probe(model, states)
    with torch.no_grad():
        targets = probe()
    scores = IMPORTANCES[cfg.pruning.importance](layers, probe)
    acts = probe_activations(layers, probe, "compensation")
    alive = [torch.ones(layer.n_neurons, dtype=torch.bool, device=model.device) for layer in layers]
    new_alive, _ = select_alive(scores, alive, sparsity, cfg.pruning.min_neurons)
    masks = [NeuronMask(layer, keep) for layer, keep in zip(layers, new_alive, strict=True)]
    for layer, old, keep, act, mask in zip(layers, alive, new_alive, acts, masks, strict=True):
        fold_(compensation, layer, keep, old & ~keep, act)
        mask.apply_()
    params = [p for net in prunable_nets(model) if net.role == "policy" for p in net.parameters()]
    losses = distill_(params, probe, targets, masks, distill_steps, distill_lr)
    return sum(int(k.sum()) for k in new_alive), losses


@torch.no_grad()
def layer_stats(model: BaseAlgorithm, states: torch.Tensor) -> list[dict]:
    """
    What the policy's hidden layers look like on ``states``.

    :param model: The SB3 model (dense or cut).
    :param states: Normalised observations, ``(n_states, obs_dim)``.
    :return: Per policy hidden layer: ``layer``, ``alive`` neurons, ``in_norm`` (mean L2 norm of the alive
        neurons' incoming weights) and ``saturated`` (share of alive (neuron, state) pairs with
        ``|activation| > tanh(2)``).
    """
    probe, layers = policy_probe(model, states)
    rows = []
    for layer, act in zip(layers, probe_activations(layers, probe, "layer stats"), strict=True):
        alive = layer.group_norms() > 0
        rows.append(
            {
                "layer": layer.name,
                "alive": int(alive.sum()),
                "in_norm": float(layer.producer.weight[alive].norm(dim=1).mean()) if bool(alive.any()) else 0.0,
                "saturated": float((act[:, alive].abs() > SATURATED).float().mean()) if bool(alive.any()) else 0.0,
            }
        )
    return rows


def _print_stats(rows: list[dict]) -> None:
    for row in rows:
        print(
            f"    {row['layer']}: {row['alive']} alive, incoming norm {row['in_norm']:.2f}, saturated {row['saturated']:.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished run directory")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.75, 0.9, 0.95])
    parser.add_argument("--compensations", nargs="+", choices=COMPENSATIONS, default=list(COMPENSATIONS))
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per cut agent")
    parser.add_argument("--states", type=int, default=2048, help="visited states that score and fit the cut")
    parser.add_argument("--importance", choices=sorted(IMPORTANCES), help="criterion (default: the run's)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--stats", action="store_true", help="per-layer weight norms and saturation as well")
    parser.add_argument("--distill-steps", type=int, nargs="+", default=[0], help="Adam steps fitting each cut back")
    parser.add_argument("--distill-lr", type=float, default=1e-3)
    args = parser.parse_args()

    cfg = rundir.read_config(args.run_dir)
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, n_episodes=args.episodes, deterministic=True))
    if args.importance:
        cfg = dataclasses.replace(cfg, pruning=dataclasses.replace(cfg.pruning, importance=args.importance))
    vecnorm = rundir.vecnormalize_file(args.run_dir, cfg)

    def load() -> BaseAlgorithm:
        return rundir.load_model(args.run_dir, cfg)

    states = visited_states(load(), cfg, vecnorm, args.states)
    saved = load()
    rows = [{"sparsity": 0.0, "compensation": "-", "alive": None, **evaluate(saved, cfg, vecnormalize=vecnorm)}]
    print(f"as saved: {rows[0]['mean_return']:.1f} ± {rows[0]['std_return']:.1f}", flush=True)
    if args.stats:
        rows[0]["layers"] = layer_stats(saved, states)
        _print_stats(rows[0]["layers"])
    for sparsity in args.sparsities:
        for compensation in args.compensations:
            for steps in args.distill_steps:
                model = load()
                alive, (before, after) = cut(model, cfg, states, sparsity, compensation, steps, args.distill_lr)
                stats = layer_stats(model, states) if args.stats else None
                result = evaluate(model, cfg, vecnormalize=vecnorm)
                row = {"sparsity": sparsity, "compensation": compensation, "alive": alive, "distill_steps": steps}
                rows.append(row | {"output_loss": [before, after], **result})
                mean, std = result["mean_return"], result["std_return"]
                print(
                    f"{sparsity:.2f} {compensation:>6} ({alive} alive), {steps} distill steps (output loss {before:.3f}"
                    f" -> {after:.3f}): {mean:.1f} ± {std:.1f}",
                    flush=True,
                )
                if stats is not None:
                    rows[-1]["layers"] = stats
                    _print_stats(stats)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
