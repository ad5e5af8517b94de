"""Pruned against dense in TensorBoard: every run of a task on the same charts, the report's table and its plots.

Each run's own event files hold its training as SB3 logged it, one run at a time. :func:`write_tensorboard` writes,
under one folder, what a person compares:

- per run, ``<folder>/<env>__<algo>/<label>__seed<k>/`` (``<label>__tuned__seed<k>`` for a trained agent pruned by
  ``prune-rl prune``): the scalars ``compare/<env>/<algo>/<name>`` over the run's
  timesteps, for ``return`` (the periodic evaluations, then the final one), ``neuron_sparsity`` and ``width`` (alive
  hidden neurons) of the deployed network (a dense run: 0 and its configured width) and ``fps`` (SB3's ``time/fps``);
- at ``<folder>/report/``: a Custom Scalars layout (TensorBoard's ``custom_scalar`` plugin) with a category per task
  whose charts draw those four tags of every run of the task, dense and pruned together; the report's table as text
  (``report/table``); its plots as images (``report/<plot>``).

``tensorboard --logdir <folder>`` (or ``prune-rl board <folder>``) then shows them in the Custom Scalars, Text and
Images tabs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prune_rl.report.collect import RunRecord
from prune_rl.report.plots import label
from prune_rl.runner import rundir

SCALARS = ("return", "neuron_sparsity", "width", "fps")
TITLES = {"return": "mean return (evaluation)", "neuron_sparsity": "neuron sparsity (deployed network)",
          "width": "alive hidden neurons (deployed network)", "fps": "training steps per second"}  # fmt: skip
REPORT_RUN = "report"  # the folder holding the layout, the table and the plots

Series = dict[str, tuple[np.ndarray, np.ndarray]]


def task_name(record: RunRecord) -> str:
    """:return: The task a run belongs to, as tags and folders spell it: ``CartPole-v1/ppo``."""
    return f"{record.env}/{record.algo}"


def tag(task: str, name: str) -> str:
    """:return: The tag of one of :data:`SCALARS` for a task: ``compare/CartPole-v1/ppo/return``."""
    return f"compare/{task}/{name}"


def _column(rows: list[dict[str, str]], key: str) -> tuple[np.ndarray, np.ndarray]:
    kept = [(float(row["time/total_timesteps"]), float(row[key])) for row in rows if row.get(key)]
    return (np.array([s for s, _ in kept]), np.array([v for _, v in kept])) if kept else (np.empty(0), np.empty(0))


def run_series(record: RunRecord) -> Series:
    """
    What a run contributes to the charts.

    :param record: The run.
    :return: ``{scalar name: (timesteps, values)}`` for the names of :data:`SCALARS` the run has data for.
    """
    results = rundir.read_results(record.path)
    rows = rundir.read_progress(record.path)
    steps, returns = record.curve
    final = float(results.get("timesteps", record.n_timesteps))
    out: Series = {"return": (np.append(steps, final), np.append(returns, record.final_return))}
    fps = _column(rows, "time/fps")
    if len(fps[0]):
        out["fps"] = fps
    deployed = next((name for name, s in (results.get("sparsity") or {}).items() if s.get("role") == "policy"), None)
    if deployed is not None:  # logged at pruning events; the run's final figures close the lines
        stats = results["sparsity"][deployed]
        steps, values = _column(rows, f"prune/neuron_sparsity/{deployed}")
        out["neuron_sparsity"] = (np.append(steps, final), np.append(values, float(stats["neuron_sparsity"])))
        steps, values = record.neurons
        out["width"] = (np.append(steps, final), np.append(values, float(stats["alive_neurons"])))
    else:  # dense: nothing pruned, at the width it was built with
        widths = results.get("widths") or {}
        grid = np.unique(np.concatenate([out["return"][0], fps[0]]))
        out["neuron_sparsity"] = (grid, np.zeros(len(grid)))
        if widths:
            out["width"] = (grid, np.full(len(grid), float(sum(next(iter(widths.values()))))))
    return out


def layout(tasks: Sequence[str]):  # type: ignore[no-untyped-def]
    """
    The Custom Scalars layout: a category per task, a chart per scalar, each drawing every run of the task.

    :param tasks: Task names (:func:`task_name`).
    :return: A ``tensorboard.plugins.custom_scalar.layout_pb2.Layout``.
    """
    from tensorboard.plugins.custom_scalar import layout_pb2

    categories = []
    for task in sorted(tasks):
        charts = [
            layout_pb2.Chart(
                title=f"{task}: {TITLES[name]}",
                multiline=layout_pb2.MultilineChartContent(tag=[f"^{re.escape(tag(task, name))}$"]),
            )
            for name in SCALARS
        ]
        categories.append(layout_pb2.Category(title=f"{task}: pruned against dense", chart=charts))
    return layout_pb2.Layout(category=categories)


def layout_summary(tasks: Sequence[str]):  # type: ignore[no-untyped-def]
    """
    :param tasks: Task names (:func:`task_name`).
    :return: The ``Summary`` protobuf that carries :func:`layout` to the Custom Scalars plugin (as the plugin's own
        ``summary.pb`` builds it, without TensorFlow).
    """
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.custom_scalar import metadata

    tensor = TensorProto(dtype="DT_STRING", string_val=[layout(tasks).SerializeToString()], tensor_shape=TensorShapeProto())
    plugin = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME))
    return Summary(value=[Summary.Value(tag=metadata.CONFIG_SUMMARY_TAG, tensor=tensor, metadata=plugin)])


def _run_folder(record: RunRecord) -> str:
    """``dsp@0.95__seed0``; a run that fine-tuned a trained agent (``prune-rl prune``): ``dsp@0.95__tuned__seed0``."""
    method = "dense" if record.method == "none" else label(record)
    tuned = rundir.read_results(record.path).get("init_model")
    return f"{method}{'__tuned' if tuned else ''}__seed{record.seed}"


def _clear(folder: Path) -> None:
    """Remove the event files an earlier report wrote into ``folder`` (writing again would duplicate every point)."""
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()


def write_tensorboard(records: Sequence[RunRecord], folder: str | Path, table: str, images: Sequence[Path] = ()) -> Path:
    """
    Write the comparison's event files (see the module's docstring).

    :param records: The runs.
    :param folder: The TensorBoard log directory (created).
    :param table: The report's table, in markdown.
    :param images: The report's plots (PNG files).
    :return: ``folder``.
    """
    import matplotlib.image
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(folder)
    used: dict[Path, int] = {}
    for record in records:
        run = folder / task_name(record).replace("/", "__") / _run_folder(record)
        used[run] = used.get(run, 0) + 1
        if used[run] > 1:  # the same method and seed again (a fine-tuning beside a training run): named after its folder
            run = run.with_name(f"{run.name}__{record.path.name}")
        run.mkdir(parents=True, exist_ok=True)
        _clear(run)
        with SummaryWriter(str(run)) as writer:
            for name, (steps, values) in run_series(record).items():
                for step, value in zip(steps, values, strict=True):
                    writer.add_scalar(tag(task_name(record), name), float(value), int(step))
    report = folder / REPORT_RUN
    report.mkdir(parents=True, exist_ok=True)
    _clear(report)
    with SummaryWriter(str(report)) as writer:
        writer._get_file_writer().add_summary(layout_summary(sorted({task_name(r) for r in records})))
        writer.add_text("report/table", table)
        for image in images:
            pixels = matplotlib.image.imread(str(image))[:, :, :3]  # (height, width, RGB), floats in [0, 1]
            writer.add_image(f"report/{image.stem}", pixels, dataformats="HWC")
    return folder
