"""Checkpoints (bench.run.checkpoint): a run stopped mid-training resumes and ends bit-identical to an
uninterrupted one (LoRA, AdaLoRA; mid-epoch, at an epoch's end, with gradient accumulation, with the best
evaluation's state kept for the test split at the end); a cut-short checkpoint is not trusted; the
folder goes once the run has ended; bad settings are refused. The slow test SIGKILLs a real
`python -m bench train` and reruns the same command."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from helpers.runs import ROOT, bench_env, kill_when, tiny_run

import variants
from bench.config.schemas import TrainConfig
from bench.inputs import batching
from bench.inputs.models import load_tokenizer, model_config, tiny_model
from bench.run import best_state, checkpoint, evaluation, phases
from bench.run.loop import Fit
from variants.base import Targets

TINY = model_config("tiny")
WORDS = "a fine film dull and long i loved it not worth the ticket great cast weak plot".split()
# 40 examples at batch 4: 10 batches per epoch, 3 epochs, 30 steps; evaluations at steps 4, 8, 10 (the
# end of epoch 1), 12, 16, 20, 20 (end of epoch 2), 24, 28, 30.
BASE = {"epochs": 3, "batch_size": 4, "eval_every_steps": 4, "progress": "off", "checkpoint_every_minutes": 0}


class Killed(Exception):
    """Stands in for SIGKILL: stops fit between two steps."""


def examples(tokenizer) -> list[dict]:
    rng = random.Random(0)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(2, 12))) for _ in range(40)]
    ds = datasets.Dataset.from_dict(
        {"sentence": texts, "label": [i % 2 for i in range(40)], "idx": range(40)}
    )
    return batching.tokenize(ds, tokenizer, ["sentence"], TINY.max_length, regression=False)


def fit_tiny(
    name: str,
    options: dict,
    cfg: TrainConfig,
    folder: Path | None,
    kill_at_eval: int | None = None,
    tests_at_end: bool = False,
):
    """Train the tiny BERT (dropout on) with variant ``name`` on 40 examples in length-grouped batches; the
    ``kill_at_eval``-th evaluation raises Killed. With ``tests_at_end``, the highest dev loss selects (an
    evaluation before the last) and a test split of 8 more examples is evaluated at the end (``Fit``'s
    ``evaluate_test``). Returns (result, model, variant)."""
    phases.seed_everything(0)
    model = tiny_model(TINY, 2, seed=0)
    variant = variants.build(name, {"name": name, **options})
    variant.apply(model, Targets(modules=["query", "value"], head=["classifier"]))
    tokenizer = load_tokenizer(TINY)
    collate = batching.Collator(tokenizer, regression=False)
    train_set = examples(tokenizer)
    train = batching.train_loader(train_set, collate, cfg.batch_size, seed=0, group_by_length=True)
    held_out, test = collate(train_set[:8]), collate(train_set[8:16])
    calls = 0

    @torch.no_grad()
    def scores(split: str, examples: dict) -> tuple[dict[str, float], dict]:
        model.eval()
        idx, labels = examples["idx"].numpy(), examples["labels"]
        out = model(**{k: v for k, v in examples.items() if k != "idx"})
        logits = out.logits.numpy()
        return {f"{split}/score": -out.loss.item(), f"{split}/loss": out.loss.item()}, {
            split: (logits, labels.numpy(), idx)
        }

    def evaluate():
        nonlocal calls
        calls += 1
        if calls == kill_at_eval:
            raise Killed
        return scores("dev", held_out)

    evaluate_test = (lambda: scores("test", test)) if tests_at_end else None
    select = "dev/loss" if tests_at_end else "dev/score"
    result = Fit(
        model, variant, train, evaluate, cfg, 1e-2, torch.device("cpu"), select, lambda *a: None, folder,
        evaluate_test,
    ).run()  # fmt: skip
    return result, model, variant


def assert_same_run(a, b) -> None:
    """Two (result, model, variant) triples are bit-identical: history, metrics, outputs, weights, masks."""
    (ra, ma, va), (rb, mb, vb) = a, b
    assert json.dumps(ra.history) == json.dumps(rb.history) and ra.history  # as history.jsonl: nan == nan
    assert (ra.best, ra.best_epoch, ra.final, ra.steps, ra.samples_seen) == (
        rb.best,
        rb.best_epoch,
        rb.final,
        rb.steps,
        rb.samples_seen,
    )
    for kept in ("final_outputs", "best_outputs"):
        outputs_a, outputs_b = getattr(ra, kept), getattr(rb, kept)
        assert list(outputs_a) == list(outputs_b) and outputs_a, kept
        for split, arrays in outputs_a.items():
            for x, y in zip(arrays, outputs_b[split], strict=True):
                assert np.array_equal(x, y)
    pa, pb = dict(ma.named_parameters()), dict(mb.named_parameters())
    for name, p in pa.items():
        if p.requires_grad:
            assert torch.equal(p, pb[name]), name
    assert va.summary(ma) == vb.summary(mb)  # AdaLoRA: the rank pattern and budget


def without_checkpoints(cfg: TrainConfig) -> TrainConfig:
    return dataclasses.replace(cfg, checkpoint_every_steps=0, checkpoint_every_minutes=0)


ADALORA = {"init_r": 4, "target_r": 2}  # schedule of 30 steps: warm-up to step 3, pattern fixed at step 19
CASES = {
    # name: (variant, options, settings, kill at evaluation number, step of the checkpoint resumed from,
    # test split at the end)
    "lora-mid-epoch": ("lora", {"r": 4, "dropout": 0.1}, {"checkpoint_every_steps": 3}, 2, 6, False),
    "lora-epoch-end": ("lora", {"r": 4, "dropout": 0.1}, {"checkpoint_every_steps": 5}, 3, 10, False),
    "lora-grad-accum": ("lora", {"r": 4}, {"checkpoint_every_steps": 2, "grad_accum": 2}, 3, 6, False),
    "adalora-budget-phase": ("adalora", ADALORA, {"checkpoint_every_steps": 3}, 2, 6, False),
    # evaluation 7: step 24
    "adalora-pattern-fixed": ("adalora", ADALORA, {"checkpoint_every_steps": 3}, 7, 21, False),
    # the best evaluation (step 8) is kept in memory, and in the checkpoint of step 9; the kill comes after
    "lora-best-kept": ("lora", {"r": 4, "dropout": 0.1}, {"checkpoint_every_steps": 3}, 3, 9, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_stopped_fit_resumes_bit_identical_to_an_uninterrupted_one(case, tmp_path):
    name, options, settings, kill_at, resumed_step, at_end = CASES[case]
    cfg = TrainConfig(**BASE, **settings)
    uninterrupted = fit_tiny(name, options, without_checkpoints(cfg), None, tests_at_end=at_end)
    with pytest.raises(Killed):
        fit_tiny(name, options, cfg, tmp_path, kill_at_eval=kill_at, tests_at_end=at_end)
    kept = [int(p.name.split("-")[1]) for p in checkpoint.saved_steps(tmp_path)]
    assert kept[-1] == resumed_step and len(kept) == checkpoint.KEEP
    resumed = fit_tiny(name, options, cfg, tmp_path, tests_at_end=at_end)
    assert resumed[0].resumed_from == resumed_step and uninterrupted[0].resumed_from is None
    assert_same_run(resumed, uninterrupted)
    if at_end:  # the test metrics of the state kept before the kill, not of the final one
        result = resumed[0]
        assert result.best_epoch == 0.8 and result.history[-1]["epoch"] == 3.0
        assert "test/score" in result.best and result.best["test/score"] != result.final["test/score"]


@pytest.mark.parametrize(
    ("case", "owner", "restore"),
    [
        ("lora-mid-epoch", checkpoint, "set_rng_state"),  # the global RNG states (dropout)
        ("lora-grad-accum", batching.EpochOrder, "load_state_dict"),  # the sampler's order (epoch 2)
        ("adalora-budget-phase", variants.get("adalora"), "load_training_state"),  # the importance EMAs
        ("lora-best-kept", best_state.BestState, "load_state_dict"),  # the best evaluation's state
    ],
)
def test_the_test_above_can_fail_each_part_of_the_state_matters(case, owner, restore, tmp_path, monkeypatch):
    """The same resume with one part of the state left as a fresh run has it ends elsewhere."""
    name, options, settings, kill_at, _, at_end = CASES[case]
    cfg = TrainConfig(**BASE, **settings)
    uninterrupted = fit_tiny(name, options, without_checkpoints(cfg), None, tests_at_end=at_end)
    with pytest.raises(Killed):
        fit_tiny(name, options, cfg, tmp_path, kill_at_eval=kill_at, tests_at_end=at_end)
    monkeypatch.setattr(owner, restore, lambda *args: None)
    resumed = fit_tiny(name, options, cfg, tmp_path, tests_at_end=at_end)
    assert resumed[0].resumed_from is not None
    with pytest.raises(AssertionError):
        assert_same_run(resumed, uninterrupted)


def test_checkpoints_by_time_are_written_too(tmp_path):
    cfg = TrainConfig(**(BASE | {"checkpoint_every_minutes": 1e-9}))  # every step
    with pytest.raises(Killed):
        fit_tiny("lora", {"r": 4}, cfg, tmp_path, kill_at_eval=2)
    assert [p.name for p in checkpoint.saved_steps(tmp_path)] == ["step-00000006", "step-00000007"]


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damaged", [checkpoint.TENSORS, checkpoint.STATE])
def test_a_cut_short_checkpoint_is_named_and_the_previous_one_used(damaged, tmp_path, caplog):
    name, options, settings, *_ = CASES["lora-mid-epoch"]
    cfg = TrainConfig(**BASE, **settings)
    with pytest.raises(Killed):
        fit_tiny(name, options, cfg, tmp_path, kill_at_eval=3)  # checkpoints of steps 6 and 9
    newest, previous = checkpoint.saved_steps(tmp_path)[::-1]
    cut_short(newest / damaged)
    (tmp_path / ".tmp-step-00000012").mkdir()  # a write that a kill interrupted: never read
    (tmp_path / ".tmp-step-00000012" / checkpoint.STATE).write_text("{")
    caplog.set_level("WARNING", logger="peft-bench")
    resumed = fit_tiny(name, options, cfg, tmp_path)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith(f"checkpoint {newest} is not usable, removed: ")
    assert damaged in warning or "Expecting" in warning  # the file, or JSON's message for a cut state.json
    assert resumed[0].resumed_from == 9 - 3 == int(previous.name.split("-")[1])
    assert_same_run(resumed, fit_tiny(name, options, TrainConfig(**BASE), None))


def test_with_every_checkpoint_damaged_the_run_starts_from_scratch(tmp_path, caplog):
    name, options, settings, *_ = CASES["lora-mid-epoch"]
    cfg = TrainConfig(**BASE, **settings)
    with pytest.raises(Killed):
        fit_tiny(name, options, cfg, tmp_path, kill_at_eval=3)
    saved = checkpoint.saved_steps(tmp_path)
    for path in saved:
        cut_short(path / checkpoint.TENSORS)
    caplog.set_level("WARNING", logger="peft-bench")
    resumed = fit_tiny(name, options, cfg, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and all(
        f"{p / checkpoint.TENSORS}: sha256" in w for p, w in zip(saved[::-1], warnings, strict=True)
    )
    assert resumed[0].resumed_from is None
    assert_same_run(resumed, fit_tiny(name, options, TrainConfig(**BASE), None))


@pytest.mark.parametrize(
    ("other", "tests_at_end"),
    [({"r": 8}, False), ({"r": 4}, True)],  # other shapes; the test split at the end: no best state in it
)
def test_a_checkpoint_of_another_run_is_not_trusted(other, tests_at_end, tmp_path, caplog):
    with pytest.raises(Killed):
        fit_tiny("lora", {"r": 4}, TrainConfig(**BASE, checkpoint_every_steps=3), tmp_path, kill_at_eval=2)
    caplog.set_level("WARNING", logger="peft-bench")
    resumed = fit_tiny("lora", other, TrainConfig(**BASE), tmp_path, tests_at_end=tests_at_end)
    assert resumed[0].resumed_from is None and "is not this run's" in caplog.text


def test_state_with_non_string_keys_is_refused(tmp_path):
    with pytest.raises(TypeError, match="keys must be strings"):
        checkpoint.save(tmp_path, 1, {"optimizer": {0: torch.zeros(1)}})


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_checkpoint_files_follow_the_umask_so_a_teammate_can_resume(tmp_path, umask, mode):
    """safetensors writes through a private temporary file (0600): a shared results folder needs more."""
    old = os.umask(umask)
    try:
        saved = checkpoint.save(tmp_path, 1, {"w": torch.zeros(2), "step": 1})
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in saved.iterdir()} == {
        checkpoint.TENSORS: mode,
        checkpoint.STATE: mode,
    }


# -- through the runner: where the folder is, when it goes ------------------------------------------------

RUN = ["train.batch_size=4", "train.checkpoint_every_steps=2"]  # 32 examples: 8 steps, checkpoints at 2, 4, 6


def checkpoint_folder(results: Path) -> Path:
    (folder,) = (results / "checkpoints").iterdir()
    return folder


def test_the_checkpoint_is_deleted_once_the_run_has_ended_unless_kept(compose, tmp_path):
    run_dir = tiny_run(compose, tmp_path / "deleted", *RUN)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert list((tmp_path / "deleted" / "checkpoints").iterdir()) == []
    run_dir = tiny_run(compose, tmp_path / "kept", *RUN, "train.keep_checkpoint=true")
    m = json.loads((run_dir / "metrics.json").read_text())
    folder = checkpoint_folder(tmp_path / "kept")
    assert folder == checkpoint.folder(tmp_path / "kept", m["config_hash"])
    assert [p.name for p in checkpoint.saved_steps(folder)] == ["step-00000004", "step-00000006"]


def stop_at_second_eval(monkeypatch) -> None:
    """The run's second evaluation (step 6 with train.eval_every_steps=3, before that step's checkpoint)
    raises Ctrl-C."""
    real = evaluation.evaluator

    def evaluator(*args, **kwargs):
        evaluate, calls = real(*args, **kwargs), []

        def stopping():
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return evaluate()

        return stopping

    monkeypatch.setattr(evaluation, "evaluator", evaluator)


def test_an_interrupted_run_resumes_through_the_runner_and_force_starts_afresh(
    compose, tmp_path, monkeypatch
):
    args = [*RUN, "train.eval_every_steps=3"]
    with monkeypatch.context() as m:
        stop_at_second_eval(m)
        with pytest.raises(KeyboardInterrupt):
            tiny_run(compose, tmp_path, *args)
    run_dir = tmp_path / "runs" / "tiny"
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"
    assert [p.name for p in checkpoint.saved_steps(checkpoint_folder(tmp_path))] == [
        "step-00000002",
        "step-00000004",
    ]
    tiny_run(compose, tmp_path, *args)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert (m["status"], m["resumed_from_step"], m["steps"]) == ("completed", 4, 8)
    assert not any((tmp_path / "checkpoints").iterdir())

    with monkeypatch.context() as mp:
        stop_at_second_eval(mp)
        with pytest.raises(KeyboardInterrupt):
            tiny_run(compose, tmp_path, *args, "force=true")
    tiny_run(compose, tmp_path, *args, "force=true")  # force: from scratch, its checkpoint cleared
    assert json.loads((run_dir / "metrics.json").read_text())["resumed_from_step"] is None


# -- SIGKILL of a real run (slow) ----------------------------------------------------------------------

E2E = [
    "model=tiny",
    "task=rt_polarity",
    "task.max_train_samples=400",
    "task.max_eval_samples=40",
    "train.epochs=2",
    "train.batch_size=4",
    "train.eval_every_steps=40",
    "train.checkpoint_every_steps=20",  # 200 steps: checkpoints at 20, 40, ...
    "train.progress=off",
]


def train_cmd(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "bench", "train", *E2E, *overrides]


def run_folder(results: Path) -> Path:
    (run_dir,) = [p for p in (results / "runs").iterdir() if (p / "metrics.json").exists()]
    return run_dir


def outputs(run_dir: Path) -> dict:
    """What a run computed: metrics, history, predictions and adapter bytes (no timings)."""
    m = json.loads((run_dir / "metrics.json").read_text())
    return {
        "metrics": {k: m[k] for k in ("status", "best", "best_epoch", "final", "steps", "config_hash")},
        "history": (run_dir / "history.jsonl").read_text(),
        "predictions": (run_dir / "predictions.csv").read_text(),
        "adapter": (run_dir / "adapter" / "adapter_model.safetensors").read_bytes(),
    }


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lora", "adalora"])
def test_a_sigkilled_run_rerun_with_the_same_command_ends_as_an_uninterrupted_one(variant, tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    kill_when(
        train_cmd(f"variant={variant}"), killed, lambda: bool(list(killed.glob("checkpoints/*/step-*")))
    )
    assert not list(killed.glob("runs/*/metrics.json"))  # killed mid-training: no record
    time.sleep(1.1)  # a new timestamped run folder for the rerun (hydra.run.dir)
    rerun = subprocess.run(
        train_cmd(f"variant={variant}"), cwd=ROOT, env=bench_env(killed), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from checkpoint" in rerun.stdout + rerun.stderr
    # the uninterrupted run never writes a checkpoint: writing one changes nothing either
    no_checkpoints = [
        "train.checkpoint_every_steps=0",
        "train.checkpoint_every_minutes=0",
        f"variant={variant}",
    ]
    clean_run = subprocess.run(
        train_cmd(*no_checkpoints), cwd=ROOT, env=bench_env(clean), capture_output=True, text=True
    )
    assert clean_run.returncode == 0, clean_run.stderr[-3000:]
    resumed_dir = run_folder(killed)
    m = json.loads((resumed_dir / "metrics.json").read_text())
    assert 20 <= m["resumed_from_step"] < m["steps"] == 200
    assert outputs(resumed_dir) == outputs(run_folder(clean))
    assert not any((killed / "checkpoints").iterdir())  # deleted once completed
