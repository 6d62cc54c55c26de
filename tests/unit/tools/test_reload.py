"""bench.tools.reload: a finished tiny run rebuilt from its folder reproduces predictions.csv exactly; its
adapter is refused on a base with other weights (unless allowed, then warned), and peft still loads it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from helpers.notices import notices
from helpers.runs import tiny_run

from bench.inputs.models import load_model
from bench.results.adapter_files import base_fingerprint
from bench.tools import reload
from bench.tools.reload import load_run, predict


@pytest.fixture
def run_dir(compose, tmp_path):
    return tiny_run(compose, tmp_path)


def test_reloaded_model_reproduces_the_logits_of_predictions_csv(run_dir):
    run = load_run(run_dir)
    with (run_dir / "predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(run.evals) == ["dev", "test"] and {r["split"] for r in rows} == {"dev", "test"}
    logits = predict(run)
    for split, ds in run.evals.items():
        mine = [r for r in rows if r["split"] == split]
        assert len(mine) == len(ds) == 32
        assert [int(r["idx"]) for r in mine] == ds["idx"]  # same examples, same order
        assert [int(r["label"]) for r in mine] == ds["label"]
        saved = np.array([[float(r["logit_0"]), float(r["logit_1"])] for r in mine], dtype=np.float32)
        np.testing.assert_array_equal(logits[split], saved)  # %.9g round-trips float32
    assert (run.variant.name, run.model.training, run.task.name) == ("lora", False, "rt_polarity")


def test_a_run_without_adapter_names_the_setting(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(FileNotFoundError, match=r"has no saved adapter .*train.save_adapter false"):
        load_run(tmp_path)


def test_the_adapter_folder_records_its_bases_fingerprint_and_peft_still_loads_it(run_dir, caplog):
    from peft import PeftModel

    recorded = json.loads((run_dir / "adapter" / "base_model.json").read_text())
    run = load_run(run_dir)
    assert notices(caplog) == ""  # the run's own base: loaded silently
    base = load_model(run.model_cfg, 2, seed=0)
    assert recorded["sha256"] == base_fingerprint(base, ["classifier"])
    theirs = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    texts = run.evals["test"]["sentence"][:8]
    batch = run.tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(theirs(**batch).logits, run.model(**batch).logits, rtol=1e-4, atol=1e-5)


def other_base(monkeypatch) -> None:
    """reload's load_model gives the run's base with one layer changed: the same shapes, other weights."""
    real = reload.load_model

    def nudged(*args, **kwargs):
        model = real(*args, **kwargs)
        with torch.no_grad():
            model.bert.encoder.layer[0].attention.self.query.weight.mul_(-2.0)
        return model

    monkeypatch.setattr(reload, "load_model", nudged)


def test_an_adapter_is_refused_on_another_base_unless_allowed_then_warned(run_dir, monkeypatch, caplog):
    recorded = json.loads((run_dir / "adapter" / "base_model.json").read_text())["sha256"]
    other_base(monkeypatch)
    with pytest.raises(
        ValueError, match=rf"trained on base weights {recorded[:16]} \(tiny-bert\).*allow_other_base"
    ):
        load_run(run_dir)
    run = load_run(run_dir, allow_other_base=True)
    assert f"trained on base weights {recorded[:16]}" in notices(caplog)
    with (run_dir / "predictions.csv").open(newline="") as f:
        saved = [
            [float(r["logit_0"]), float(r["logit_1"])] for r in csv.DictReader(f) if r["split"] == "test"
        ]
    assert not np.allclose(predict(run)["test"], np.array(saved), atol=1e-6)  # why it is refused by default


def test_an_adapter_folder_without_base_model_json_loads_with_a_notice(run_dir, caplog):
    (run_dir / "adapter" / "base_model.json").unlink()
    load_run(run_dir)
    assert "has no base_model.json" in notices(caplog)
