"""The phases of a run (bench.run.phases): the run header, the first metrics, the resume lookup, the sizes
(an input adapter's tensors counted), the test splits evaluated once at the end with the numbers of
evaluating them every time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.runs import TINY_RUN, tiny_run

import variants
from bench.inputs.models import resolve_targets, tiny_model
from bench.results.run_folder import RunFolder
from bench.run import checks, evaluation, phases
from bench.run.phase_times import PhaseTimes
from bench.run.spec import RunSpec

CPU = torch.device("cpu")


def test_run_header():
    held_out = {"dev": 996, "test": 1000}
    header = phases.run_header("lora", "rt_polarity", "minilm", torch.device("cpu"), 2000, held_out, 2, 126)
    assert header == (
        "lora on rt_polarity with minilm, cpu: 2,000 train, 996 dev, 1,000 test examples, 2 epochs, 126 steps"
    )
    one = phases.run_header("head", "rte", "tiny", torch.device("cuda:0"), 1, {"validation": 1}, 1, 1)
    assert one == "head on rte with tiny, cuda:0: 1 train, 1 validation examples, 1 epoch, 1 step"


def test_the_first_metrics_are_metrics_jsons_first_keys_and_say_failed(compose, tmp_path):
    spec = RunSpec.of(compose([*TINY_RUN, f"paths.results={tmp_path}"]), tmp_path / "runs" / "tiny")
    first = phases.first_metrics(spec)
    assert (first["status"], first["error"], first["run_name"]) == ("failed", None, "lora-rt_polarity-s0")
    assert (first["config_hash"], first["hparams"]["lr"]) == (spec.config_hash, spec.lr)
    written = RunFolder(tiny_run(compose, tmp_path)).metrics()
    assert list(written)[: len(first)] == list(first)  # the rest is added as the run measures it


def test_the_lookup_finds_a_completed_run_only_with_resume_on(compose, tmp_path):
    run_dir = tiny_run(compose, tmp_path)
    cfg = compose([*TINY_RUN, f"paths.results={tmp_path}"])
    assert phases.look_up(RunSpec.of(cfg, tmp_path / "runs" / "again")) == RunFolder(run_dir)
    forced = compose([*TINY_RUN, f"paths.results={tmp_path}", "force=true"])
    assert phases.look_up(RunSpec.of(forced, tmp_path / "runs" / "again")) is None


def test_the_test_splits_wait_for_the_end_unless_asked_or_they_select(compose, tmp_path):
    def at_end(*overrides: str) -> bool:
        cfg = compose([*TINY_RUN, f"paths.results={tmp_path}", *overrides])
        return phases.tests_at_end(RunSpec.of(cfg, tmp_path / "runs" / "tiny"))

    assert at_end() and not at_end("train.test_every_epoch=true") and not at_end("select_on=test")


def test_the_sizes_count_the_virtual_tokens_of_prompt_tuning(compose, tmp_path):
    """metrics.json's sizes: the prompt (20 x hidden 32) trains and counts in the total beside the base."""
    cfg = compose([*TINY_RUN, "variant=prompt_tuning", f"paths.results={tmp_path}"])
    spec = RunSpec.of(cfg, tmp_path / "runs" / "tiny")
    variant = variants.build(spec.variant_name, spec.variant)
    checked = checks.Checked(variant, resolve_targets(spec.model, variant.config.targets), CPU)
    sizes = phases.load_model(spec, checked, CPU, PhaseTimes()).sizes
    base = sum(p.numel() for p in tiny_model(spec.model, spec.task.num_labels).parameters())
    prompt, head = 20 * 32, 32 * 2 + 2
    assert (sizes["trainable_params"], sizes["total_params"]) == (prompt + head, base + prompt)


def record_passes(monkeypatch) -> list[list[str]]:
    """The splits of each evaluation a run computes, in order."""
    passes, real = [], evaluation.evaluator

    def evaluator(*args, **kwargs):
        evaluate = real(*args, **kwargs)

        def recorded():
            metrics, outputs = evaluate()
            passes.append(list(outputs))
            return metrics, outputs

        return recorded

    monkeypatch.setattr(evaluation, "evaluator", evaluator)
    return passes


# regression (Pearson: every change of the weights shows), 6 evaluations; dev selects the second
ONCE = ["task=rt_rating", "task.max_train_samples=64", "train.epochs=3", "train.batch_size=8"]
ONCE += ["train.eval_every_steps=4"]


def test_the_test_split_evaluated_once_gives_the_numbers_of_every_evaluation(compose, tmp_path, monkeypatch):
    """train.test_every_epoch off (the default) and on: the same best and final test metrics, bit for
    bit, the same predictions and adapter; off, two test passes and dev curves only."""
    passes = record_passes(monkeypatch)
    once = RunFolder(tiny_run(compose, tmp_path / "once", *ONCE))
    passes_once = passes[:]
    passes.clear()
    every = RunFolder(tiny_run(compose, tmp_path / "every", *ONCE, "train.test_every_epoch=true"))
    a, b = once.metrics(), every.metrics()
    assert a["status"] == b["status"] == "completed"
    assert a["best_epoch"] == 0.5 and a["best"]["test/pearson"] != a["final"]["test/pearson"]  # kept state
    reported = ("best", "final", "best_epoch")
    assert {k: a[k] for k in reported} == {k: b[k] for k in reported}
    keys = {"dev/pearson", "dev/spearmanr", "test/pearson", "test/spearmanr"}
    assert set(a["best"]) == set(a["final"]) == keys
    history, every_history = once.history(), every.history()
    assert len(history) == 6 and all(set(row) >= {"test/pearson", "test/spearmanr"} for row in every_history)
    assert history == [{k: v for k, v in row.items() if not k.startswith("test/")} for row in every_history]
    assert passes_once == [["dev"]] * 6 + [["test"]] * 2 and passes == [["dev", "test"]] * 6
    assert once.predictions_path.read_text() == every.predictions_path.read_text()
    # the reported state's test predictions (not the final state's), the same bytes either way
    assert once.test_predictions_path.read_bytes() == every.test_predictions_path.read_bytes()
    tests = once.test_predictions()
    assert list(tests["split"].unique()) == ["test"] and tests["idx"].is_monotonic_increasing
    pearson = np.corrcoef(tests["label"], tests["prediction"])[0, 1]
    assert pearson == pytest.approx(a["best"]["test/pearson"], rel=1e-5)
    final = [float(r["prediction"]) for r in once.predictions() if r["split"] == "test"]
    assert final != tests["prediction"].tolist()
    adapter = "adapter_model.safetensors"
    assert (once.adapter_path / adapter).read_bytes() == (every.adapter_path / adapter).read_bytes()
