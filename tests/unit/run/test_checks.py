"""The checks (bench.run.checks): a value no run can use fails its run before any data or model loads,
with a message naming it and what is valid; no run is left behind, its traceback is in <results>/errors/."""

from __future__ import annotations

import pytest
from helpers.runs import tiny_run

from bench.config.schemas import ModelConfig, TrainConfig
from bench.results.run_folder import error_log
from bench.run import checks, provenance, runner
from bench.run.checks import check_model, check_train_config
from bench.run.distributed import World
from bench.run.provenance import CodeState

BAD = {
    "train.epochs=0": "train.epochs=0 is not valid: it must be an integer >= 1",
    "train.lr=-1": "train.lr=-1.0 is not valid: it must be a finite number > 0",
    "train.warmup_ratio=5": r"train.warmup_ratio=5.0 is not valid: it must be in \[0, 1\)",
    "train.grad_accum=0": "train.grad_accum=0 is not valid: it must be an integer >= 1",
    "train.progress=loud": "train.progress='loud' is not valid: it must be one of auto, bar",
    "train.checkpoint_every_steps=-1": (
        "train.checkpoint_every_steps=-1 is not valid: it must be an integer >= 0"
    ),
    "train.checkpoint_every_minutes=-5": (
        "train.checkpoint_every_minutes=-5.0 is not valid: it must be a finite number of minutes >= 0"
    ),
    "train.checkpoint_every_minutes=nan": "train.checkpoint_every_minutes=nan is not valid",
    "select_on=val": "select_on='val' is not valid: choose dev",
    "task.max_train_samples=0": "task.max_train_samples must be >= 1 or null, got 0",
    "task.main_metric=f2": "task 'rt_polarity': main_metric 'f2' is not one of accuracy, f1",
    "model.dropout=1.5": r"model.dropout=1.5 is not valid: it must be in \[0, 1\), or null",
    "device=gpu": "unknown device 'gpu'; choose auto, cpu, cuda, cuda:N or mps",
}


@pytest.mark.parametrize(("override", "message"), BAD.items(), ids=list(BAD))
def test_a_bad_value_fails_its_run_before_anything_loads(compose, tmp_path, nothing_loads, override, message):
    with pytest.raises(ValueError, match=message) as e:
        tiny_run(compose, tmp_path, override)
    assert not (tmp_path / "runs" / "tiny").exists() and not (tmp_path / "runs.csv").exists()
    log = error_log(tmp_path, tmp_path / "runs" / "tiny")
    assert runner.where(e.value) == f"no run started; traceback in {log}"
    assert "ValueError: " in log.read_text()
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_the_train_settings_check_names_the_lr_only_when_given():
    check_train_config(TrainConfig())  # the defaults; no lr: the variant's
    with pytest.raises(ValueError, match="train.lr=nan is not valid"):
        check_train_config(TrainConfig(), float("nan"))


def test_the_model_check_allows_an_unset_dropout_and_the_range_0_to_1():
    for dropout in (None, 0.0, 0.5):
        check_model(ModelConfig(name="tiny", source="tiny", dropout=dropout))
    with pytest.raises(ValueError, match=r"model.dropout=-0.1 is not valid"):
        check_model(ModelConfig(name="tiny", source="tiny", dropout=-0.1))


@pytest.mark.parametrize(
    ("world", "n_train", "held_out", "batch", "message"),
    [
        (
            World(0, 4),
            3,
            {"test": 10},
            2,
            "4 processes for 3 training examples in batches of train.batch_size=2",
        ),
        (
            World(0, 2),
            33,
            {"test": 10},
            16,
            "the last batch of each epoch holds 1 of the 33 training examples",
        ),
        (World(0, 2), 32, {"dev": 1, "test": 10}, 16, "the dev split has 1 examples for 2 processes"),
    ],
)
def test_a_world_that_leaves_a_rank_without_examples_is_refused(world, n_train, held_out, batch, message):
    with pytest.raises(ValueError, match=message):
        checks.check_world(world, n_train, held_out, batch)
    checks.check_world(World(), n_train, held_out, batch)  # one process: anything goes


def test_require_clean_code_refuses_a_run_on_uncommitted_code_before_anything_is_written(
    compose, tmp_path, nothing_loads, monkeypatch
):
    monkeypatch.setattr(provenance, "code_state", lambda: CodeState("abc", True))
    with pytest.raises(ValueError, match=r"code_dirty=True: bench/, variants/, conf/ hold uncommitted") as e:
        tiny_run(compose, tmp_path, "require_clean_code=true")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "runs" / "tiny").exists() and not (tmp_path / "runs.csv").exists()
    assert runner.where(e.value).startswith("no run started")


def test_clean_code_is_required_only_when_asked_and_only_dirty_code_is_refused():
    for state in (CodeState("abc", False), CodeState(None, None)):
        checks.check_clean_code(True, state)
    checks.check_clean_code(False, CodeState("abc", True))
    with pytest.raises(ValueError, match="require_clean_code=true"):
        checks.check_clean_code(True, CodeState("abc", True))
