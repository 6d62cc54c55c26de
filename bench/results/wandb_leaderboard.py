"""The sweep-end W&B run of an experiment: the tuned leaderboard, as a W&B user finds it.

One run per experiment (``experiment_name``), whatever the number of sweeps: its id is stable
(``leaderboard-<experiment>``, ``leaderboard_run_id``) and every sweep end of the experiment resumes and
updates it (``resume="allow"``) instead of adding a run. It is named ``<experiment>-leaderboard``, has job
type ``leaderboard`` and sits in the group of the sweep that ended last. It logs the table of
``leaderboard_table`` twice: as the W&B Table ``leaderboard`` (a panel) and in the table artifact
``<experiment>-leaderboard`` (type ``leaderboard``), which gets a new version when the table changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from bench.analysis.columns import TUNED_COLUMNS, tidy
from bench.analysis.configurations import configurations
from bench.analysis.selection import ci_half_width, tuned
from bench.analysis.significance import mark_ties
from bench.results.run_folder import recorded_path
from bench.results.wandb_sink import default_mode, init_run, logged_run_id

JOB_TYPE = "leaderboard"
ADDED_COLUMNS = ["config_key", "run_ids", "selected"]  # after the tuned leaderboard's columns
CONFIGURATION = ["task", "variant", "model", "hparams"]  # a configuration's row (its label is unique)


def w_and_b_name(text: str) -> str:
    """``text`` with each character W&B refuses in a run id or an artifact name as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def leaderboard_run_id(experiment: str) -> str:
    """The id of the experiment's sweep-end run, the same at every sweep end."""
    return f"leaderboard-{w_and_b_name(experiment)}"


def leaderboard_table(runs: pd.DataFrame, sweep_dir: Path, csv_dir: Path) -> pd.DataFrame:
    """Every configuration of ``runs`` (a sweep's rows of the runs CSV) in the tuned leaderboard's columns
    (``leaderboard.csv``'s, without the averages over tasks): first the rows the tuning selected, ranked,
    as the leaderboard has them, then the other candidates (their n and 95% CI, no rank). Added:
    ``config_key``, ``run_ids`` (the W&B ids of the configuration's completed runs, found in their run
    folders, which ``csv_dir`` resolves) and ``selected``."""
    configs = configurations(runs)
    board = mark_ties(tuned(configs), source=sweep_dir)
    board = board[board["n"].notna()] if "n" in board else board.iloc[:0]  # groups with a completed run
    chosen = pd.MultiIndex.from_frame(board[CONFIGURATION])
    rest = configs[~pd.MultiIndex.from_frame(configs[CONFIGURATION]).isin(chosen)]
    rest = rest.assign(n=rest["seeds"], ci95_x100=rest["scores_x100"].map(ci_half_width), rank=float("nan"))
    table = pd.concat([board.assign(selected=True), rest.assign(selected=False)], ignore_index=True)
    key_of = dict(zip(runs["run_dir"], runs["config_key"].fillna(""), strict=True))
    table["config_key"] = table["run_dirs"].map(lambda dirs: key_of.get(dirs[0], "") if dirs else "")
    table["run_ids"] = table["run_dirs"].map(lambda dirs: _run_ids(dirs, csv_dir))
    return tidy(table, [*TUNED_COLUMNS, *ADDED_COLUMNS])


def _run_ids(run_dirs: list[str], csv_dir: Path) -> str:
    found = (logged_run_id(recorded_path(d, csv_dir)) for d in run_dirs)
    return " ".join(i for i in found if i)


def log_leaderboard(
    runs: pd.DataFrame, sweep_dir: Path, csv_path: Path, experiment: str, wandb_cfg: Any
) -> None:
    """Log the sweep's ``leaderboard_table`` in the experiment's sweep-end run (see the module's doc)."""
    import wandb

    table = leaderboard_table(runs, sweep_dir, csv_path.parent)
    table = wandb.Table(dataframe=table.astype(object).where(table.notna(), None))
    group = sweep_dir.name
    run = init_run(
        wandb_cfg.get("mode") or default_mode(),
        wandb_cfg.get("init_timeout_s"),
        project=wandb_cfg.get("project"),
        entity=wandb_cfg.get("entity"),
        id=leaderboard_run_id(experiment),
        resume="allow",
        group=group,
        job_type=JOB_TYPE,
        name=f"{experiment}-leaderboard",
        config={"experiment": experiment},
        dir=str(sweep_dir),
        reinit="finish_previous",
    )
    run.log({"leaderboard": table})
    artifact = wandb.Artifact(
        f"{w_and_b_name(experiment)}-leaderboard", type=JOB_TYPE, metadata={"sweep": group}
    )
    artifact.add(table, "leaderboard")
    run.log_artifact(artifact)
    run.finish()
