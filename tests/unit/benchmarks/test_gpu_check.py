"""The GPU check (bench.benchmarks.gpu_check): its stages' plumbing, the verdict and the JSON file, and on
this machine without CUDA its "no CUDA" answer. The device stages themselves run on a lent GPU machine."""

import json
import sys

import pytest
import torch
from helpers.runs import ROOT

import variants
from bench.benchmarks import gpu_check
from bench.results.run_folder import RunFolder

NO_CUDA = "no CUDA (torch.cuda.is_available() is False)"
needs_no_cuda = pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the answer of a machine without CUDA"
)


@needs_no_cuda
def test_without_cuda_every_stage_is_skipped_and_the_json_says_no_cuda(tmp_path, capsys):
    out = tmp_path / "out" / "gpu_check.json"
    assert gpu_check.main(["--out", str(out), "--carry", str(tmp_path)]) == 0
    doc = json.loads(out.read_text())
    assert doc["verdict"] == f"{NO_CUDA}: nothing checked"
    assert list(doc["stages"]) == list(gpu_check.STAGES)
    assert all(s == {"status": "skipped", "reason": NO_CUDA} for s in doc["stages"].values())
    assert doc["carried"] is None  # nothing installed where nothing runs
    env = doc["environment"]
    assert (env["cuda_available"], env["gpu"], env["device"]) == (False, None, "cuda")
    assert env["versions"]["torch"] == torch.__version__ and "bitsandbytes" in env["versions"]
    assert f"gpu_check: {NO_CUDA}: nothing checked; wrote {out}" in capsys.readouterr().out


def test_unknown_stages_and_a_missing_carry_folder_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--stages", "tiny_cpu,warp", "--out", str(tmp_path / "x.json")])
    assert f"unknown stage(s) ['warp']; choose from {', '.join(gpu_check.STAGES)}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.main(["--carry", str(tmp_path / "nope"), "--out", str(tmp_path / "x.json")])
    assert "is not a folder (make gpu-carry fills it)" in capsys.readouterr().err


def test_the_verdict_names_what_failed_timed_out_and_was_skipped():
    stages = {"a": {"status": "passed"}, "b": {"status": "skipped"}, "c": {"status": "passed"}}
    assert gpu_check.verdict(stages, "") == "passed (2 stages); skipped: b"
    stages |= {"d": {"status": "failed"}, "e": {"status": "timed out"}, "f": {"status": "failed"}}
    assert gpu_check.verdict(stages, "") == "failed: d, f; timed out: e; skipped: b"
    assert gpu_check.verdict(stages, NO_CUDA) == f"{NO_CUDA}: nothing checked"


def check(tmp_path, budget: float = 60.0) -> gpu_check.Check:
    return gpu_check.Check(
        "cpu", tmp_path, gpu_check.stage_env(None, None), gpu_check.time.monotonic() + budget
    )


def test_a_command_passes_fails_or_times_out_and_keeps_the_tail_of_its_output(tmp_path):
    c = check(tmp_path)
    assert c.command("ok", ["-c", "print('fine')"], cap=30) == {
        "status": "passed",
        "command": "python -c print('fine')",
    }
    failed = c.command("bad", ["-c", "import sys; print('x' * 5000); sys.exit(3)"], cap=30)
    assert (failed["status"], failed["reason"]) == ("failed", "exited with 3")
    assert failed["output_tail"] == "x" * (gpu_check.TAIL - 1) + "\n"
    slow = c.command("slow", ["-c", "import time; print('started', flush=True); time.sleep(30)"], cap=1)
    assert (slow["status"], slow["reason"], slow["output_tail"]) == (
        "timed out",
        "stopped after 1 s",
        "started\n",
    )


def test_a_stage_that_raises_fails_and_one_left_too_little_time_is_skipped(tmp_path, monkeypatch):
    def boom(check):
        raise RuntimeError("no run folder")

    monkeypatch.setitem(gpu_check.STAGES, "tiny_cpu", boom)
    stages = gpu_check.run_stages(check(tmp_path), ["tiny_cpu"])
    assert (
        stages["tiny_cpu"]["status"] == "failed"
        and stages["tiny_cpu"]["reason"] == "RuntimeError: no run folder"
    )
    late = gpu_check.run_stages(check(tmp_path, budget=gpu_check.MIN_STAGE_S - 1), ["speed"])
    assert late["speed"]["status"] == "skipped" and late["speed"]["reason"].startswith("out of time (")


def write_run(folder, logit: float):
    run = RunFolder(folder)
    run.path.mkdir(parents=True)
    run.write_metrics({"status": "completed", "device": "cpu", "best": {"test/accuracy": 0.5}})
    run.write_history([{"epoch": 1, "train_loss": 0.69}])
    run.predictions_path.write_text(f"split,idx,label,prediction,logit_0,logit_1\ntest,0,0,0,{logit},0.0\n")
    return run.path


def test_a_device_run_is_compared_with_the_cpu_run(tmp_path):
    c = check(tmp_path)
    c.runs = {
        "tiny_cpu": write_run(tmp_path / "cpu", 0.01),
        "tiny_eager": write_run(tmp_path / "cuda", 0.0101),
    }
    ran = {"status": "passed", "command": "python -m bench train"}
    found = gpu_check.compared(c, ran, "tiny_cpu", "tiny_eager")
    assert found["status"] == "passed" and found["agreement"]["logit_relative"] == pytest.approx(0.01)
    c.runs["tiny_compiled"] = write_run(tmp_path / "compiled", 0.02)
    found = gpu_check.compared(c, ran, "tiny_cpu", "tiny_compiled")
    assert (found["status"], found["reason"]) == ("failed", "outside the tolerance: ['logit_relative']")
    found = gpu_check.compared(c, ran, "tiny_cpu", "qlora_bnb")
    assert (found["status"], found["reason"]) == ("failed", "no run of qlora_bnb to compare")
    assert gpu_check.compared(c, {"status": "timed out"}, "tiny_cpu", "tiny_eager") == {"status": "timed out"}


def test_the_bnb_stages_say_why_they_are_skipped(tmp_path, monkeypatch):
    assert gpu_check.qlora_bnb(check(tmp_path)) == {"status": "skipped", "reason": "backend bnb is CUDA only"}
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    found = gpu_check.qlora_bnb(check(tmp_path))
    assert found["status"] == "skipped" and found["reason"].startswith("bitsandbytes is not importable")
    found = gpu_check.nf4(check(tmp_path))  # a subprocess, where bitsandbytes may import: skipped or passed
    assert found["status"] in ("skipped", "passed")


def test_the_compiled_speed_stage_times_the_variants_of_the_device_targets():
    assert gpu_check.target_variants("cuda") == ["lora", "dora", "vera", "qlora", "adalora", "full"]
    assert set(gpu_check.target_variants("cuda")) <= set(variants.available())
    assert gpu_check.target_variants("tpu") == []


def test_the_stages_environment_puts_the_carried_site_first_and_the_cache_in_place(tmp_path, monkeypatch):
    (tmp_path / "carry" / "cache").mkdir(parents=True)
    env = gpu_check.stage_env(tmp_path / "site", tmp_path / "carry")
    assert env["PYTHONPATH"].split(":")[:2] == [str(tmp_path / "site"), str(ROOT)]
    assert env["PEFT_BENCH_CACHE"] == str(tmp_path / "carry" / "cache")
    assert (env["WANDB_MODE"], env["HF_HUB_OFFLINE"], env["HF_DATASETS_OFFLINE"]) == ("disabled", "1", "1")
    monkeypatch.delenv("PEFT_BENCH_CACHE", raising=False)
    assert "PEFT_BENCH_CACHE" not in gpu_check.stage_env(None, tmp_path / "site")  # no cache folder there


def test_wheels_install_without_an_index_or_fail_with_pips_words(tmp_path):
    assert gpu_check.install(tmp_path, tmp_path / "site") == {"wheels": [], "status": "passed"}
    (tmp_path / "broken-1.0-py3-none-any.whl").write_text("not a zip")
    found = gpu_check.install(tmp_path, tmp_path / "site")
    assert (found["wheels"], found["status"]) == (["broken-1.0-py3-none-any.whl"], "failed")
    assert found["output_tail"]


@pytest.mark.slow
def test_on_the_cpu_the_tiny_runs_agree_exactly(tmp_path, monkeypatch):
    """The check's own plumbing, end to end: two subprocess runs and their comparison (CPU against CPU)."""
    small = ["task.max_train_samples=32", "task.max_eval_samples=16", "train.epochs=1"]
    monkeypatch.setattr(gpu_check, "LORA", [*gpu_check.LORA, *small])
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--stages", "tiny_cpu,tiny_eager", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "passed (2 stages)"
    found = doc["stages"]["tiny_eager"]["agreement"]
    assert found["passed"] and (found["metric"], found["train_loss"], found["logit_max_diff"]) == (0, 0, 0)
    assert found["examples"] == 32 and found["devices"] == ["cpu", "cpu"]
