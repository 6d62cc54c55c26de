"""End to end: `python -m bench train` on the tiny model and real rt_polarity data, every output checked."""

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

from bench.analysis import runs_table
from bench.analysis.configurations import tuned_board
from bench.config.budget import budget_label, budget_of
from bench.config.schemas import TaskConfig
from bench.inputs.models import load_tokenizer, model_config, tiny_model
from bench.inputs.tasks import load_task
from bench.results.columns import MEMORY_PARTS, RUNS_COLUMNS

TINY = model_config("tiny")
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
        [sys.executable, "-m", "bench", "train", *overrides],
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
    proc = train(results, *RUN_ARGS, "logger=wandb")
    (run_dir,) = (results / "runs").iterdir()
    return results, run_dir, proc.stdout + proc.stderr


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def _task_data(run_dir: Path):
    """The run's train, dev and test examples, loaded again from its config.yaml."""
    return load_task(TaskConfig(**_task_cfg(run_dir)))


@pytest.mark.slow
def test_run_folder_has_every_file(lora_run):
    _, run_dir, _ = lora_run
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
def test_run_header_names_train_dev_and_test(lora_run):
    *_, log = lora_run
    header = "lora on rt_polarity with tiny, cpu: 96 train, 40 dev, 40 test examples, 2 epochs, 12 steps"
    assert header in log


@pytest.mark.slow
def test_metrics_json_values(lora_run):
    _, run_dir, _ = lora_run
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["status"] == "completed" and m["error"] is None
    assert (m["variant"], m["task"], m["model"], m["seed"]) == ("lora", "rt_polarity", "tiny", 0)
    assert m["run_name"] == "lora-rt_polarity-s0"
    assert m["main_metric"] == "accuracy" and m["dev_metric"] == "accuracy"
    assert (m["select_on"], m["selection_metric"]) == ("dev", "dev/accuracy")
    keys = {"dev/accuracy", "dev/f1", "test/accuracy", "test/f1"}
    assert set(m["best"]) == keys and set(m["final"]) == keys
    # the dev set selects: the best epoch is the evaluation with the highest dev accuracy (the first of
    # equals), and best holds every dev metric of that evaluation; final is the last one. The test splits
    # are evaluated at the end, on those two states (tests/unit/run/test_phases.py: the same numbers).
    history = _history(run_dir)
    assert m["best_epoch"] in (1.0, 2.0)
    dev = [h["dev/accuracy"] for h in history]
    assert m["best_epoch"] == history[dev.index(max(dev))]["epoch"]
    (selected,) = [h for h in history if h["epoch"] == m["best_epoch"]]
    dev_keys = {"dev/accuracy", "dev/f1"}
    assert all(set(h) & keys == dev_keys for h in history)
    assert {k: m["best"][k] for k in dev_keys} == {k: selected[k] for k in dev_keys}
    assert {k: m["final"][k] for k in dev_keys} == {k: history[-1][k] for k in dev_keys}
    assert m["best"]["dev/accuracy"] >= m["final"]["dev/accuracy"]
    # chance: the test metrics of always predicting the train set's majority class
    data = _task_data(run_dir)
    majority = int(np.bincount(data.train["label"]).argmax())
    test_labels = np.asarray(data.evals["test"]["label"])
    assert set(m["chance"]) == {"test/accuracy", "test/f1"}
    assert m["chance"]["test/accuracy"] == pytest.approx(float(np.mean(test_labels == majority)))
    expected_f1 = 2 * test_labels.mean() / (1 + test_labels.mean()) if majority == 1 else 0.0
    assert m["chance"]["test/f1"] == pytest.approx(expected_f1)
    # tiny BERT: 2 layers x (query, value) x LoRA r=4 on 32x32, plus the 32->2 head
    assert m["trainable_params"] == 2 * 2 * (4 * 32 + 32 * 4) + (32 * 2 + 2)
    assert m["pct_trainable"] == pytest.approx(100 * m["trainable_params"] / m["total_params"], abs=1e-3)
    sd = load_file(str(run_dir / "adapter/adapter_model.safetensors"))
    assert sum(t.numel() for t in sd.values()) == m["trainable_params"]
    assert m["adapter_mb"] == pytest.approx(
        (run_dir / "adapter/adapter_model.safetensors").stat().st_size / 2**20, abs=1e-4
    )
    assert m["peak_memory_mb"] > 0 and m["train_time_s"] > 0 and m["train_samples_per_s"] > 0
    assert set(m["memory_breakdown_mb"]) == set(MEMORY_PARTS) and m["memory_breakdown_mb"]["peak"] > 0
    assert m["steps"] == 2 * 6  # 96 examples / batch 16, 2 epochs
    assert len(m["config_hash"]) == 12 and len(m["git_commit"]) >= 7
    assert m["hparams"]["r"] == 4 and m["hparams"]["lr"] == 5e-4


@pytest.mark.slow
def test_history_one_line_per_eval(lora_run):
    _, run_dir, _ = lora_run
    rows = _history(run_dir)
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    assert [r["step"] for r in rows] == [6, 12]
    metrics = ("dev/accuracy", "dev/f1")  # the test splits: once, at the end
    assert all(set(metrics) <= set(r) and "accuracy" not in r and "f1" not in r for r in rows)
    assert not any(k.startswith("test/") for r in rows for k in r)
    assert all(np.isfinite(r["train_loss"]) and all(0 <= r[k] <= 1 for k in metrics) for r in rows)


@pytest.mark.slow
def test_leaderboard_row(lora_run):
    results, run_dir, _ = lora_run
    rows = read_rows(results / "runs.csv")
    assert len(rows) == 1 and list(rows[0]) == RUNS_COLUMNS
    row, m = rows[0], json.loads((run_dir / "metrics.json").read_text())
    assert row["status"] == "completed" and row["variant"] == "lora" and row["run_dir"] == str(run_dir)
    # score: the test accuracy at the epoch selected on dev; dev_score: the dev accuracy that selected it
    assert float(row["score"]) == m["best"]["test/accuracy"]
    assert float(row["dev_score"]) == m["best"]["dev/accuracy"]
    assert row["select_on"] == "dev" and float(row["best_epoch"]) == m["best_epoch"]
    assert float(row["final_score"]) == m["final"]["test/accuracy"]
    assert float(row["chance_score"]) == m["chance"]["test/accuracy"]
    assert json.loads(row["metrics"]) == m["best"] and json.loads(row["final_metrics"]) == m["final"]
    assert int(row["trainable_params"]) == m["trainable_params"]
    # the tuned leaderboard (the default view) reports that test score, with its dev and chance scores
    board = tuned_board(runs_table.load(results))
    (tuned,) = board[(board["task"] == "rt_polarity") & (board["variant"] == "lora")].to_dict("records")
    assert tuned["model"] == "tiny" and tuned["n"] == 1 and tuned["rank"] == 1
    assert tuned["mean_x100"] == pytest.approx(100 * m["best"]["test/accuracy"])
    assert tuned["dev_x100"] == pytest.approx(100 * m["best"]["dev/accuracy"])
    assert tuned["chance_x100"] == pytest.approx(100 * m["chance"]["test/accuracy"])


@pytest.mark.slow
def test_predictions_match_peft_loading_the_saved_adapter(lora_run):
    """peft loads the saved adapter on the same base and reproduces the logits in predictions.csv."""
    from peft import PeftModel

    _, run_dir, _ = lora_run
    rows = read_rows(run_dir / "predictions.csv")
    assert [r["split"] for r in rows] == ["dev"] * 40 + ["test"] * 40
    for r in rows:
        assert int(r["prediction"]) == int(np.argmax([float(r["logit_0"]), float(r["logit_1"])]))
    data = _task_data(run_dir)
    final = json.loads((run_dir / "metrics.json").read_text())["final"]
    base = tiny_model(TINY, num_labels=2, seed=0)
    peft_model = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    for split, examples in [("dev", data.dev), ("test", data.evals["test"])]:
        mine = [r for r in rows if r["split"] == split]
        # the split's examples, in idx order, with their labels (dev and test are disjoint)
        assert [int(r["idx"]) for r in mine] == sorted(examples["idx"])
        columns = zip(examples["idx"], examples["sentence"], examples["label"], strict=True)
        by_idx = {int(i): (text, int(y)) for i, text, y in columns}
        assert [int(r["label"]) for r in mine] == [by_idx[int(r["idx"])][1] for r in mine]
        # the predictions are the final evaluation's: their accuracy is final's
        correct = [int(r["prediction"]) == int(r["label"]) for r in mine]
        assert np.mean(correct) == pytest.approx(final[f"{split}/accuracy"])
        texts = [by_idx[int(r["idx"])][0] for r in mine]
        batch = load_tokenizer(TINY)(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            logits = peft_model(**batch).logits
        saved = torch.tensor([[float(r["logit_0"]), float(r["logit_1"])] for r in mine])
        torch.testing.assert_close(logits, saved, rtol=1e-4, atol=1e-5, msg=f"{split} logits")
    dev_idx, test_idx = ({r["idx"] for r in rows if r["split"] == split} for split in ("dev", "test"))
    assert not dev_idx & test_idx


def _task_cfg(run_dir: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml").task)


@pytest.mark.slow
def test_wandb_offline_run_read_back(lora_run):
    _, run_dir, _ = lora_run
    run = offline_run(run_dir)
    assert run["name"] == "lora-rt_polarity-lr5e-4-s0"  # the lr trained with
    assert set(run["tags"]) >= {"lora", "rt_polarity", "tiny", "seed0"}
    # streamed: every evaluation's dev metrics, at its step (no eval/... keys any more)
    evals = [h for h in run["history"] if "dev/accuracy" in h]
    history = _history(run_dir)
    assert [h["_step"] for h in evals] == [h["step"] for h in history]
    streamed = ("dev/accuracy", "dev/f1")
    assert [[h[k] for k in streamed] for h in evals] == [[h[k] for k in streamed] for h in history]
    metrics = (*streamed, "test/accuracy", "test/f1")
    assert not any(k.startswith("eval/") for h in run["history"] for k in h)
    assert any("train/loss" in h and "train/lr" in h for h in run["history"])
    # summary: the metrics at the selected epoch (not the last one), the final ones, the scores
    m = json.loads((run_dir / "metrics.json").read_text())
    (row,) = read_rows(run_dir.parent.parent / "runs.csv")
    summary = run["summary"]
    assert {k: summary[k] for k in metrics} == m["best"]
    assert {k: summary[f"final/{k}"] for k in metrics} == m["final"]
    assert not any(k.startswith("best/") for k in summary)
    assert summary["score"] == m["best"]["test/accuracy"] == float(row["score"])
    assert summary["dev_score"] == m["best"]["dev/accuracy"] == float(row["dev_score"])
    assert summary["chance_score"] == m["chance"]["test/accuracy"] == float(row["chance_score"])
    assert (summary["select_on"], summary["selection_metric"]) == ("dev", "dev/accuracy")
    assert summary["best_epoch"] == m["best_epoch"] and summary["lr"] == m["hparams"]["lr"] == 5e-4
    assert summary["config_key"] == m["config_key"]
    assert summary["budget"] == budget_label(budget_of(m["settings"])) and "2 ep" in summary["budget"]
    assert summary["trainable_params"] == m["trainable_params"]
    assert run["config"]["variant"]["r"] == 4


@pytest.mark.slow
def test_resume_skips_a_completed_config(lora_run):
    results, *_ = lora_run
    proc = train(results, *RUN_ARGS)
    assert "skipped" in proc.stderr + proc.stdout
    assert len(read_rows(results / "runs.csv")) == 1


@pytest.mark.slow
def test_bad_target_modules_fail_before_training(tmp_path):
    proc = train(tmp_path, *RUN_ARGS, "variant.targets=nonexistent_proj", check=False)
    assert proc.returncode != 0
    assert "match no linear layer" in proc.stderr and "nonexistent_proj" in proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()  # Hydra's folder: a config error leaves no run in it
    assert not (run_dir / "metrics.json").exists() and not (tmp_path / "runs.csv").exists()
    log = tmp_path / "errors" / "runs" / f"{run_dir.name}.txt"
    assert f"traceback in {log}" in proc.stderr and "nonexistent_proj" in log.read_text()


@pytest.mark.slow
def test_rank_larger_than_layer_fails_before_training(tmp_path):
    proc = train(tmp_path, *RUN_ARGS[:-1], "variant.r=64", check=False)
    assert proc.returncode != 0 and "rank r=64 must be in 1..32" in proc.stderr
    assert "no run started" in proc.stderr and not list(tmp_path.glob("runs/*/metrics.json"))


@pytest.mark.slow
def test_wandb_failure_never_loses_the_run_or_its_csv_row(tmp_path):
    proc = train(tmp_path, *RUN_ARGS, "logger=wandb", "logger.wandb.mode=no_such_mode")
    assert "W&B init failed, continuing without W&B" in proc.stdout + proc.stderr  # Hydra logs to stdout
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
    [[str(Path(sys.executable).parent / "peft-bench"), "train"], [sys.executable, "-m", "bench", "train"]],
    ids=["console_script", "python_-m_bench_train"],
)
def test_other_entry_points_compose_the_same_config(command, tmp_path):
    proc = subprocess.run(
        [*command, "variant=vera", "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "name: vera" in proc.stdout and "name: rt_polarity" in proc.stdout


@pytest.mark.slow
def test_wandb_without_a_key_or_a_terminal_goes_offline_with_a_notice(tmp_path):
    """No API key, no ~/.netrc, stdin closed: W&B never waits for a login; one line says it is offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), PEFT_BENCH_RESULTS=str(tmp_path), WANDB_SILENT="true")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "train", *RUN_ARGS, "logger=wandb"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    notices = [line for line in (proc.stdout + proc.stderr).splitlines() if "W&B: no API key" in line]
    assert len(notices) == 1 and "logged offline" in notices[0]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
