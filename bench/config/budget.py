"""The budget of a comparison: what a run may see and spend (epochs or steps, batch, length, evaluation
schedule, examples). Methods compared on one task should share it; the leaderboard flags those that do
not, and tunes each method within one budget.
"""

from __future__ import annotations

from typing import Any

# The budget of a comparison: what a run is allowed to see and spend. Settings keys, with the hparams
# key an older run recorded instead (None: not recorded before settings).
BUDGET = {
    "train.epochs": "epochs",
    "train.max_steps": None,
    "train.batch_size": "batch_size",
    "train.grad_accum": None,
    "model.max_length": None,
    "train.eval_every_steps": None,
    "task.max_train_samples": "max_train_samples",
    "task.max_eval_samples": None,
    "task.max_test_samples": None,
    "task.test_fraction": None,
}
UNKNOWN = "?"  # a budget setting an older run did not record


def budget_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The BUDGET settings of a run's ``settings`` (its resolved config as dotted keys)."""
    return {k: settings.get(k) for k in BUDGET}


def budget_label(b: dict[str, Any]) -> str:
    """A short label, e.g. "2 ep x bs 32, len 64, 2000/1000 ex" (train/eval examples; all: no limit; ?:
    not recorded by an older run). max_steps, grad_accum, eval_every_steps, max_test_samples ("test
    2000") and a vader test_fraction ("test part 0.4") show when set."""

    def v(key: str, none: str = "all") -> str:
        value = b[key]
        return none if value is None else str(value)

    def given(key: str, default: Any) -> Any:  # a value that changes the label, if any
        return None if b[key] in (None, default, UNKNOWN) else b[key]

    steps, accum = given("train.max_steps", 0), given("train.grad_accum", 1)
    evals = given("train.eval_every_steps", 0)
    epochs = f"{v('train.epochs')} ep" + (f" (max {steps} steps)" if steps else "")
    batch = f"bs {v('train.batch_size')}" + (f"x{accum}" if accum else "")
    every = f", eval every {evals} steps" if evals else ""
    tests, fraction = given("task.max_test_samples", None), given("task.test_fraction", None)
    examples = f"{v('task.max_train_samples')}/{v('task.max_eval_samples')} ex"
    examples += (f", test {tests}" if tests else "") + (f", test part {fraction:g}" if fraction else "")
    return f"{epochs} x {batch}, len {v('model.max_length')}{every}, {examples}"
