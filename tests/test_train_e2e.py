"""End to end: `python -m bench.train` on the tiny model and real rt_polarity data, every output checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.runs import ROOT, read_rows
from helpers.wandb_offline import offline_run
from safetensors.torch import load_file

from bench.models import ModelConfig, load_tokenizer, tiny_model
from bench.results_columns import RUNS_COLUMNS
from bench.tasks import TaskConfig, load_task

TINY = ModelConfig(name="tiny", source="tiny", max_length=64)
RUN_ARGS = [
    "model=tiny",
    "task=rt_polarity",
    "task.max_train_samples=96",
    "task.max_eval_samples=40",
    "train.epochs=2",
    "train.batch_size=16",
    "variant.r=4",
]


def train(results: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PEFT_BENCH_RESULTS": str(results)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.train", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    train(results, *RUN_ARGS, "logger=wandb")
    (run_dir,) = (results / "runs").iterdir()
    return results, run_dir


@pytest.mark.slow
def test_run_folder_has_every_file(lora_run):
    _, run_dir = lora_run
    for name in [
        "config.yaml",
        "metrics.json",
        "history.jsonl",
        "predictions.csv",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    ]:
        assert (run_dir / name).is_file(), name


@pytest.mark.slow
def test_metrics_json_values(lora_run):
    _, run_dir = lora_run
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "completed" and m["error"] is None
    assert (m["variant"], m["task"], m["model"], m["seed"]) == ("lora", "rt_polarity", "tiny", 0)
    assert m["run_name"] == "lora-rt_polarity-s0"
    assert m["main_metric"] == "accuracy" and set(m["best"]) == {"accuracy", "f1"}
    assert m["best"]["accuracy"] >= m["final"]["accuracy"]
    assert m["best_epoch"] in (1.0, 2.0)
    # tiny BERT: 2 layers x (query, value) x LoRA r=4 on 32x32, plus the 32->2 head
    assert m["trainable_params"] == 2 * 2 * (4 * 32 + 32 * 4) + (32 * 2 + 2)
    assert m["pct_trainable"] == pytest.approx(100 * m["trainable_params"] / m["total_params"], abs=1e-3)
    sd = load_file(str(run_dir / "adapter/adapter_model.safetensors"))
    assert sum(t.numel() for t in sd.values()) == m["trainable_params"]
    assert m["adapter_mb"] == pytest.approx(
        (run_dir / "adapter/adapter_model.safetensors").stat().st_size / 2**20, abs=1e-4
    )
    assert m["peak_memory_mb"] > 0 and m["train_time_s"] > 0 and m["train_samples_per_s"] > 0
    assert m["steps"] == 2 * 6  # 96 examples / batch 16, 2 epochs
    assert len(m["config_hash"]) == 12 and len(m["git_commit"]) >= 7
    assert m["hparams"]["r"] == 4 and m["hparams"]["lr"] == 5e-4


@pytest.mark.slow
def test_history_one_line_per_eval(lora_run):
    _, run_dir = lora_run
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    assert [r["step"] for r in rows] == [6, 12]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["accuracy"] <= 1 for r in rows)


@pytest.mark.slow
def test_leaderboard_row(lora_run):
    results, run_dir = lora_run
    rows = read_rows(results / "runs.csv")
    assert len(rows) == 1 and list(rows[0]) == RUNS_COLUMNS
    row, m = rows[0], json.loads((run_dir / "metrics.json").read_text())
    assert row["status"] == "completed" and row["variant"] == "lora" and row["run_dir"] == str(run_dir)
    assert float(row["score"]) == m["best"]["accuracy"]
    assert json.loads(row["metrics"]) == m["best"]
    assert int(row["trainable_params"]) == m["trainable_params"]


@pytest.mark.slow
def test_predictions_match_peft_loading_the_saved_adapter(lora_run):
    """peft loads the saved adapter on the same base and reproduces the logits in predictions.csv."""
    from peft import PeftModel

    _, run_dir = lora_run
    rows = read_rows(run_dir / "predictions.csv")
    assert len(rows) == 40 and all(r["split"] == "validation" for r in rows)
    for r in rows:
        assert int(r["prediction"]) == int(np.argmax([float(r["logit_0"]), float(r["logit_1"])]))
    task = TaskConfig(**_task_cfg(run_dir))
    evals = load_task(task).evals["validation"]
    by_idx = {int(i): s for i, s in zip(evals["idx"], evals["sentence"], strict=True)}
    texts = [by_idx[int(r["idx"])] for r in rows]
    labels = [int(r["label"]) for r in rows]
    assert labels == [int(dict(zip(evals["idx"], evals["label"], strict=True))[int(r["idx"])]) for r in rows]
    base = tiny_model(TINY, num_labels=2, seed=0)
    peft_model = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    batch = load_tokenizer(TINY)(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        logits = peft_model(**batch).logits
    saved = torch.tensor([[float(r["logit_0"]), float(r["logit_1"])] for r in rows])
    torch.testing.assert_close(logits, saved, rtol=1e-4, atol=1e-5)


def _task_cfg(run_dir: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml").task)


@pytest.mark.slow
def test_wandb_offline_run_read_back(lora_run):
    _, run_dir = lora_run
    run = offline_run(run_dir)
    assert run["name"] == "lora-rt_polarity-s0"
    assert set(run["tags"]) >= {"lora", "rt_polarity", "tiny", "seed0"}
    evals = [h for h in run["history"] if "eval/accuracy" in h]
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [h["eval/accuracy"] for h in evals] == [h["accuracy"] for h in history]
    assert any("train/loss" in h and "train/lr" in h for h in run["history"])
    m = json.loads((run_dir / "metrics.json").read_text())
    assert run["summary"]["best/accuracy"] == m["best"]["accuracy"]
    assert run["summary"]["trainable_params"] == m["trainable_params"]
    assert run["config"]["variant"]["r"] == 4


@pytest.mark.slow
def test_resume_skips_a_completed_config(lora_run):
    results, _ = lora_run
    proc = train(results, *RUN_ARGS)
    assert "skipped" in proc.stderr + proc.stdout
    assert len(read_rows(results / "runs.csv")) == 1


@pytest.mark.slow
def test_bad_target_modules_fail_before_training(tmp_path):
    proc = train(tmp_path, *RUN_ARGS, "variant.targets=nonexistent_proj", check=False)
    assert proc.returncode != 0
    assert "match no linear layer" in proc.stderr and "nonexistent_proj" in proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "failed" and "nonexistent_proj" in m["error"] and "steps" not in m
    rows = read_rows(tmp_path / "runs.csv")
    assert len(rows) == 1 and rows[0]["status"] == "failed"


@pytest.mark.slow
def test_rank_larger_than_layer_fails_before_training(tmp_path):
    proc = train(tmp_path, *RUN_ARGS[:-1], "variant.r=64", check=False)
    assert proc.returncode != 0 and "rank r=64 must be in 1..32" in proc.stderr
    m = json.loads(next((tmp_path / "runs").iterdir()).joinpath("metrics.json").read_text())
    assert "steps" not in m


@pytest.mark.slow
def test_wandb_failure_never_loses_the_run_or_its_csv_row(tmp_path):
    proc = train(tmp_path, *RUN_ARGS, "logger=wandb", "logger.wandb.mode=no_such_mode")
    assert "W&B init failed, continuing without W&B" in proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    rows = read_rows(tmp_path / "runs.csv")
    assert len(rows) == 1 and rows[0]["status"] == "completed"


def test_help_and_cfg_job(tmp_path):
    help_text = train(tmp_path, "--help").stdout
    for group in ("variant:", "task:", "model:", "logger:", "experiment:"):
        assert group in help_text
    assert "dora" in help_text and "rt_polarity" in help_text
    job = train(tmp_path, "variant=vera", "task=cola", "--cfg", "job").stdout
    assert "name: vera" in job and "name: cola" in job and "d_initial: 0.1" in job
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "command",
    [[str(Path(sys.executable).parent / "peft-bench-train")], [sys.executable, "-m", "bench", "train"]],
    ids=["console_script", "python_-m_bench_train"],
)
def test_other_entry_points_compose_the_same_config(command, tmp_path):
    proc = subprocess.run(
        [*command, "variant=vera", "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "name: vera" in proc.stdout and "name: rt_polarity" in proc.stdout
