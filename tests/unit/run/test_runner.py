"""The runner: the run header, label_hparams, its sinks (the runs CSV is always written, W&B in
addition; resume recovers a lost row and returns the completed run's metrics), one spec and one check
per run."""

import collections
import csv
import json
import logging

import pytest
import wandb
from helpers.runs import TINY_RUN, tiny_run
from helpers.wandb_offline import offline_run
from omegaconf import OmegaConf

import variants
from bench.config import hashing
from bench.results import index
from bench.results.run_folder import RunFolder
from bench.results.wandb_sink import short_lr
from bench.run import checks, loop, process_cache, runner, spec

# -- a tiny run in this process: sinks, the run header, label_hparams ----------------------------------


def test_label_hparams_are_lr_and_the_variants_key_hparams():
    assert spec.label_hparams("no_such_variant") == ["lr"]
    assert spec.label_hparams("adalora") == ["lr", "init_r", "target_r"]
    assert spec.label_hparams("lora") == spec.label_hparams("dora") == ["lr", "r"]
    assert spec.label_hparams("full") == ["lr"]


def test_with_wandb_on_a_run_still_writes_its_runs_csv_row(compose, tmp_path, offline_wandb, caplog):
    caplog.set_level(logging.INFO, logger="peft-bench")
    run_dir = tiny_run(compose, tmp_path, "logger=wandb")
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "completed" and m["label_hparams"] == spec.label_hparams("lora")
    with (tmp_path / "runs.csv").open(newline="") as f:
        (row,) = csv.DictReader(f)
    assert (row["run_dir"], row["status"]) == (str(run_dir), "completed")
    assert json.loads(row["label_hparams"]) == m["label_hparams"]
    wandb.teardown()  # wait for wandb-core to flush the run's log (else the summary is sometimes not there)
    logged = offline_run(run_dir)  # and W&B too: named and configured by its configuration
    assert logged["name"] == f"lora-rt_polarity-lr{short_lr(m['hparams']['lr'])}-s0"
    assert (logged["config"]["config_key"], logged["config"]["lr"]) == (m["config_key"], m["hparams"]["lr"])
    summary = logged["summary"]  # the selected epoch's dev and test, lr, budget
    assert summary["test/accuracy"] == m["best"]["test/accuracy"] and "dev/accuracy" in summary
    assert (summary["score"], summary["lr"]) == (m["best"]["test/accuracy"], m["hparams"]["lr"])
    assert summary["budget"] == "1 ep x bs 32, len 64, 32/32 ex" and summary["select_on"] == "dev"
    header = "lora on rt_polarity with tiny, cpu: 32 train, 32 dev, 32 test examples, 1 epoch, 1 step"
    assert header in caplog.messages


def test_a_run_records_its_config_key_and_settings(compose, tmp_path):
    """config_key: the config hash without the seed; settings: the resolved config as dotted keys."""
    run_dir = tiny_run(compose, tmp_path, "train.weight_decay=0.05")
    m = json.loads((run_dir / "metrics.json").read_text())
    container = OmegaConf.to_container(
        compose([*TINY_RUN, f"paths.results={tmp_path}", "train.weight_decay=0.05", "seed=1"]), resolve=True
    )
    assert m["config_key"] == hashing.config_key(container) and m["config_hash"] != hashing.config_hash(
        container
    )
    settings = m["settings"]
    assert (
        settings["train.weight_decay"],
        settings["model.max_length"],
        settings["task.max_eval_samples"],
    ) == (0.05, 64, 32)  # the tiny model: max_length 64
    assert "seed" not in settings and not any(k.startswith(("paths.", "logger")) for k in settings)
    with (tmp_path / "runs.csv").open(newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["config_key"] == m["config_key"] and json.loads(row["settings"]) == settings


def index_lines(results_dir) -> list[tuple[str, str]]:
    """(run folder, status) of each line of the results index."""
    text = (results_dir / index.INDEX).read_text()
    return [(r["run"], r["status"]) for r in map(json.loads, text.splitlines())]


def test_resume_recovers_a_lost_row_through_every_sink(compose, tmp_path):
    run_dir = tiny_run(compose, tmp_path)
    (tmp_path / "runs.csv").unlink()  # a kill between metrics.json and the row
    done = RunFolder(run_dir).metrics()
    skipped = runner.run(compose([*TINY_RUN, f"paths.results={tmp_path}"]), run_dir)
    assert (
        skipped.skipped
        == f"config {done['config_hash']} already completed in {run_dir} (force=true reruns it)"
    )
    assert skipped.metrics == done  # the completed run's results
    with (tmp_path / "runs.csv").open(newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["run_dir"] == str(run_dir)
    again = runner.run(compose([*TINY_RUN, f"paths.results={tmp_path}"]), tmp_path / "runs" / "again")
    assert again.skipped and again.metrics == done  # skipped in a new folder (a sweep run again)
    assert RunFolder(tmp_path / "runs" / "again").resumed() == {
        "config_hash": done["config_hash"],
        "completed_in": str(run_dir),
    }
    # the index: the run started and completed; skipped in its own folder (nothing new), then in another
    assert index_lines(tmp_path) == [
        ("runs/tiny", "running"),
        ("runs/tiny", "completed"),
        ("runs/again", "resumed"),
    ]


def test_adalora_runs_with_its_defaults_on_a_40_example_task(compose, tmp_path):
    """Its schedule defaults to fractions of the run: 40 examples at batch 32 are 2 steps."""
    run_dir = tiny_run(compose, tmp_path, "variant=adalora", "task.max_train_samples=40")
    m = json.loads((run_dir / "metrics.json").read_text())
    assert (m["status"], m["steps"]) == ("completed", 2)
    adapter = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert (adapter["total_step"], adapter["tinit"], adapter["tfinal"], adapter["deltaT"]) == (2, 0, 1, 1)


def test_ctrl_c_is_recorded_as_interrupted_and_the_same_command_reruns_it(compose, tmp_path, monkeypatch):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(loop.Fit, "run", stopped)
        with pytest.raises(KeyboardInterrupt):
            tiny_run(compose, tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    m = json.loads((run_dir / "metrics.json").read_text())
    assert (m["status"], m["error"]) == ("interrupted", "KeyboardInterrupt: stopped by the user")
    with (tmp_path / "runs.csv").open(newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["interrupted"]
    assert index.completed_run(tmp_path, m["config_hash"]) is None  # not skipped by resume
    tiny_run(compose, tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    statuses = ["running", "interrupted", "running", "completed"]
    assert index_lines(tmp_path) == [("runs/tiny", status) for status in statuses]


def test_a_task_smaller_than_one_batch_trains_one_step_an_epoch_and_says_so(compose, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="peft-bench")
    run_dir = tiny_run(compose, tmp_path, "task.max_train_samples=5", "train.batch_size=8", "train.epochs=2")
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "completed" and m["steps"] == 2
    assert any("5 training examples, fewer than one batch (train.batch_size=8)" in x for x in caplog.messages)


@pytest.mark.parametrize("variant", ["lora", "dora", "qlora", "loraplus"])
def test_a_rank_larger_than_a_layer_fails_before_the_weights_load(compose, tmp_path, monkeypatch, variant):
    def no_load(*args, **kwargs):
        raise AssertionError("the weights were loaded before the rank was checked")

    process_cache.clear()  # else a model loaded by an earlier test would hide a load
    monkeypatch.setattr(process_cache, "load_model", no_load)
    with pytest.raises(ValueError, match=r"r=64 must be in 1\.\.32 for a 32->32 layer"):
        tiny_run(compose, tmp_path, f"variant={variant}", "variant.r=64")


def test_a_run_resolves_builds_and_checks_once(compose, tmp_path, monkeypatch):
    """One spec per run (the config hash computed once, each config section made once), the variant built
    once, the sinks made once, and each check run once."""
    calls = collections.Counter()

    def count(module, name):
        real = getattr(module, name)

        def counted(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    count(hashing, "config_hash")
    count(spec, "make_dataclass")
    count(variants, "build")
    count(runner, "make_sinks")
    checks_run = [name for name in vars(checks) if name.startswith("check_")]
    for name in checks_run:
        count(checks, name)
    outcome = runner.run(compose([*TINY_RUN, f"paths.results={tmp_path}"]), tmp_path / "runs" / "tiny")
    assert outcome.skipped is None and outcome.metrics["status"] == "completed"
    assert outcome.metrics["config_hash"] == RunFolder(tmp_path / "runs" / "tiny").metrics()["config_hash"]
    assert len(checks_run) == 15
    assert calls == {"config_hash": 1, "make_dataclass": 3, "build": 1, "make_sinks": 1} | dict.fromkeys(
        checks_run, 1
    )
