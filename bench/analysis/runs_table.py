"""The runs a leaderboard reads, and the label of each run's configuration.

The runs come from a results folder's runs CSV (``<results>/runs.csv``), a runs CSV given as a file, or
a sweep folder's run folders at any depth (their metrics.json; ``resumed.json`` points at a run completed
elsewhere). ``prepare`` types the columns, names each run's task with the data it read when that is
the user's files (``task_label``: runs on different data are different tasks, never tuned over), keeps
one row per config hash (the latest completed rerun) and gives each run its configuration's ``row_key``
(its ``config_key``; a run recorded before it: its hyperparameter label) and ``hp_label``: lr and the
variant's key options, plus every setting (the resolved config as dotted keys) in which the
configurations of its (task, variant, model) differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config.hashing import flatten
from bench.inputs.fingerprint import SETTING as DATA_FINGERPRINT
from bench.log import log
from bench.plural import plural
from bench.results.columns import ADDED_COLUMNS, MEMORY_PARTS, RUNS_COLUMNS
from bench.results.run_folder import RunFolder, recorded_path
from bench.results.runs_csv import LEGACY_CSV, RUNS_CSV, header, is_runs_table, locate, read_rows, run_row

JSON_COLUMNS = ("metrics", "final_metrics", "hparams", "settings", "memory_breakdown_mb")
MEMORY_COLUMNS = tuple(f"mem_{part}_mb" for part in MEMORY_PARTS)  # memory_breakdown_mb, a column a part
COST_COLUMNS = (
    "trainable_params",
    "pct_trainable",
    "peak_memory_mb",
    "model_mb",
    *MEMORY_COLUMNS,
    "train_time_s",
    "train_samples_per_s",
    "adapter_mb",
)
NUMERIC_COLUMNS = (
    "seed", "score", "dev_score", "chance_score", "best_epoch", "final_score", "lr", "total_params",
    *COST_COLUMNS,
)  # fmt: skip
NAMED_BY = ("status", "variant", "task", "model")  # a row without one of these cannot be placed
LABELLED = ["task", "variant", "model", "hp_label"]  # a configuration's runs by their label (unique)
COMPARED = ["task", "variant", "model"]  # the rows whose differing settings the labels show
SHORT = 8  # hex digits of a data fingerprint in a task label
HOW_TO_PRODUCE = (
    "train first, e.g. `python -m bench train variant=lora task=sst2` (or `make demo`), "
    "or point --results at a results or sweep folder, or --csv at a runs CSV"
)


def load(source: str | Path) -> pd.DataFrame:
    """The runs of a runs CSV file, a results folder (its runs.csv) or a sweep folder (its run folders)."""
    source = Path(source)
    if source.is_file() or source.suffix == ".csv":
        return load_runs(source)
    has_csv = (source / RUNS_CSV).is_file() or is_runs_table(header(source / LEGACY_CSV))
    if has_csv or not is_sweep_folder(source):
        return load_runs(source / RUNS_CSV)  # a legacy leaderboard.csv is migrated there
    return load_sweep(source)


def load_runs(csv_path: str | Path) -> pd.DataFrame:
    """The runs of a runs CSV: its well-formed rows (``read_rows``), JSON columns parsed, one row per
    config hash (see ``latest_runs``)."""
    path = locate(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"no runs CSV at {path}; {HOW_TO_PRODUCE}")
    read = read_rows(path)  # each malformed line skipped and named
    df = pd.DataFrame(read.rows, columns=read.columns or [], dtype=str)
    missing = [c for c in RUNS_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not a peft-bench runs CSV: missing columns {', '.join(missing)}")
    return prepare(df)


def run_folders(folder: Path) -> list[RunFolder]:
    """The run folders at any depth under ``folder`` (those with a metrics.json or a resumed.json)."""
    return [run for run in RunFolder.under(folder, resumed=True) if run.path != folder]


def is_sweep_folder(folder: Path) -> bool:
    """A folder with run folders in it, at any depth (experiment=compare nests them by task)."""
    return bool(run_folders(folder))


def load_sweep(sweep_dir: str | Path) -> pd.DataFrame:
    """The runs of a sweep folder: each run folder's metrics.json, or for a run skipped by resume, the
    metrics.json of the run its ``resumed.json`` points at; flattened by ``run_row`` like the CSV, with
    ``run_dir`` the folder read."""
    sweep_dir = Path(sweep_dir)
    rows = []
    for run in run_folders(sweep_dir):
        if not run.metrics_path.is_file() and run.resumed_path.is_file():
            run = RunFolder(recorded_path(run.resumed()["completed_in"], sweep_dir))
        if (
            run.metrics_path.is_file()
        ):  # where it is now, not where it ran: a moved folder reads its own files
            rows.append(run_row(run.metrics()) | {"run_dir": str(run.path)})
    if not rows:
        raise FileNotFoundError(f"no run folders with metrics.json in {sweep_dir}; {HOW_TO_PRODUCE}")
    return prepare(pd.DataFrame(rows, columns=RUNS_COLUMNS).astype(str))


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Typed columns, parsed JSON, latest row per config hash, a ``row_key`` (the configuration: its
    ``config_key``, else for an older run its label) and a ``hp_label`` per row. Idempotent."""
    df = df.reindex(columns=[*df.columns, *(c for c in ADDED_COLUMNS if c not in df.columns)], fill_value="")
    df = drop_malformed(df)
    for col in JSON_COLUMNS:
        df[col] = df[col].map(_parse_json)
    for part, col in zip(MEMORY_PARTS, MEMORY_COLUMNS, strict=True):
        df[col] = df["memory_breakdown_mb"].map(
            lambda parts, part=part: parts.get(part) if isinstance(parts, dict) else None
        )
    for col in NUMERIC_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["label_hparams"] = df["label_hparams"].map(lambda v: list(_parse_json(v, [])))
    df["task"] = [task_label(t, s) for t, s in zip(df["task"], df["settings"], strict=True)]
    df["config_key"] = df["config_key"].fillna("").astype(str)
    df = latest_runs(df)
    keyed = df["config_key"] != ""
    legacy = hparam_labels(df[~keyed]).reindex(df.index, fill_value="")  # runs recorded before config_key
    df["row_key"] = ("key:" + df["config_key"]).where(keyed, "label:" + legacy)
    df["hp_label"] = row_labels(df, legacy)
    return df


def task_label(task: str, settings: dict[str, Any]) -> str:
    """A run's task as the leaderboard names it: with the user's data files (``task.data_dir``), the task
    and the data, ``<task>@<folder>:<the fingerprint's first SHORT hex digits>`` (``<task>@<folder>`` for
    a run recorded without a fingerprint); packaged data (the Hub's, the vader corpora, the packaged
    sets) adds nothing. ``task`` may be a label already: task names hold no ``@``."""
    folder = settings.get("task.data_dir")
    if not folder or settings.get("task.source") in ("vader", "packaged"):
        return task
    data = Path(str(folder)).name or str(folder)
    fingerprint = settings.get(f"task.{DATA_FINGERPRINT}")
    return f"{task.partition('@')[0]}@{data}" + (f":{fingerprint[:SHORT]}" if fingerprint else "")


def malformed(row: pd.Series) -> str | None:
    """Why a run's row cannot be read (a blank name, a JSON cell that does not parse), or None."""
    blank = [c for c in NAMED_BY if not str(row[c]).strip()]
    if blank:
        return f"no {', '.join(blank)}"
    for col in (*JSON_COLUMNS, "label_hparams"):
        try:
            _parse_json(row[col])
        except (TypeError, ValueError) as e:
            return f"column {col}: {e}"
    return None


def drop_malformed(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that can be read; each skipped row is named (its run folder, else its position) in a
    notice, so that one damaged row never stops a leaderboard or a report."""
    reasons = {i: why for i, row in df.iterrows() if (why := malformed(row)) is not None}
    for i, why in reasons.items():
        where = str(df.at[i, "run_dir"]).strip() or f"row {i + 1}"
        log.warning("skipped a malformed run row (%s): %s", where, why)
    return df.drop(index=list(reasons)).reset_index(drop=True) if reasons else df


def _parse_json(value: Any, empty: Any = None) -> Any:
    """A JSON cell parsed (an already parsed value as is); ``empty`` (default ``{}``) for a blank cell."""
    if isinstance(value, (dict, list)):
        return value
    if not isinstance(value, str) or not value.strip():
        return {} if empty is None else empty
    return json.loads(value)


def latest_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per config hash: the latest completed row, else the latest attempt; unhashed rows all count.
    The failed attempts that a completed row supersedes are hidden, and counted on stderr."""
    order = df.assign(
        _done=df["status"] == "completed",
        _time=pd.to_datetime(df["timestamp"], errors="coerce", utc=True),
        _row=range(len(df)),
    )
    hashed = order["config_hash"].fillna("").astype(str) != ""
    latest = (
        order[hashed]
        .sort_values(["_done", "_time", "_row"], na_position="first", kind="stable")
        .drop_duplicates("config_hash", keep="last")
    )
    kept = pd.concat([latest, order[~hashed]]).sort_values("_row")
    completed = set(latest.loc[latest["_done"], "config_hash"])
    dropped = order[hashed & ~order["_row"].isin(latest["_row"])]
    superseded = int((~dropped["_done"] & dropped["config_hash"].isin(completed)).sum())
    if superseded:
        log.warning(
            "hid %s that a completed rerun of the same config supersedes "
            "(peft-bench failed_runs lists failed runs, --prune deletes them)",
            plural(superseded, "failed run"),
        )
    return kept.drop(columns=["_done", "_time", "_row"]).reset_index(drop=True)


def row_settings(row: pd.Series) -> dict[str, Any]:
    """What a run's configuration is compared by: its recorded ``settings``, else (a run recorded before
    them) its flattened hparams without the seed."""
    return dict(row["settings"]) if row["settings"] else row_hparams(row)


def differing(views: list[dict[str, Any]]) -> list[str]:
    """The keys whose values differ between the dicts (each compared among the dicts that have it)."""
    keys = sorted(set().union(*views)) if views else []
    return [
        k for k in keys if len({json.dumps(v[k], sort_keys=True, default=str) for v in views if k in v}) > 1
    ]


def first_runs(df: pd.DataFrame, positions) -> dict[str, int]:
    """row_key -> the position of its first run, in order of appearance."""
    first: dict[str, int] = {}
    for i in positions:
        first.setdefault(df["row_key"].iloc[i], i)
    return first


def row_labels(df: pd.DataFrame, legacy: pd.Series) -> pd.Series:
    """A label per run's row: lr and its variant's key hparams (``label_hparams``), plus every setting
    that differs between the rows of its (task, variant, model). A run recorded before ``settings``
    keeps its ``hparam_labels`` label. Labels are unique per row within a (task, variant, model)."""
    labels = legacy.copy()
    for _, idx in df.groupby(COMPARED, sort=False).groups.items():
        positions = df.index.get_indexer(idx)
        first = first_runs(df, positions)
        views = {key: row_settings(df.iloc[i]) for key, i in first.items()}
        varying = differing(list(views.values()))
        by_key: dict[str, str] = {}
        for key, i in first.items():
            run = df.iloc[i]
            if not run["config_key"]:
                by_key[key] = legacy.iloc[i]
                continue
            shown = set(run["label_hparams"])
            parts = [f"{k}={fmt_value(v)}" for k, v in sorted(row_hparams(run).items()) if _leaf(k) in shown]
            parts += [f"{k}={fmt_value(views[key].get(k))}" for k in varying if not _named_by(k, shown)]
            by_key[key] = " ".join(parts) or "(no hparams)"
        seen: dict[str, int] = {}
        for label in by_key.values():
            seen[label] = seen.get(label, 0) + 1
        for key, label in list(by_key.items()):
            if seen[label] > 1 and key.startswith("key:"):
                by_key[key] = f"{label} [config {key[4:]}]"
        for i in positions:
            labels.iloc[i] = by_key[df["row_key"].iloc[i]]
    return labels


def _named_by(setting: str, shown: set[str]) -> bool:
    """Whether a differing setting is already in the label: ``variant.r`` or ``train.lr`` by ``r``, ``lr``;
    ``train.lr_scale`` by ``lr`` (the lr trained with)."""
    if setting == "train.lr_scale":
        return "lr" in shown
    return setting.split(".")[0] in ("variant", "train") and _leaf(setting) in shown


def row_hparams(row: pd.Series) -> dict[str, Any]:
    """The hyperparameters that define a configuration: the flattened hparams JSON without the seed."""
    hp = {k: v for k, v in flatten(row["hparams"]).items() if _leaf(k) != "seed"}
    if not any(_leaf(k) == "lr" for k in hp) and pd.notna(row["lr"]):
        hp["lr"] = float(row["lr"])
    return hp


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def hparam_labels(df: pd.DataFrame) -> pd.Series:
    """A short label per row: its variant's ``label_hparams`` (lr and the key options, as the runs
    recorded them), plus the hparams that differ between runs of a variant."""
    hps = [row_hparams(row) for _, row in df.iterrows()]
    varying: set[str] = set()
    shown: dict[str, set[str]] = {}
    for variant, idx in df.groupby("variant", sort=False).groups.items():
        positions = df.index.get_indexer(idx)
        shown[variant] = set().union(*(df["label_hparams"].iloc[i] for i in positions))
        dicts = [hps[i] for i in positions if hps[i]]
        keys = set().union(*dicts) if dicts else set()
        varying |= {k for k in keys if len({json.dumps(d.get(k), default=str) for d in dicts}) > 1}
    labels = [
        " ".join(
            f"{k}={fmt_value(v)}" for k, v in sorted(hp.items()) if _leaf(k) in shown[variant] or k in varying
        )
        for hp, variant in zip(hps, df["variant"], strict=True)
    ]
    return pd.Series([label or "(no hparams)" for label in labels], index=df.index, dtype=object)


def fmt_value(v: Any) -> str:
    """A setting's value in a label: a float exact (``exact``), a list comma-joined."""
    if isinstance(v, float):
        return exact(v)
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def exact(v: float) -> str:
    """A float in its shortest form that reads back the same, without a trailing '.0': 8e-05, 16, 0.0512."""
    return repr(float(v)).removesuffix(".0")
