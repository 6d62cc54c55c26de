"""bench.results.wandb_sink: one W&B run per training run (offline, read back from disk): its name and
config by configuration, its metric axes, its summary at the selected epoch, its artifacts; the mode
without an API key, and a failing W&B that only warns."""

from __future__ import annotations

import numpy as np
import wandb
from helpers.notices import notices
from helpers.wandb_offline import offline_run

from bench.config.budget import budget_label, budget_of
from bench.results.run_folder import RunFolder
from bench.results.wandb_sink import (
    SUMMARY_KEYS,
    WandbSink,
    default_mode,
    logged_run_id,
    readable,
    short_lr,
    wandb_name,
)

SETTINGS = {"train.epochs": 2, "train.batch_size": 16, "model.max_length": 64, "task.max_eval_samples": 40}
METRICS = {  # a metrics.json: the best dev score at step 2, the last evaluation (step 3) is worse
    "status": "completed",
    "main_metric": "accuracy",
    "dev_metric": "accuracy",
    "select_on": "dev",
    "selection_metric": "dev/accuracy",
    "best_epoch": 1.0,
    "best": {"dev/accuracy": 0.75, "test/accuracy": 0.7},
    "final": {"dev/accuracy": 0.6, "test/accuracy": 0.65},
    "chance": {"test/accuracy": 0.5},
    "trainable_params": 1234,
    "config_hash": "abc",
    "config_key": "def",
    "hparams": {"lr": 5e-4, "r": 4},
    "settings": SETTINGS,
    "variant_summary": {  # AdaLoRA's: a rank pattern (lists) and final ranks (a dict) per module
        "rank_budget": 12,
        "rank_pattern": {"l0.query": [True, False], "l0.value": [True, True]},
        "final_ranks": {"l0.query": 1, "l0.value": 2},
    },
}
CONFIG = {  # a resolved config, as the runner gives it: the paper lr in variant.lr
    "variant": {"name": "lora", "r": 4, "lr": 5e-4},
    "train": {"epochs": 2, "batch_size": 16, "lr_scale": 16.0},
    "model": {"name": "tiny", "max_length": 64},
    "task": {"name": "rt_polarity", "max_eval_samples": 40},
    "seed": 0,
    "experiment_name": "compare",
}


def start(sink: WandbSink, run_dir) -> None:
    sink.start(
        {
            "run_name": "lora-rt_polarity-s0",
            "variant": "lora",
            "task": "rt_polarity",
            "model": "tiny",
            "seed": 0,
            "lr": 8e-3,  # trained with: variant.lr x train.lr_scale
            "config_key": "def",
            "group": "sweep-x",
            "run_dir": str(run_dir),
            "config": CONFIG,
        }
    )


class FakeRun:
    """What wandb.init returns, as far as the sink's start uses it."""

    def define_metric(self, *args, **kwargs) -> None:
        pass


def test_short_lr_is_short_and_exact():
    assert [short_lr(lr) for lr in (8e-3, 2e-5, 2.5e-5, 5e-4 * 64, 3e-4 * 16, 1.0, 0.1 + 0.2)] == [
        "8e-3", "2e-5", "2.5e-5", "3.2e-2", "4.8e-3", "1e0", "3e-1",
    ]  # fmt: skip
    assert short_lr(1.234567e-3) == "1.23457e-3"  # 6 significant digits


def test_the_name_carries_the_configuration():
    run = {"variant": "lora", "task": "rt_polarity", "seed": 0, "lr": 8e-3}
    assert wandb_name(run) == "lora-rt_polarity-lr8e-3-s0"
    assert wandb_name(run | {"lr": None}) == "lora-rt_polarity-s0"  # a run that failed before its lr


def test_summary_values_are_flat_and_hold_no_lists():
    assert readable("variant/x", {"a": 1, "b": [1, 2], "c": {"d": 2.0, "e": [[True]]}}) == {
        "variant/x/a": 1,
        "variant/x/c/d": 2.0,
    }
    assert readable("variant/total_rank", 7) == {"variant/total_rank": 7}
    assert readable("variant/rank_pattern", [[True, False]]) == {}


def test_a_run_streams_its_metrics_and_sums_up_the_selected_epoch(tmp_path, offline_wandb):
    sink = WandbSink(project="peft-bench-test", mode="offline", tags=["mine"])
    start(sink, tmp_path)
    sink.log({"train/loss": 0.69, "train/lr": 5e-4}, step=1)
    sink.log({"dev/accuracy": 0.75, "test/accuracy": 0.7, "epoch": 1.0}, step=2)
    sink.log({"dev/accuracy": 0.6, "test/accuracy": 0.65, "epoch": 2.0}, step=3)
    sink.finish(METRICS)
    wandb.teardown()  # wait for wandb-core to flush the run's transaction log
    assert sink.run is None
    run = offline_run(tmp_path)
    assert (run["name"], run["group"], run["job_type"]) == ("lora-rt_polarity-lr8e-3-s0", "sweep-x", "train")
    assert logged_run_id(tmp_path) == run["id"]
    assert sorted(run["tags"]) == ["lora", "mine", "rt_polarity", "seed0", "tiny"]
    config = run["config"]
    assert config["variant"] == {"name": "lora", "r": 4, "lr": 5e-4}  # the paper lr, as configured
    assert (config["config_key"], config["lr"], config["experiment"]) == ("def", 8e-3, "compare")
    assert config["budget"] == budget_label(budget_of(SETTINGS))
    # the axes: train/... on the optimizer step, dev/... and test/... on the epoch; the last dev and test
    # values stay out of the summary (it holds the selected epoch's)
    metrics = run["metrics"]
    assert {k: m["step_metric"] for k, m in metrics.items() if m["step_metric"]} == {
        "train/*": "step",
        "dev/*": "epoch",
        "test/*": "epoch",
    }
    assert (
        metrics["step"]["hidden"] and metrics["dev/*"]["summary_none"] and metrics["test/*"]["summary_none"]
    )
    assert not metrics["train/*"]["summary_none"]
    evals = [
        (h["_step"], h["step"], h["epoch"], h["dev/accuracy"]) for h in run["history"] if "dev/accuracy" in h
    ]
    assert evals == [(2, 2, 1.0, 0.75), (3, 3, 2.0, 0.6)]
    assert [(h["step"], h["train/loss"]) for h in run["history"] if "train/loss" in h] == [(1, 0.69)]
    summary = run["summary"]
    assert (summary["dev/accuracy"], summary["test/accuracy"]) == (0.75, 0.7)  # the selected epoch's
    assert (summary["final/dev/accuracy"], summary["final/test/accuracy"]) == (0.6, 0.65)
    assert (summary["score"], summary["dev_score"], summary["chance_score"]) == (0.7, 0.75, 0.5)
    assert summary["lr"] == 5e-4 and summary["variant/rank_budget"] == 12
    assert {k: v for k, v in summary.items() if k.startswith("variant/")} == {
        "variant/rank_budget": 12,
        "variant/final_ranks/l0.query": 1,
        "variant/final_ranks/l0.value": 2,
    }  # no lists: the rank pattern stays in metrics.json
    assert summary["budget"] == budget_label(budget_of(SETTINGS)) == "2 ep x bs 16, len 64, all/40 ex"
    assert {k: summary[k] for k in ("status", "selection_metric", "trainable_params", "config_key")} == {
        "status": "completed",
        "selection_metric": "dev/accuracy",
        "trainable_params": 1234,
        "config_key": "def",
    }
    assert set(SUMMARY_KEYS) <= set(summary)


def test_the_test_predictions_and_the_adapter_are_artifacts_of_the_run(tmp_path, offline_wandb):
    folder = RunFolder(tmp_path)
    folder.write_test_predictions({"test": (np.array([[0.1, 0.9]]), np.array([1]), np.array([0]))})
    folder.adapter_path.mkdir()
    (folder.adapter_path / "adapter_model.safetensors").write_bytes(b"weights")
    (folder.adapter_path / "adapter_config.json").write_text("{}")
    sink = WandbSink(project="peft-bench-test", mode="offline")
    start(sink, tmp_path)
    sink.finish(METRICS | {"variant": "lora", "task": "rt_polarity", "seed": 0})
    wandb.teardown()
    meta = {"config_key": "def", "config_hash": "abc", "variant": "lora", "task": "rt_polarity", "seed": 0}
    assert offline_run(tmp_path)["artifacts"] == {
        "predictions-abc": {
            "type": "predictions",
            "metadata": meta | {"status": "completed"},
            "files": ["test_predictions.csv.gz"],
        },
        "adapter-abc": {
            "type": "model",
            "metadata": meta | {"status": "completed"},
            "files": ["adapter_config.json", "adapter_model.safetensors"],
        },
    }


def test_a_run_without_predictions_or_adapter_logs_no_artifact(tmp_path, offline_wandb):
    sink = WandbSink(project="peft-bench-test", mode="offline")
    start(sink, tmp_path)
    sink.finish(METRICS | {"status": "failed"})
    wandb.teardown()
    assert offline_run(tmp_path)["artifacts"] == {}


def test_a_failing_call_warns_once_and_turns_the_sink_off(tmp_path, monkeypatch, caplog):
    def broken_init(**kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    sink = WandbSink(mode="offline")
    start(sink, tmp_path)
    assert sink.run is None
    sink.log({"train/loss": 1.0}, step=1)  # off: nothing called, nothing raised
    sink.finish(METRICS)
    assert (
        notices(caplog) == "peft-bench: W&B init failed, continuing without W&B: RuntimeError: no network\n"
    )

    class BrokenRun:
        def log(self, *args, **kwargs):
            raise OSError("disk full")

    sink.run = BrokenRun()
    sink.log({"train/loss": 1.0}, step=2)
    assert sink.run is None
    assert notices(caplog) == "peft-bench: W&B log failed, continuing without W&B: OSError: disk full\n"


def test_without_an_api_key_the_mode_is_offline_with_a_notice(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    assert default_mode() == "offline"
    caplog.set_level("WARNING", logger="peft-bench")
    assert WandbSink().mode == "offline"
    [notice] = [r.getMessage() for r in caplog.records]
    assert notice.startswith("W&B: no API key (WANDB_API_KEY or ~/.netrc), so the run is logged offline")
    caplog.clear()
    assert WandbSink(mode="offline").mode == "offline" and caplog.records == []  # asked for: no notice


def test_an_api_key_or_a_netrc_entry_means_online(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert default_mode() == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "x" * 40 + "\n")
    netrc.chmod(0o600)
    assert default_mode() == "online"


def test_an_unreachable_server_is_waited_for_a_bounded_time_said_in_one_line_then_offline(
    tmp_path, monkeypatch, caplog
):
    """A key but no network: wandb.init waits at most 15 s (W&B's default: 90 s and more), one notice says
    so, and the run is logged offline (wandb.init is mocked: nothing reaches the network)."""
    calls, offline_run = [], FakeRun()

    def init(**kwargs):
        calls.append((kwargs["mode"], kwargs["settings"].init_timeout))
        if kwargs["mode"] == "online":
            raise wandb.errors.CommError("Run initialization has timed out after 15.0 sec.")
        return offline_run

    monkeypatch.setattr(wandb, "init", init)
    sink = WandbSink(mode="online")
    start(sink, tmp_path)
    assert calls == [("online", 15.0), ("offline", 15.0)] and sink.run is offline_run
    assert notices(caplog) == (
        "peft-bench: W&B: no connection to the server within 15 s (CommError: Run initialization has timed "
        "out after 15.0 sec.), so the run is logged offline; `wandb sync <run dir>/wandb/offline-run-*` "
        "uploads it\n"
    )
    calls.clear()
    start(WandbSink(mode="online", init_timeout_s="40"), tmp_path)  # as WANDB_INIT_TIMEOUT gives it
    assert calls == [("online", 40.0), ("offline", 40.0)]


def test_a_server_that_answers_keeps_the_run_online_without_a_notice(tmp_path, monkeypatch, caplog):
    calls, online_run = [], FakeRun()
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs["mode"]) or online_run)
    sink = WandbSink(mode="online")
    start(sink, tmp_path)
    assert calls == ["online"] and sink.run is online_run and notices(caplog) == ""
