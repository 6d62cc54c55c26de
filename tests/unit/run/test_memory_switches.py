"""Memory: gradient checkpointing trains the same model with less memory; a run that does not fit is
recorded as oom with the switches to try; a results folder without space fails before training."""

from __future__ import annotations

import errno
import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from helpers.runs import tiny_run
from helpers.training import train_a_few_steps

import variants
from bench.inputs.models import enable_gradient_checkpointing
from bench.run import checks, runner


@pytest.mark.parametrize("name", ["lora", "dora", "full"])
def test_gradient_checkpointing_trains_the_same_weights(tiny_bert, tiny_batch, attention_targets, name):
    trained = []
    for checkpointing in (False, True):
        model = tiny_bert()
        variant = variants.build(name, {})
        torch.manual_seed(0)  # the adapter's initialisation
        variant.apply(model, attention_targets)
        if checkpointing:
            enable_gradient_checkpointing(model)
            assert model.is_activation_checkpointing
        train_a_few_steps(model, variant, tiny_batch, steps=3)
        trained.append({k: v for k, v in model.state_dict().items()})
    plain, checkpointed = trained
    assert plain.keys() == checkpointed.keys()
    for key in plain:
        torch.testing.assert_close(checkpointed[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_run_with_gradient_checkpointing_completes_under_the_same_config_hash(compose, tmp_path):
    plain = json.loads((tiny_run(compose, tmp_path / "a") / "metrics.json").read_text())
    switched = json.loads(
        (tiny_run(compose, tmp_path / "b", "train.gradient_checkpointing=true") / "metrics.json").read_text()
    )
    assert switched["status"] == plain["status"] == "completed"
    assert switched["config_hash"] == plain["config_hash"]  # the same computation: resume skips either
    for key, value in plain["best"].items():
        assert switched["best"][key] == pytest.approx(value, abs=1e-6), key


def test_a_model_without_checkpointing_is_named():
    with pytest.raises(ValueError, match="Linear does not support gradient checkpointing; set it to false"):
        enable_gradient_checkpointing(torch.nn.Linear(2, 2))


def test_the_oom_hint_names_the_switches():
    for switch in ("train.batch_size", "train.grad_accum", "train.gradient_checkpointing=true",
                   "model.max_length", "variant=qlora"):  # fmt: skip
        assert switch in runner.OOM_HINT


def test_a_full_or_unwritable_results_folder_fails_before_training(tmp_path, monkeypatch):
    checks.check_disk(tmp_path)  # room and write access: nothing raised
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(2**30, 2**30 - 2**20, 2**20))
    with pytest.raises(OSError, match=r"only 1 MB free for the run folder .*; a run needs 200 MB") as e:
        checks.check_disk(tmp_path)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()

    def read_only(*_args, **_kwargs):  # a read-only folder, whoever runs the tests (root writes anyway)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "write_text", read_only)
    with pytest.raises(OSError, match="cannot write to the run folder .*: Permission denied"):
        checks.check_disk(tmp_path)
