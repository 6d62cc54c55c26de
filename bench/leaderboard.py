"""The leaderboard: the CSV of runs aggregated per configuration, rendered as Markdown, CSV or HTML.

One row per (task, variant, model, key hyperparameters): number of seeds, mean / std / median of the main
metric (x100, as papers print them), the task's other metrics, the cost columns and the rank within the
task. Score = main metric at the best epoch, as the papers report. Reruns of one config hash count once
(the latest completed row); runs that failed, diverged or ran out of memory are counted, never
averaged. A GLUE-style average per (variant, model) takes the best configuration of each task, over
the tasks present.

    python -m bench.leaderboard --task sst2 --format md --with-reference
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from bench.results_columns import LEADERBOARD_COLUMNS

FORMATS = ("md", "csv", "html")
GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
TASK_ORDER = (*GLUE_TASKS, "wnli")
AVG_TASK = "avg"
JSON_COLUMNS = ("metrics", "final_metrics", "hparams")
NUMERIC_COLUMNS = (
    "seed",
    "score",
    "best_epoch",
    "final_score",
    "lr",
    "trainable_params",
    "total_params",
    "pct_trainable",
    "peak_memory_mb",
    "train_time_s",
    "train_samples_per_s",
    "adapter_mb",
)
COST_COLUMNS = (
    "trainable_params",
    "pct_trainable",
    "peak_memory_mb",
    "train_time_s",
    "train_samples_per_s",
    "adapter_mb",
)
ALWAYS_SHOWN_HPARAMS = ("lr", "r", "rank", "init_r", "target_r")
NOT_METRICS = ("epoch", "step")
GROUP = ["task", "variant", "model", "hp_label"]
HOW_TO_PRODUCE = (
    "train first, e.g. `python -m bench.train variant=lora task=sst2` (or `make demo`), "
    "or point --csv / --results at an existing leaderboard"
)


def load_runs(csv_path: str | Path) -> pd.DataFrame:
    """The runs of a CSV leaderboard: JSON columns parsed, one row per config hash (see ``latest_runs``)."""
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"no leaderboard CSV at {path}; {HOW_TO_PRODUCE}")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in LEADERBOARD_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not a peft-bench leaderboard: missing columns {', '.join(missing)}")
    return prepare(df)


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Typed columns, parsed JSON, latest row per config hash, a ``hp_label`` per row. Idempotent."""
    df = df.copy()
    for col in NUMERIC_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in JSON_COLUMNS:
        df[col] = df[col].map(_parse_json)
    df = latest_runs(df)
    df["hp_label"] = hparam_labels(df)
    return df


def _parse_json(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        return {}
    return json.loads(value)


def latest_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per config hash: the latest completed row, else the latest attempt; unhashed rows all count."""
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
    return kept.drop(columns=["_done", "_time", "_row"]).reset_index(drop=True)


def key_hparams(row: pd.Series) -> dict[str, Any]:
    """The hyperparameters that define a configuration: the flattened hparams JSON without the seed."""
    hp = {k: v for k, v in _flatten(row["hparams"]).items() if _leaf(k) != "seed"}
    if not any(_leaf(k) == "lr" for k in hp) and pd.notna(row["lr"]):
        hp["lr"] = float(row["lr"])
    return hp


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def hparam_labels(df: pd.DataFrame) -> pd.Series:
    """A short label per row: lr and rank always, plus the hparams that differ between runs of its variant."""
    hps = [key_hparams(row) for _, row in df.iterrows()]
    varying: set[str] = set()
    for _, idx in df.groupby("variant", sort=False).groups.items():
        dicts = [hps[i] for i in df.index.get_indexer(idx) if hps[i]]
        keys = set().union(*dicts) if dicts else set()
        varying |= {k for k in keys if len({json.dumps(d.get(k), default=str) for d in dicts}) > 1}
    labels = [
        " ".join(
            f"{k}={_fmt_value(v)}"
            for k, v in sorted(hp.items())
            if _leaf(k) in ALWAYS_SHOWN_HPARAMS or k in varying
        )
        for hp in hps
    ]
    return pd.Series([label or "(no hparams)" for label in labels], index=df.index, dtype=object)


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def aggregate(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """The leaderboard table: one row per configuration, ranked per task, plus GLUE-style averages."""
    runs = prepare(df)
    if task is not None:
        tasks = sort_tasks(runs["task"].unique())
        if task not in tasks:
            raise ValueError(
                f"unknown task {task!r}; tasks in the leaderboard: {', '.join(tasks) or '(none)'}"
            )
        runs = runs[runs["task"] == task]
    table = pd.DataFrame([summarize(g) for _, g in runs.groupby(GROUP, sort=False)])
    if table.empty:
        raise ValueError("the leaderboard has no runs to aggregate")
    table["rank"] = table.groupby("task")["mean_x100"].rank(ascending=False, method="min")
    avg = glue_average(table) if table["task"].nunique() > 1 else pd.DataFrame()
    if len(avg):
        table = pd.concat([table, avg], ignore_index=True)
    return tidy(table)


def summarize(runs: pd.DataFrame) -> dict[str, Any]:
    """One configuration: counts, main-metric statistics (x100) and means of the other columns."""
    first = runs.iloc[0]
    done = runs[runs["status"] == "completed"]
    scores = done["score"] * 100
    row = {
        "task": first["task"],
        "variant": first["variant"],
        "model": first["model"],
        "hparams": first["hp_label"],
        "seeds": len(done),
        "failed": len(runs) - len(done),
        "main_metric": first["main_metric"],
        "mean_x100": scores.mean(),
        "std_x100": scores.std(ddof=1),
        "median_x100": scores.median(),
    }
    others = pd.DataFrame(list(done["metrics"]), index=done.index)
    for name in others.columns:
        if name != first["main_metric"] and name not in NOT_METRICS and "loss" not in name:
            row[f"{name}_x100"] = pd.to_numeric(others[name], errors="coerce").mean() * 100
    row.update({c: done[c].mean() for c in COST_COLUMNS})
    return row


def glue_average(table: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, model): the mean over tasks present of the best configuration's mean on each task."""
    rows = []
    for (variant, model), g in table.groupby(["variant", "model"], sort=False):
        best = g.dropna(subset=["mean_x100"]).sort_values("mean_x100").drop_duplicates("task", keep="last")
        if best.empty:
            continue
        rows.append(
            {
                "task": AVG_TASK,
                "variant": variant,
                "model": model,
                "hparams": "best per task",
                "mean_x100": best["mean_x100"].mean(),
                "tasks": ",".join(sort_tasks(best["task"])),
            }
        )
    avg = pd.DataFrame(rows, columns=["task", "variant", "model", "hparams", "mean_x100", "tasks"])
    avg["rank"] = avg.groupby("tasks")["mean_x100"].rank(ascending=False, method="min")
    return avg


def sort_tasks(tasks) -> list[str]:
    """GLUE order first (cola, sst2, ...), then other tasks alphabetically, the average last."""

    def key(t: str) -> tuple[int, str]:
        return (TASK_ORDER.index(t), t) if t in TASK_ORDER else (len(TASK_ORDER) + (t == AVG_TASK), t)

    return sorted(set(tasks), key=key)


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Column order, integer columns, rows by task then rank."""
    metric_cols = sorted(
        c for c in table.columns if c.endswith("_x100") and c not in ("mean_x100", "std_x100", "median_x100")
    )
    published = ["published"] if "published" in table.columns else []
    tail = [c for c in ("tasks", "published_source", "source") if c in table.columns]
    cols = [
        "rank",
        "task",
        "variant",
        "model",
        "hparams",
        "seeds",
        "failed",
        "main_metric",
        "mean_x100",
        "std_x100",
        "median_x100",
        *published,
        *metric_cols,
        *COST_COLUMNS,
        *tail,
    ]
    table = table.reindex(columns=cols)
    for col in ("rank", "seeds", "failed", "trainable_params"):
        table[col] = pd.to_numeric(table[col]).round().astype("Int64")
    order = {t: i for i, t in enumerate(sort_tasks(table["task"]))}
    table = table.assign(_t=table["task"].map(order)).sort_values(
        ["_t", "rank", "variant"], na_position="last", kind="stable"
    )
    return table.drop(columns="_t").reset_index(drop=True)


REFERENCE_COLUMNS = ("task", "variant", "model", "metric", "score", "params_m", "source")
REPO_REFERENCE = Path(__file__).resolve().parent / "reference"  # a link to results/reference


def reference_dir(results: str | Path) -> Path:
    """``<results>/reference`` when it holds published numbers, else the repository's."""
    mine = Path(results) / "reference"
    return mine if any(mine.glob("*.csv")) else REPO_REFERENCE


def load_reference(folder: str | Path) -> pd.DataFrame:
    """Published numbers: every ``*.csv`` of the folder (columns REFERENCE_COLUMNS; '#' starts a comment)."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no published numbers (*.csv) in {folder}")
    ref = pd.concat([pd.read_csv(f, comment="#") for f in files], ignore_index=True)
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise ValueError(f"reference tables in {folder} lack columns {', '.join(missing)}")
    return ref


def _reference_key(row: pd.Series) -> tuple[str, str, str] | None:
    """Our row's (task, variant, model); an average only matches when it covers the 8 GLUE tasks too."""
    if row["task"] == AVG_TASK and set(str(row.get("tasks", "")).split(",")) != set(GLUE_TASKS):
        return None
    return row["task"], row["variant"], row["model"]


def add_reference(table: pd.DataFrame, ref: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Published numbers beside ours (``published``); the rest as rows marked ``reference``."""
    if task is not None:
        ref = ref[ref["task"] == task]
    lookup = {(r.task, r.variant, r.model): r for r in ref.itertuples()}
    keys = [_reference_key(row) for _, row in table.iterrows()]
    matched = set(keys)
    ours = table.assign(
        source="ours",
        published=[lookup[k].score if k in lookup else None for k in keys],
        published_source=[lookup[k].source if k in lookup else None for k in keys],
    )
    extra = pd.DataFrame(
        [
            {
                "task": r.task,
                "variant": r.variant,
                "model": r.model,
                "hparams": "reference",
                "main_metric": r.metric,
                "trainable_params": r.params_m * 1e6,
                "published": r.score,
                "published_source": r.source,
                "source": "reference",
            }
            for k, r in lookup.items()
            if k not in matched
        ]
    )
    return tidy(pd.concat([ours, extra], ignore_index=True) if len(extra) else ours)


def notes(table: pd.DataFrame) -> list[str]:
    """What the columns mean, stated with the table."""
    lines = [
        "score = main metric at the best epoch, as the papers report (dev set; LoRA and VeRA print the "
        "median of 5 seeds, AdaLoRA the mean).",
        "mean, std (sample, over seeds), median and every *_x100 column: metric ×100.",
        "One run per config hash (the latest completed rerun counts); `failed` counts failed, diverged and "
        "oom runs, which are not averaged. rank: 1 = best mean within the task.",
    ]
    if (table["task"] == AVG_TASK).any():
        lines.append(
            "avg: GLUE-style average per (variant, model) of the best configuration's mean on each "
            "task, over the tasks present only (listed in `tasks`); ranked among averages over the "
            "same tasks."
        )
    if "published" in table.columns:
        lines.append(
            "published: the papers' numbers (percent; results/reference/README.md cites them); "
            "source = reference marks published rows with no run of ours."
        )
    return lines


FORMAT_BY_COLUMN = {
    "trainable_params": "{:,.0f}",
    "pct_trainable": "{:.3g}",
    "peak_memory_mb": "{:,.0f}",
    "train_time_s": "{:,.1f}",
    "train_samples_per_s": "{:,.1f}",
    "adapter_mb": "{:.3g}",
    "published": "{:.2f}",
}


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as display strings: 2 decimals for metrics, '-' where there is no value."""

    def fmt(col: str, v: Any) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
            return "-"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return FORMAT_BY_COLUMN.get(col, "{:.2f}" if isinstance(v, float) else "{}").format(v)
        return str(v)

    return pd.DataFrame({c: [fmt(c, v) for v in table[c].astype(object)] for c in table.columns})


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as Markdown or an HTML fragment with its notes, or as CSV (rounded to 4 decimals)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return table.round(4).to_csv(index=False)
    if fmt == "html":
        items = "".join(f"<li>{html.escape(line)}</li>" for line in notes(table))
        page = f'<ul class="notes">{items}</ul>\n' + cells(table).to_html(index=False, classes="leaderboard")
        return page.encode("ascii", "xmlcharrefreplace").decode()  # no charset needed: a bare fragment
    text = cells(table)
    head = "| " + " | ".join(text.columns) + " |\n|" + "|".join("---" for _ in text.columns) + "|\n"
    body = "".join("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |\n" for row in text.values)
    return "".join(f"> {line}\n" for line in notes(table)) + "\n" + head + body


def write_sweep_leaderboard(sweep_dir: str | Path, csv_path: str | Path) -> Path:
    """Write the sweep's runs aggregated to ``<sweep_dir>/leaderboard.md`` and ``.csv``; returns the md."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(csv_path)
    resumed = {json.loads(p.read_text())["config_hash"] for p in sweep_dir.glob("*/resumed.json")}
    mine = runs[runs["sweep"].map(lambda s: _same_path(s, sweep_dir)) | runs["config_hash"].isin(resumed)]
    if mine.empty:
        sweeps = sorted({s for s in runs["sweep"] if s})
        raise ValueError(
            f"no runs of sweep {sweep_dir} in {csv_path}; sweeps there: {', '.join(sweeps) or '(none)'}"
        )
    table = aggregate(mine)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "leaderboard.csv").write_text(render(table, "csv"))
    md = sweep_dir / "leaderboard.md"
    md.write_text(f"# Leaderboard of sweep {sweep_dir.name}\n\n" + render(table, "md"))
    return md


def _same_path(value: str, path: Path) -> bool:
    return bool(value) and (value == str(path) or Path(value).resolve() == path.resolve())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peft-bench-leaderboard", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--csv", help="leaderboard CSV (default: <results>/leaderboard.csv)")
    p.add_argument("--task", help="only this task")
    p.add_argument("--format", default="md", choices=FORMATS, help="output format (default: md)")
    p.add_argument("--with-reference", action="store_true", help="add the published numbers")
    p.add_argument("--out", help="write to this file instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    csv_path = Path(args.csv) if args.csv else Path(args.results) / "leaderboard.csv"
    try:
        table = aggregate(load_runs(csv_path), task=args.task)
        if args.with_reference:
            table = add_reference(table, load_reference(reference_dir(args.results)), args.task)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    text = render(table, args.format)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
