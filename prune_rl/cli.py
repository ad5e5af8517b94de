"""``prune-rl``: the command-line interface.

Typer parses commands; everything after ``train`` goes to the Hydra app unchanged. Importing this
module must stay cheap (no torch, SB3 or Hydra): heavy imports happen inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="prune-rl",
    help="Compress deep RL policies while they train: structured pruning for Stable-Baselines3, driven by Hydra.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

HYDRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["--help"]}


@app.command(context_settings=HYDRA_ARGS, options_metavar="[HYDRA OVERRIDES AND FLAGS]")
def train(ctx: typer.Context) -> None:
    """
    Train an agent. Arguments are Hydra overrides and flags, passed through unchanged.

    \b
    Examples:
      prune-rl train                          PPO on CartPole-v1, pruned (default)
      prune-rl train env=hopper pruning=none  dense PPO on Hopper-v5
      prune-rl train pruning=l2_structured    another method (README: Pruning methods)
      prune-rl train env=lunarlander algo=dqn seed=3 n_timesteps=200000
      prune-rl train -m env=cartpole,lunarlander seed=0,1,2
      prune-rl train -m seed=0,1 hydra/launcher=joblib
      prune-rl train --cfg job env=walker2d   print the composed config
      prune-rl train -- --help                Hydra's help: groups, options
    """
    from prune_rl.app import check_overrides, fail, main

    problem = check_overrides(ctx.args)
    if problem is not None:
        fail(problem)
    argv = sys.argv
    sys.argv = ["prune-rl train", *ctx.args]  # @hydra.main reads its arguments from sys.argv
    try:
        main()
    finally:
        sys.argv = argv


@app.command(context_settings=HYDRA_ARGS, options_metavar="[--vecnormalize PATH] [HYDRA OVERRIDES AND FLAGS]")
def prune(
    ctx: typer.Context,
    model: Annotated[
        Path, typer.Argument(metavar="MODEL", help="A trained SB3 model (.zip from anywhere) or a prune-rl run directory.")
    ],
    vecnormalize: Annotated[
        Path | None,
        typer.Option(help="Its VecNormalize statistics (default: found beside it, by the names SB3 and the zoo give them)."),
    ] = None,
) -> None:
    """
    Prune a trained agent: fine-tune it while pruning, into a run directory like train's.

    The algorithm is read from the file, the task from its name or folder (the zoo's <env>.zip) unless env= is given;
    its networks, activation and normalisation are kept. n_timesteps (the fine-tuning budget) defaults to
    init.budget (0.1) of the task's training budget; pruning defaults to dsp_masks_early (dsp's masks, no lasso).
    Every method prunes a trained agent except scratch.

    \b
    Examples:
      prune-rl prune logs/ppo/CartPole-v1_1/CartPole-v1.zip                  95% of the policy's neurons
      prune-rl prune agent.zip env=lunarlander pruning=l2_structured n_timesteps=50000
      prune-rl prune sac_hopper.zip env=hopper --vecnormalize stats.pkl pruning=magnitude
      prune-rl prune -m agent.zip env=cartpole pruning=dsp,magnitude,none seed=0,1
    """
    from prune_rl.app import check_overrides, fail, flags_first, model_first, prune_main, prune_overrides
    from prune_rl.config import ConfigError

    try:
        model, rest = model_first(str(model), ctx.args)
        overrides = prune_overrides(model, vecnormalize, rest)
    except ConfigError as exc:
        fail(str(exc))
    args = flags_first([*overrides, *rest])
    problem = check_overrides(args, name="prune")
    if problem is not None:
        fail(problem)
    argv = sys.argv
    sys.argv = ["prune-rl prune", *args]
    try:
        prune_main()
    finally:
        sys.argv = argv


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run directory that stopped before its budget (it has a checkpoint).")],
) -> None:
    """Continue a stopped run from its latest checkpoint to its budget, in the same directory."""
    from prune_rl.app import diverged, fail, stopped
    from prune_rl.config import ConfigError
    from prune_rl.runner.checkpoint import Interrupted
    from prune_rl.runner.train import resume as resume_run
    from prune_rl.sb3.divergence import Diverged

    try:
        result = resume_run(run_dir)
    except Interrupted as exc:
        stopped(run_dir, exc)
    except Diverged as exc:
        diverged(run_dir, exc)
    except ConfigError as exc:
        fail(str(exc))
    typer.echo(f"{result.run_name}: return {result.eval['mean_return']:.2f} +- {result.eval['std_return']:.2f}")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `prune-rl train`.")],
    n_episodes: Annotated[
        int | None, typer.Option("--n-episodes", "-n", help="Episodes (default: the run's eval.n_episodes).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the evaluation env (default: the run's seed + eval.seed_offset).")
    ] = None,
    stochastic: Annotated[
        bool, typer.Option("--stochastic", help="Sample actions instead of acting deterministically.")
    ] = False,
) -> None:
    """Re-evaluate a saved run and print its mean return."""
    from prune_rl.app import fail
    from prune_rl.config import ConfigError
    from prune_rl.runner.evaluate import evaluate_run

    try:
        result = evaluate_run(run_dir, n_episodes=n_episodes, seed=seed, deterministic=not stochastic)
    except (ConfigError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(
        f"{result['env_id']} {result['algo']}: return {result['mean_return']:.2f} +- {result['std_return']:.2f} "
        f"over {result['n_episodes']} episodes"
    )


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A pruned run directory written by `prune-rl train`.")],
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="onnx, int8 (ONNX with 8-bit weights) or c; repeat or comma-separate (default: every one that applies).",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads of the torch and onnxruntime timings.")] = 1,
    repeats: Annotated[int, typer.Option(help="Measurements of each time (median and range reported).")] = 7,
    min_run_time: Annotated[float, typer.Option(help="Seconds each measurement runs at least.")] = 0.05,
    episodes: Annotated[int, typer.Option(help="Episodes comparing the int8 policy's return to the float one's.")] = 20,
) -> None:
    """Write RUN_DIR/export/: a compact SB3 model, the policy as ONNX, int8 ONNX and C, and their cost against dense."""
    from prune_rl.app import fail
    from prune_rl.runner.export import export_run, parse_formats, summary_line, written_files
    from prune_rl.runner.rundir import EXPORT_DIR

    try:
        card = export_run(
            run_dir,
            parse_formats(formats),
            threads=threads,
            repeats=repeats,
            min_run_time=min_run_time,
            episodes=episodes,
        )
    except (ValueError, OSError) as exc:  # ConfigError (not a run, a corrupt file), a policy export cannot handle
        fail(str(exc))
    typer.echo(summary_line(card))
    typer.echo(f"written: {run_dir / EXPORT_DIR}/{{{', '.join(written_files(card))}}}")


@app.command()
def report(
    paths: Annotated[list[Path], typer.Argument(help="Run directories, or folders holding them (a multirun, outputs/).")],
    out: Annotated[Path | None, typer.Option(help="Report folder (default: PATH/report for one PATH, else report).")] = None,
    tensorboard: Annotated[
        Path | None,
        typer.Option(help="Also write TensorBoard logs here: each task's dense and pruned runs on the same charts."),
    ] = None,
    summaries: Annotated[
        Path | None,
        typer.Option(
            help="First copy each run's summary (its results, config and evaluations; no model) here and report "
            "from them: a report to commit beside what it was made from (replaces the summaries there)."
        ),
    ] = None,
) -> None:
    """Tables (markdown, CSV) and plots (return, neurons kept, frontier) over any set of runs; with --tensorboard, the
    same in TensorBoard (Custom Scalars: pruned against dense per task; Text: the table; Images: the plots)."""
    from prune_rl.app import fail
    from prune_rl.report import FILES, write_report

    folder = out or (paths[0] / "report" if len(paths) == 1 else Path("report"))
    try:
        table = write_report(paths, folder, tensorboard=tensorboard, summaries=summaries)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(
        f"{len(table)} rows over {sum(len(r['seeds'].split(',')) for r in table)} runs: {folder}/{{{', '.join(FILES)}}}"
    )
    if tensorboard is not None:
        typer.echo(f"TensorBoard: tensorboard --logdir {tensorboard} (Custom Scalars, Text and Images tabs)")


@app.command()
def board(
    logdir: Annotated[Path, typer.Argument(help="Folder holding run directories.")] = Path("outputs"),
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 6006,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 to serve other machines).")] = "localhost",
) -> None:
    """Start TensorBoard on the run directories (Ctrl-C or SIGTERM stops it too)."""
    from prune_rl.board import Stopped, serve, tensorboard_command

    if not logdir.exists():
        from prune_rl.app import fail

        fail(f"{logdir} does not exist (train a run first, or pass the folder holding your runs)")
    try:
        status = serve(tensorboard_command(logdir, port, host))
    except Stopped as exc:
        typer.echo(f"prune-rl: board stopped on {exc}; TensorBoard stopped with it", err=True)
        raise typer.Exit(128 + exc.signum) from None
    raise typer.Exit(status)


if __name__ == "__main__":
    app()
