"""The training loop: schedule, step counting, gradient accumulation, evaluation cadence, divergence."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bench.config.schemas import TrainConfig
from bench.run import loop
from bench.run.loop import Fit, linear_schedule, total_steps
from variants.base import Targets
from variants.full import Full


class Toy(nn.Module):
    """Linear regression with a loss that turns NaN at a chosen forward call."""

    def __init__(self, nan_at: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 1)
        self.calls, self.nan_at = 0, nan_at

    def forward(self, x, labels):
        self.calls += 1
        out = self.lin(x).squeeze(-1)
        loss = ((out - labels) ** 2).mean()
        return SimpleNamespace(loss=loss * float("nan") if self.calls == self.nan_at else loss, logits=out)


def batches(n_batches: int, size: int) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    return [
        {"x": torch.randn(size, 4, generator=g), "labels": torch.randn(size, generator=g)}
        for _ in range(n_batches)
    ]


def run(model, loader, cfg, evals=None):
    variant = Full()
    variant.apply(model, Targets(modules=["lin"], head=[]))
    scores = iter(evals or [0.5] * 100)
    return Fit(
        model,
        variant,
        loader,
        lambda: ({"accuracy": next(scores)}, {}),
        cfg,
        0.1,
        torch.device("cpu"),
        "accuracy",
        lambda values, step: None,
    ).run()


def test_linear_schedule_warmup_then_decay():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_schedule(opt, warmup=10, total=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 11) and lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5) and lrs[99] == pytest.approx(1 / 90)
    assert max(lrs) == pytest.approx(1.0)


def test_total_steps_counts_accumulation_and_max_steps():
    assert total_steps(10, TrainConfig(epochs=3)) == 30
    assert total_steps(10, TrainConfig(epochs=3, grad_accum=4)) == 9  # ceil(10 / 4) per epoch
    assert total_steps(10, TrainConfig(epochs=3, max_steps=7)) == 7


def test_gradient_accumulation_equals_the_big_batch():
    big, small = batches(1, 16), batches(1, 16)
    halves = [{k: v[:8] for k, v in small[0].items()}, {k: v[8:] for k, v in small[0].items()}]
    cfg = TrainConfig(epochs=1, warmup_ratio=0.0, max_grad_norm=0.0, weight_decay=0.0)
    a, b = Toy(), Toy()
    run(a, big, cfg)
    run(b, halves, TrainConfig(epochs=1, warmup_ratio=0.0, max_grad_norm=0.0, weight_decay=0.0, grad_accum=2))
    torch.testing.assert_close(a.lin.weight, b.lin.weight)
    assert not torch.equal(a.lin.weight, Toy().lin.weight)


def test_evaluates_every_epoch_and_every_n_steps_and_keeps_the_best():
    result = run(
        Toy(), batches(4, 8), TrainConfig(epochs=2, eval_every_steps=3), evals=[0.1, 0.7, 0.3, 0.6, 0.2]
    )
    assert [h["step"] for h in result.history] == [3, 4, 6, 8]
    assert [h["epoch"] for h in result.history] == [0.75, 1.0, 1.5, 2.0]
    assert result.best == {"accuracy": 0.7} and result.best_epoch == 1.0
    assert result.final == {"accuracy": 0.6} and result.status == "completed" and result.steps == 8
    assert result.samples_seen == 64


def test_a_step_that_ends_an_epoch_is_evaluated_once():
    result = run(Toy(), batches(4, 8), TrainConfig(epochs=2, eval_every_steps=2), evals=[0.1, 0.2, 0.3, 0.4])
    assert [h["step"] for h in result.history] == [2, 4, 6, 8]


def test_non_finite_loss_stops_the_run_as_diverged():
    model = Toy(nan_at=3)
    result = run(model, batches(4, 8), TrainConfig(epochs=5))
    assert result.status == "diverged" and "step 3" in result.error
    assert result.steps == 2 and model.calls == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_on_an_accelerator_a_non_finite_loss_is_found_at_the_next_read(monkeypatch):
    """Where reading a loss waits on the device, the losses are read every LOSS_READ_EVERY steps and
    before each evaluation: a NaN at step 3 is found at the end of the epoch (step 4)."""
    monkeypatch.setattr(loop, "checks_each_loss", lambda device: False)
    model = Toy(nan_at=3)
    result = run(model, batches(4, 8), TrainConfig(epochs=5))
    assert result.status == "diverged" and result.error == "non-finite loss nan at step 3 (read at step 4)"
    assert result.steps == 2 and model.calls == 4 and result.history == []


def test_losses_read_every_few_steps_log_what_losses_read_every_step_log(monkeypatch):
    def logged_run():
        logged = []
        variant, model = Full(), Toy()
        variant.apply(model, Targets(modules=["lin"], head=[]))
        result = Fit(
            model, variant, batches(25, 4), lambda: ({"accuracy": 0.5}, {}), TrainConfig(epochs=1), 0.1,
            torch.device("cpu"), "accuracy", lambda values, step: logged.append((step, values)),
        ).run()  # fmt: skip
        return logged, result.history

    each_step = logged_run()
    monkeypatch.setattr(loop, "checks_each_loss", lambda device: False)
    assert logged_run() == each_step
    steps = [step for step, values in each_step[0] if "train/loss" in values]
    assert steps == [10, 20, 25] and math.isfinite(each_step[1][0]["train_loss"])


def test_progress_logs_a_line_per_tenth_when_not_a_terminal(caplog):
    caplog.set_level("INFO", logger="peft-bench")
    run(Toy(), batches(20, 2), TrainConfig(epochs=1, progress="auto"))  # pytest's stderr is no terminal
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train: step")]
    assert lines[0] == "train: step 2/20" and lines[-1] == "train: step 20/20"
    assert len(lines) == 10


def fit_tested_at_end(dev_scores: list[float], epochs: int, nan_at: int | None = None):
    """A Fit whose evaluations give ``dev_scores`` and whose test split, evaluated at the end only,
    reports the weights it sees; returns (result, weights at each evaluation, at each test pass, at the
    end)."""
    model, variant = Toy(nan_at), Full()
    variant.apply(model, Targets(modules=["lin"], head=[]))
    scores, at_evaluation, at_test = iter(dev_scores), [], []

    def evaluate():
        at_evaluation.append(model.lin.weight.sum().item())
        return {"dev/s": next(scores)}, {"dev": "dev outputs"}

    def evaluate_test():
        at_test.append(model.lin.weight.sum().item())
        return {"test/w": at_test[-1]}, {"test": f"test outputs {len(at_test)}"}

    cfg = TrainConfig(epochs=epochs)
    result = Fit(
        model, variant, batches(4, 8), evaluate, cfg, 0.1, torch.device("cpu"), "dev/s", lambda *a: None,
        None, evaluate_test,
    ).run()  # fmt: skip
    return result, at_evaluation, at_test, model.lin.weight.sum().item()


def test_the_test_split_is_evaluated_once_on_the_best_state_and_once_on_the_final_one():
    result, seen, tested, end = fit_tested_at_end([0.1, 0.7, 0.3, 0.6], epochs=4)
    assert len(set(seen)) == 4 and tested == [seen[3], seen[1]]  # the final state, then the kept best
    assert result.best == {"dev/s": 0.7, "test/w": seen[1]} and result.best_epoch == 2.0
    assert result.final == {"dev/s": 0.6, "test/w": seen[3]}
    assert result.final_outputs == {"dev": "dev outputs", "test": "test outputs 1"}
    assert result.best_outputs == {"dev": "dev outputs", "test": "test outputs 2"}  # the reported state's
    assert end == seen[3]  # the final state back in the model (its adapter is what the run saves)
    assert all(not any(k.startswith("test/") for k in row) for row in result.history)  # dev curves only


def test_when_the_last_evaluation_is_the_best_the_test_split_is_evaluated_once():
    result, seen, tested, _ = fit_tested_at_end([0.1, 0.2, 0.3, 0.4], epochs=4)
    assert tested == [seen[3]]
    assert result.best == result.final == {"dev/s": 0.4, "test/w": seen[3]}
    assert result.best_outputs == result.final_outputs == {"dev": "dev outputs", "test": "test outputs 1"}


@pytest.mark.parametrize(("dev_scores", "best"), [([0.7, 0.1], 0), ([0.1, 0.7], 1)])
def test_a_diverged_run_tests_its_best_state_and_its_last_evaluation_only_when_that_was_the_best(
    dev_scores, best
):
    """Diverged at step 11: the live weights are past the last evaluation (step 8)."""
    result, seen, tested, end = fit_tested_at_end(dev_scores, epochs=4, nan_at=11)
    assert result.status == "diverged" and len(seen) == 2 and end not in seen
    assert tested == [seen[best]] and result.best == {"dev/s": 0.7, "test/w": seen[best]}
    assert result.best_outputs == {"dev": "dev outputs", "test": "test outputs 1"}
    last_is_best = best == 1
    assert result.final == {"dev/s": dev_scores[1]} | ({"test/w": seen[1]} if last_is_best else {})


def test_a_run_diverged_before_any_evaluation_has_no_reported_outputs():
    result, seen, tested, _ = fit_tested_at_end([0.5], epochs=4, nan_at=2)
    assert result.status == "diverged" and seen == tested == []
    assert result.best == {} and result.best_outputs == {}


def test_with_the_test_splits_at_every_evaluation_the_best_ones_outputs_are_reported():
    """``evaluate_test`` None (select_on=test, train.test_every_epoch): each evaluation covers the test
    splits, and the outputs kept are those of the evaluation that selects."""
    model, variant = Toy(), Full()
    variant.apply(model, Targets(modules=["lin"], head=[]))
    scores = iter([0.1, 0.7, 0.3])

    def evaluate():
        score = next(scores)
        return {"test/s": score}, {"test": f"outputs at {score}"}

    result = Fit(
        model, variant, batches(4, 8), evaluate, TrainConfig(epochs=3), 0.1, torch.device("cpu"), "test/s",
        lambda *a: None,
    ).run()  # fmt: skip
    assert result.best_outputs == {"test": "outputs at 0.7"}
    assert result.final_outputs == {"test": "outputs at 0.3"}
