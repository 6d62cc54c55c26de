"""bench.config.budget: a run's budget picked out of its settings, and its short label."""

from bench.config.budget import BUDGET, UNKNOWN, budget_label, budget_of


def test_budget_label_names_every_part_of_the_budget():
    budget = dict.fromkeys(BUDGET)
    budget.update({"train.epochs": 2, "train.batch_size": 32, "model.max_length": 64})
    assert budget_label({**budget, "task.max_train_samples": 2000, "task.max_eval_samples": 1000}) == (
        "2 ep x bs 32, len 64, 2000/1000 ex"
    )
    compare = {"task.max_train_samples": 1000, "task.max_eval_samples": 1000, "task.max_test_samples": 2000}
    assert budget_label({**budget, **compare}) == "2 ep x bs 32, len 64, 1000/1000 ex, test 2000"
    assert budget_label({**budget, **compare, "task.test_fraction": 0.4}) == (
        "2 ep x bs 32, len 64, 1000/1000 ex, test 2000, test part 0.4"
    )
    budget.update({"train.max_steps": 100, "train.grad_accum": 4, "train.eval_every_steps": 50})
    assert budget_label(budget) == "2 ep (max 100 steps) x bs 32x4, len 64, eval every 50 steps, all/all ex"


def test_budget_of_picks_every_budget_setting_and_none_for_a_missing_one():
    settings = {"train.epochs": 3, "train.batch_size": 16, "train.lr": 1e-3, "variant.r": 8}
    budget = budget_of(settings)
    assert list(budget) == list(BUDGET)  # every part, in BUDGET's order; nothing else
    assert (budget["train.epochs"], budget["train.batch_size"]) == (3, 16)
    assert budget["model.max_length"] is None and "train.lr" not in budget
    assert budget_label(budget) == "3 ep x bs 16, len all, all/all ex"


def test_settings_an_older_run_did_not_record_show_as_unknown():
    budget = dict.fromkeys(BUDGET, UNKNOWN) | {"train.epochs": 3, "train.batch_size": 16}
    assert budget_label(budget) == "3 ep x bs 16, len ?, ?/? ex"  # the unknown step options: not shown
