"""Two runs of one configuration on two devices: their metrics, train losses and logits, within tolerance."""

import pytest

from bench.benchmarks import run_agreement
from bench.results.run_folder import RunFolder

METRICS = {"dev/accuracy": 0.5, "test/accuracy": 0.52, "test/f1": 0.69}


def run(
    tmp_path, name, *, status="completed", metrics=METRICS, losses=(0.6936, 0.6931), logits=None, device="cpu"
):
    """A run folder with metrics.json, history.jsonl and predictions.csv (two test examples)."""
    folder = RunFolder(tmp_path / name)
    folder.path.mkdir()
    folder.write_metrics({"status": status, "device": device, "best": metrics, "final": metrics})
    folder.write_history([{"epoch": i + 1, "train_loss": loss} for i, loss in enumerate(losses)])
    rows = logits or {"1": (-0.01, 0.004), "2": (0.002, -0.003)}
    lines = ["split,idx,label,prediction,logit_0,logit_1"]
    lines += [f"test,{idx},0,{int(b > a)},{a},{b}" for idx, (a, b) in rows.items()]
    folder.predictions_path.write_text("\n".join(lines) + "\n")
    return folder


def test_the_same_run_agrees_exactly(tmp_path):
    found = run_agreement.agreement(run(tmp_path, "cpu"), run(tmp_path, "cuda", device="cuda"))
    assert found["passed"] is True and found["outside_tolerance"] == []
    assert (found["metric"], found["train_loss"], found["logit_max_diff"]) == (0.0, 0.0, 0.0)
    assert (found["examples"], found["same_prediction"], found["logit_scale"]) == (2, 1.0, 0.01)
    assert found["devices"] == ["cpu", "cuda"] and found["tolerance"] == run_agreement.TOLERANCE


def test_small_differences_pass_and_each_measure_fails_outside_its_tolerance(tmp_path):
    cpu = run(tmp_path, "cpu")  # as bf16 autocast moved the tiny run: logits by 2% of their scale
    close = run(
        tmp_path, "close", losses=(0.6937, 0.6931), logits={"1": (-0.0098, 0.004), "2": (0.002, -0.003)}
    )
    found = run_agreement.agreement(cpu, close)
    assert found["passed"] and found["logit_relative"] == pytest.approx(0.02) and found["train_loss"] < 1e-3
    off = {
        "metric": run(tmp_path, "m", metrics=METRICS | {"test/f1": 0.0}),
        "train_loss": run(tmp_path, "l", losses=(0.6936, 0.7131)),
        "logit_relative": run(tmp_path, "g", logits={"1": (-0.01, 0.004), "2": (0.002, 0.0)}),
    }
    for measure, other in off.items():
        found = run_agreement.agreement(cpu, other)
        assert found["passed"] is False and found["outside_tolerance"] == [measure], measure
    assert run_agreement.agreement(cpu, off["logit_relative"])["same_prediction"] == 1.0
    flipped = run(tmp_path, "f", logits={"1": (-0.01, 0.004), "2": (0.002, 0.003)})
    assert run_agreement.agreement(cpu, flipped)["same_prediction"] == 0.5


def test_a_run_that_did_not_complete_does_not_agree(tmp_path):
    found = run_agreement.agreement(run(tmp_path, "cpu"), run(tmp_path, "cuda", status="failed"))
    assert found == {"passed": False, "reason": "not completed: {'other run': 'failed'}"}


def test_runs_that_cannot_be_compared_are_refused(tmp_path):
    cpu = run(tmp_path, "cpu")
    with pytest.raises(ValueError, match="hold 2 and 1 train losses; they must match"):
        run_agreement.agreement(cpu, run(tmp_path, "short", losses=(0.69,)))
    with pytest.raises(ValueError, match="share no example"):
        run_agreement.agreement(cpu, run(tmp_path, "other", logits={"9": (0.1, 0.2)}))
    with pytest.raises(ValueError, match="share no best or final metric"):
        run_agreement.metric_diff({"best": {"a": 1.0}}, {"best": {"b": 1.0}})
