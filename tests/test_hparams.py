"""Every run writes one row of TensorBoard's HParams tab, with the same keys whatever its method."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from typer.testing import CliRunner

from prune_rl.cli import app
from prune_rl.report.hparams import METRICS

from conftest import fast

runner = CliRunner()


def _hparams(run: Path) -> tuple[dict, dict]:
    events = EventAccumulator(str(run))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    values = {key: value.string_value or value.number_value for key, value in start.hparams.items()}
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    finals = {info.name.tag: events.Scalars(info.name.tag)[-1].value for info in experiment.metric_infos}
    return values, finals


@pytest.mark.parametrize("pruning", ["none", "l1_structured"])
def test_a_run_logs_its_choices_and_final_metrics_as_hparams(pruning: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", *fast("ppo", "cartpole", pruning), "seed=3", f"hydra.run.dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    values, finals = _hparams(tmp_path)
    assert set(values) == {"env", "algo", "pruning", "method", "seed", "n_timesteps", "sparsity", "value_sparsity"}
    assert (values["env"], values["algo"], values["pruning"], values["seed"]) == ("CartPole-v1", "ppo", pruning, 3)
    assert set(finals) == set(METRICS)
    if pruning == "none":
        assert values["sparsity"] == 0 and finals["final/weight_sparsity"] == 0
        assert finals["final/kept_weights"] == 4 * 8 + 8 * 8 + 8 * 2  # the fast config's [8, 8] policy, all of it
    else:
        assert values["sparsity"] == pytest.approx(0.95) and finals["final/weight_sparsity"] > 0.5
