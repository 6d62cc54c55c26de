"""Every user error of ``python -m bench train`` ends in one clear line naming the value and the valid
choices; a run that never started leaves no run behind, its traceback in <results>/errors/ (or on the
terminal with HYDRA_FULL_ERROR=1); a folder holding another run and an unwritable runs CSV are refused
before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.runs import ROOT, TINY_RUN

pytestmark = pytest.mark.slow  # each case is a `python -m bench train` subprocess
QUICK = TINY_RUN


def train(results: Path, *overrides: str, full_error: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(PEFT_BENCH_RESULTS=str(results), WANDB_MODE="disabled")
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    flags = [o for o in overrides if o.startswith("-")]  # -m before the overrides, as argparse wants
    cmd = [sys.executable, "-m", "bench", "train", *flags, *QUICK, *(o for o in overrides if o not in flags)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line, after asserting the run failed without a traceback."""
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    return line


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["variant=nope"], ["unknown variant 'nope'", "lora, loraplus"]),
        (["task=nope"], ["unknown task 'nope'", "rt_polarity"]),
        (["model=nope"], ["unknown model 'nope'", "minilm"]),
        (["-m", "hydra/launcher=nope"], ["unknown hydra/launcher 'nope'", "joblib", "submitit_slurm"]),
        (["variant.rr=3"], ["'rr' not in 'LoRAConfig'"]),
        (["train.lr=abc"], ["'abc'", "could not be converted to Float"]),
        (["variant.name=../x"], ["_../x-rt_polarity-s0'", "cannot name a run folder", "no '..'"]),
        (["task.name=a/b"], ["a/b", "cannot name a run folder"]),
        (["-m", "experiment_name=../up"], ["_../up'", "cannot name a run folder"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and "=" in v[-1] else "",
)
def test_a_bad_command_is_one_line_and_writes_nothing(tmp_path, overrides, expected):
    line = error_line(train(tmp_path / "results", *overrides))
    assert all(e in line for e in expected), line
    assert "no run started" in line
    assert not (tmp_path / "results").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.lr=-1", "train.lr=-1.0 is not valid: it must be a finite number > 0"),
        ("train.epochs=0", "train.epochs=0 is not valid: it must be an integer >= 1"),
        ("train.grad_accum=0", "train.grad_accum=0 is not valid: it must be an integer >= 1"),
        ("train.warmup_ratio=5", "train.warmup_ratio=5.0 is not valid: it must be in [0, 1)"),
        ("variant.r=0", "r=0"),
    ],
)
def test_a_bad_setting_starts_no_run_and_its_line_names_its_traceback(tmp_path, override, expected):
    line = error_line(train(tmp_path, override))
    assert expected in line, line
    (run_dir,) = (tmp_path / "runs").iterdir()  # Hydra's folder: no run in it
    assert not (run_dir / "config.yaml").exists() and not (run_dir / "metrics.json").exists()
    assert not (tmp_path / "runs.csv").exists() and (tmp_path / ".index.jsonl").read_text() == ""
    log = tmp_path / "errors" / "runs" / f"{run_dir.name}.txt"
    assert f"no run started; traceback in {log}; HYDRA_FULL_ERROR=1 prints it" in line
    assert "Traceback (most recent call last)" in log.read_text()


def our_files(folder: Path) -> dict[str, bytes]:
    """A run folder's files but Hydra's own (.hydra/, the log), which Hydra writes before any run code."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"
    }


def test_a_folder_holding_another_run_is_refused_and_left_as_it_was(tmp_path):
    other = tmp_path / "other"
    (other / "adapter").mkdir(parents=True)
    metrics = {"config_hash": "0123456789ab", "run_name": "dora-sst2-s3", "status": "completed"}
    (other / "metrics.json").write_text(json.dumps(metrics))
    (other / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    (other / "predictions.csv").write_text("split,idx\n")
    before = our_files(other)
    line = error_line(train(tmp_path / "results", f"hydra.run.dir={other}"))
    assert f"the run folder {other} holds another run (dora-sst2-s3, completed, config 0123456789ab)" in line
    assert "no run started" in line
    assert our_files(other) == before and not (tmp_path / "results" / "runs.csv").exists()


def test_an_unwritable_runs_csv_is_refused_before_training(tmp_path):
    (tmp_path / "runs.csv").mkdir()  # unwritable for anyone, root included
    line = error_line(train(tmp_path))
    assert f"cannot write the runs CSV {tmp_path / 'runs.csv'}: Is a directory" in line
    assert "no run started" in line and not list(tmp_path.glob("runs/*/metrics.json"))


def test_hydra_full_error_prints_the_traceback(tmp_path):
    proc = train(tmp_path, "train.lr=-1", full_error=True)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    assert "train.lr=-1.0 is not valid" in proc.stderr


@pytest.mark.parametrize("key", ["hydra.callbacks", "logger"])
def test_a_target_naming_any_other_callable_is_refused_before_anything_runs(tmp_path, key):
    """A config is data: `_target_=builtins.open` (which would truncate F) is refused, F is untouched."""
    victim = tmp_path / "F"
    victim.write_text("kept")
    opened = [f"+{key}.x._target_=builtins.open", f"+{key}.x.file={victim}", f"+{key}.x.mode=w"]
    line = error_line(train(tmp_path / "results", *opened))
    assert f"{key}.x._target_='builtins.open' is not allowed" in line and "allowed: bench." in line, line
    assert "no run started" in line
    assert victim.read_text() == "kept" and not (tmp_path / "results").exists()


def test_a_mistyped_key_names_the_close_valid_keys_and_never_suggests_plus(tmp_path):
    line = error_line(train(tmp_path / "results", "train.lrr=1"))
    assert "unknown key train.lrr=1 ('lrr' not in 'TrainConfig'); did you mean train.lr?" in line, line
    assert "+" not in line and "no run started" in line


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["+train.lrr=1"], "unknown key train.lrr=1 ('lrr' not in 'TrainConfig'); did you mean train.lr?"),
        (["seed=-1"], "seed=-1 is not valid: it must be an integer in [0, 4294967295]"),
        (["task.dev_size=1.5"], "task.dev_size=1.5 is not valid: it must be a fraction of train in (0, 1)"),
        (["variant.alpha=-1"], "alpha=-1.0 must be a finite number > 0"),
        (["model.max_length=0"], "model.max_length=0 is not valid: it must be an integer >= 1"),
        (
            ["model=minilm", "model.max_length=1000"],
            "model.max_length=1000 is not valid: it must be in 1..512, the most tokens model 'minilm' takes",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_an_input_once_accepted_or_a_tensor_error_is_one_line_naming_it(tmp_path, overrides, expected):
    line = error_line(train(tmp_path, *overrides))
    assert expected in line, line


def stsb_files(folder: Path, score: str = "4.2", extra: str = "") -> Path:
    """STS-B's GLUE TSV files, 40 training rows, the last with ``score`` (and ``extra`` appended)."""
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    row = "{n}\tmain\tf\t2012\t{n}\tnone\tnone\tA plane takes off.\tA jet flies {n}.\t{s}\n"
    rows = "".join(row.format(n=n, s=f"{n % 6}.0") for n in range(39)) + row.format(n=39, s=score)
    folder.mkdir()
    (folder / "train.tsv").write_text(header + rows[:-1] + extra + "\n")
    (folder / "dev.tsv").write_text(header + "".join(row.format(n=n, s="2.5") for n in range(4)))
    return folder


@pytest.mark.parametrize(
    ("score", "extra", "expected"),
    [
        ("nan", "", "train.tsv, column 'score', data row 40: label 'nan' is not a finite number"),
        ("17.5", "", "data row 40: label '17.5' is outside task 'stsb''s range [0, 5] (task.label_range)"),
        (
            "4.2",
            "\tstray",
            "train.tsv, data row 40 (line 41): 11 tab-separated fields, expected 10 (as the header)",
        ),
        ("4.2", "x" * 50_000_000, "train.tsv, data row 40 (line 41): a field longer than 131,072 characters"),
    ],
    ids=["nan", "out-of-range", "extra-field", "50MB-line"],
)
def test_bad_task_data_fails_the_run_naming_file_row_and_value(tmp_path, score, extra, expected):
    data = stsb_files(tmp_path / "stsb", score, extra)
    line = error_line(train(tmp_path / "results", "task=stsb", f"task.data_dir={data}"))
    assert expected in line and str(data / "train.tsv") in line, line
