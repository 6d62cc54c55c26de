"""Every check of a run's config, in one place, run once before any data or model loads.

``check(spec, world)`` checks that every key of the config is one its schemas declare, builds the variant
(its options are checked by its schema) and checks, in order: ``require_clean_code`` (the code has no
uncommitted change, when asked: ``bench.run.provenance``), ``select_on``, the seeds, the ``train.*``
settings and the lr, the task config, the task's name (its config file's), the model config
(``max_length``, with the tokens the variant adds, against the model's own limit), the variant's
targets, that the variant fits the model's layers (on its weightless skeleton; LoRA's ``r`` and
``alpha`` are checked there) and the device. It
returns what the later phases use: the variant, its targets and the device. Each error names the bad
value and what is valid. The runner calls it before the run starts, so an error it raises leaves no run
behind.

``check_outputs`` runs first, on rank 0, before resume looks anything up or writes: the run folder holds
no run of another configuration (a run never writes over another), and every output (the run folder,
the runs CSV, the results index, with their locks) can be written, with room to spare.

One check needs the data: ``check_world`` (every process gets examples of every batch), which the build
phase calls once the task's splits are loaded, before anything is tokenized.

Hydra checks the config's keys and types when it composes it (``bench.config.store``), except a key added
with ``+``, which ``check_keys`` refuses; these check values.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

import variants
from bench.config.schemas import MISSING, ModelConfig, TaskConfig, TrainConfig
from bench.config.store import check_keys
from bench.inputs.metrics import DEV, TEST, metric_names
from bench.inputs.models import position_limit, resolve_targets, skeleton
from bench.inputs.tasks import SOURCES
from bench.inputs.vader import MAX_TEST_FRACTION
from bench.results import index
from bench.results.run_folder import CONFIG, RunFolder
from bench.results.runs_csv import lock_path
from bench.run import compiled, distributed, provenance
from bench.run.device import pick_device
from bench.run.progress import PROGRESS
from bench.run.spec import RunSpec
from variants.base import Targets, Variant

SELECT_ON = (DEV, TEST)
MAX_SEED = 2**32 - 1  # numpy's global seed is 32 bits
MIN_FREE_MB = 200  # a run folder: metrics, history, predictions and an adapter (full: the whole model)


@dataclass(frozen=True)
class Checked:
    """What the checks built and the later phases use."""

    variant: Variant  # built from the config, not yet applied
    targets: Targets  # the layers it adapts
    device: torch.device  # as chosen, before the process group is joined


def check(spec: RunSpec, w: distributed.World) -> Checked:
    """Run every check of ``spec`` (see the module docstring); raise on the first that fails."""
    check_keys(spec.config)
    variant = variants.build(spec.variant_name, spec.variant)
    check_clean_code(spec.require_clean_code, provenance.code_state())
    check_select_on(spec.select_on)
    check_seeds({"seed": spec.seed, "task.split_seed": spec.task.split_seed})
    check_train_config(spec.train, spec.lr)
    check_task(spec.task)
    check_task_name(spec.task.name, spec.task_choice)
    check_model(spec.model, variant.added_tokens())
    targets = resolve_targets(spec.model, variant.config.targets)
    check_fits(variant, spec.model, spec.task.num_labels, targets)
    return Checked(variant=variant, targets=targets, device=pick_device(spec.device))


def check_clean_code(required: bool, state: provenance.CodeState) -> None:
    """With ``required`` (``require_clean_code``), refuse code with uncommitted changes."""
    if required and state.dirty:
        folders = ", ".join(f"{c}/" for c in provenance.CODE)
        raise ValueError(
            f"code_dirty=True: {folders} hold uncommitted changes (git status) and require_clean_code=true; "
            "commit them, or set require_clean_code=false"
        )


def check_select_on(value: str) -> None:
    if value not in SELECT_ON:
        raise ValueError(
            f"select_on={value!r} is not valid: choose {DEV} (select on the dev set, report the test "
            "splits) or test (the papers' convention: best epoch on the reported split)"
        )


def check_train_config(cfg: TrainConfig, lr: float | None = None) -> None:
    """Raise ValueError on a setting no run can use, naming it, its value and what is valid."""
    rules = [
        ("lr_scale", math.isfinite(cfg.lr_scale) and cfg.lr_scale > 0, "a finite number > 0"),
        ("epochs", cfg.epochs >= 1, "an integer >= 1 (max_steps can stop earlier)"),
        ("max_steps", cfg.max_steps is None or cfg.max_steps >= 1, "null or an integer >= 1"),
        ("batch_size", cfg.batch_size >= 1, "an integer >= 1"),
        ("eval_batch_size", cfg.eval_batch_size >= 1, "an integer >= 1"),
        ("grad_accum", cfg.grad_accum >= 1, "an integer >= 1"),
        ("max_grad_norm", cfg.max_grad_norm >= 0, ">= 0 (0: no clipping)"),
        ("weight_decay", cfg.weight_decay >= 0, ">= 0"),
        ("warmup_ratio", 0 <= cfg.warmup_ratio < 1, "in [0, 1)"),
        ("eval_every_steps", cfg.eval_every_steps >= 0, ">= 0 (0: at the end of each epoch)"),
        ("num_workers", cfg.num_workers >= 0, ">= 0"),
        ("progress", cfg.progress in PROGRESS, f"one of {', '.join(PROGRESS)}"),
        ("compile", cfg.compile in compiled.COMPILE_MODES, f"one of {', '.join(compiled.COMPILE_MODES)}"),
        ("checkpoint_every_steps", cfg.checkpoint_every_steps >= 0, "an integer >= 0 (0: not by steps)"),
        (
            "checkpoint_every_minutes",
            math.isfinite(cfg.checkpoint_every_minutes) and cfg.checkpoint_every_minutes >= 0,
            "a finite number of minutes >= 0 (0: not by time)",
        ),
    ]
    if lr is not None:
        rules.append(("lr", math.isfinite(lr) and lr > 0, "a finite number > 0"))
    for name, ok, valid in rules:
        if not ok:
            value = lr if name == "lr" else getattr(cfg, name)
            raise ValueError(f"train.{name}={value!r} is not valid: it must be {valid}")


def check_task(cfg: TaskConfig) -> None:
    """Raise on a task config that cannot work, naming the bad value and the valid choices (where its
    data comes from is checked where it loads)."""
    for key in ("name", "text_fields", "num_labels", "metrics", "main_metric", "eval_splits"):
        value = getattr(cfg, key)
        if value is None or value == MISSING or (hasattr(value, "__len__") and len(value) == 0):
            raise ValueError(f"task {cfg.name!r} has no {key}")
    if cfg.source not in SOURCES:
        raise ValueError(f"unknown task source {cfg.source!r}; choose one of {', '.join(SOURCES)}")
    if cfg.num_labels < 1:
        raise ValueError(f"task {cfg.name!r}: num_labels must be >= 1 (1 = regression), got {cfg.num_labels}")
    if cfg.label_names and cfg.num_labels > 1 and len(cfg.label_names) != cfg.num_labels:
        raise ValueError(f"task {cfg.name!r}: {len(cfg.label_names)} label_names for {cfg.num_labels} labels")
    names = metric_names(cfg)
    if cfg.main_metric not in names:
        raise ValueError(
            f"task {cfg.name!r}: main_metric {cfg.main_metric!r} is not one of {', '.join(names)}"
        )
    if not (0 < cfg.dev_size < 1 or (cfg.dev_size >= 1 and float(cfg.dev_size).is_integer())):
        raise ValueError(
            f"task.dev_size={cfg.dev_size} is not valid: it must be a fraction of train in (0, 1) or a "
            "whole number of examples >= 1"
        )
    check_label_range(cfg)
    if cfg.dev_split == DEV or cfg.dev_split in cfg.eval_splits:
        raise ValueError(
            f"task {cfg.name!r}: dev_split {cfg.dev_split!r} must be a source split other than the test "
            f"splits ({', '.join(cfg.eval_splits)})"
        )
    if DEV in cfg.eval_splits:
        raise ValueError(f"task {cfg.name!r}: {DEV!r} names the dev set; a test split cannot be called so")
    for key in ("max_train_samples", "max_eval_samples", "max_test_samples"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 1:
            raise ValueError(f"task.{key} must be >= 1 or null, got {getattr(cfg, key)}")
    check_test_fraction(cfg)


def check_task_name(name: str, choice: str | None) -> None:
    """Raise unless ``task.name`` is the name of the task config file it was composed from
    (``task=<choice>``); nothing to check when the choice is unknown (a config composed without Hydra)."""
    if choice is not None and name != choice:
        raise ValueError(
            f"task.name={name!r} does not match task={choice}: task names come from conf/task/<name>.yaml; "
            f"to add a task {name!r}, copy conf/task/{choice}.yaml to conf/task/{name}.yaml, set "
            f"name: {name} and its data there, and choose it with task={name}"
        )


def check_test_fraction(cfg: TaskConfig) -> None:
    """``task.test_fraction``: unset, or on a vader task a fraction in (0, 0.9) (validation takes a tenth
    of the corpus, and train keeps the rest)."""
    fraction = cfg.test_fraction
    if fraction is None:
        return
    if cfg.source != "vader":
        raise ValueError(
            f"task.test_fraction={fraction!r} is not valid for task {cfg.name!r}: it sizes the test part of "
            f"a vader corpus, and this task's source is {cfg.source}; leave it unset (null)"
        )
    if not 0 < fraction < MAX_TEST_FRACTION:
        raise ValueError(
            f"task.test_fraction={fraction!r} is not valid: it must be a fraction in "
            f"(0, {MAX_TEST_FRACTION}), or null (a tenth of the corpus)"
        )


def check_label_range(cfg: TaskConfig) -> None:
    """``task.label_range``: unset, or [low, high] with low < high, finite, on a regression task."""
    if cfg.label_range is None:
        return
    bounds = list(cfg.label_range)
    if cfg.num_labels != 1:
        raise ValueError(
            f"task.label_range={bounds} is not valid for task {cfg.name!r}: it bounds regression targets "
            f"(num_labels 1), and this task has {cfg.num_labels} classes; leave it unset (null)"
        )
    if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or not bounds[0] < bounds[1]:
        raise ValueError(
            f"task.label_range={bounds} is not valid: it must be [low, high], two finite numbers with "
            "low < high, or null"
        )


def check_seeds(seeds: dict[str, object]) -> None:
    """Each seed (key -> value) an integer in [0, MAX_SEED]: what numpy, torch and Python's random take."""
    for key, value in seeds.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise ValueError(
                f"{key}={value!r} is not valid: it must be an integer in [0, {MAX_SEED}] (2**32 - 1)"
            )


def check_model(cfg: ModelConfig, added_tokens: int = 0) -> None:
    """Raise on a model setting no run can use (where its weights come from is checked where they load).
    ``max_length`` must fit the model's position embeddings (``position_limit``, from its config), with
    the ``added_tokens`` the variant puts in every sequence (``Variant.added_tokens``: prompt tuning's
    virtual tokens) beside it."""
    if cfg.dropout is not None and not 0 <= cfg.dropout < 1:
        raise ValueError(f"model.dropout={cfg.dropout!r} is not valid: it must be in [0, 1), or null")
    if cfg.max_length < 1:
        raise ValueError(f"model.max_length={cfg.max_length} is not valid: it must be an integer >= 1")
    limit = position_limit(cfg)
    if limit is None:
        return
    if cfg.max_length > limit:
        raise ValueError(
            f"model.max_length={cfg.max_length} is not valid: it must be in 1..{limit}, the most tokens "
            f"model {cfg.name!r} takes (its config's max_position_embeddings)"
        )
    if cfg.max_length + added_tokens > limit:
        fix = (
            ", whose positions are sized to model.max_length: train the variant on a pretrained model"
            if cfg.source == "tiny"
            else f": use a model.max_length of at most {limit - added_tokens}, or fewer virtual tokens"
        )
        raise ValueError(
            f"model.max_length={cfg.max_length} and the variant's {added_tokens} virtual tokens need "
            f"{cfg.max_length + added_tokens} positions, more than the {limit} of model {cfg.name!r}{fix}"
        )


def check_outputs(spec: RunSpec) -> None:
    """Raise unless the run may write its outputs: ``check_folder``, then ``check_disk`` of the run
    folder and ``shared_outputs``."""
    check_folder(spec)
    check_disk(spec.folder.path, shared_outputs(spec))


def check_disk(folder: Path, outputs: dict[str, Path] | None = None) -> None:
    """Raise OSError when the run folder (or, not made yet, the folder it goes in) cannot be written or
    has under MIN_FREE_MB free, or when one of ``outputs`` (what it is -> a file the run appends to,
    ``shared_outputs``) cannot be written."""
    where = _existing(folder)
    try:
        _probe(where)
    except OSError as e:
        raise OSError(e.errno, f"cannot write to the run folder {folder}: {e.strerror}") from e
    for what, path in (outputs or {}).items():
        try:
            if path.exists():
                with path.open("ab"):  # as an append opens it; nothing is written
                    pass
            else:
                _probe(_existing(path.parent))
        except OSError as e:
            raise OSError(
                e.errno, f"cannot write {what} {path}: {e.strerror} (a run writes it when it ends)"
            ) from e
    free_mb = shutil.disk_usage(where).free / 2**20
    if free_mb < MIN_FREE_MB:
        raise OSError(
            errno.ENOSPC,
            f"only {free_mb:.0f} MB free for the run folder {folder}; a run needs {MIN_FREE_MB} MB: free "
            "space, or put the results elsewhere (PEFT_BENCH_RESULTS or paths.results)",
        )


def shared_outputs(spec: RunSpec) -> dict[str, Path]:
    """What a run writes besides its folder, by what it is: the runs CSV and the results index, each
    with its lock."""
    runs_csv = Path(spec.config["paths"]["runs_csv"])
    return {
        "the runs CSV": runs_csv,
        "the runs CSV's lock": lock_path(runs_csv),
        "the results index": index.index_path(spec.results),
        "the results index's lock": index.lock_path(spec.results),
    }


def _existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> None:
    """Create and delete a file in ``folder`` (named by the process: parallel runs share folders)."""
    probe = folder / f".write-test-{os.getpid()}"
    probe.write_text("ok")
    probe.unlink()


def check_folder(spec: RunSpec) -> None:
    """Raise FileExistsError when the run folder holds a run of another configuration (``held_run``): a
    run never writes over another. A rerun of its own configuration (after a failure, with force=true,
    or in experiment=compare's fixed folders) may replace it."""
    held = held_run(spec.folder)
    if held is not None and held[0] != spec.config_hash:
        config_hash, what = held
        raise FileExistsError(
            f"the run folder {spec.folder.path} holds another run ({what}, config {config_hash}); this run "
            f"(config {spec.config_hash}) never writes over it: choose another hydra.run.dir (or "
            "hydra.sweep.dir), or move that folder away"
        )


def held_run(folder: RunFolder) -> tuple[str | None, str] | None:
    """(config hash, what it is) of the run ``folder`` holds, from its metrics.json, else its config.yaml
    (a run that never ended), else its resumed.json; None when it holds none."""
    try:
        m = folder.metrics()
        return m.get("config_hash"), f"{m.get('run_name')}, {m.get('status')}"
    except (OSError, ValueError, AttributeError):  # none, or one cut short: the files below tell
        pass
    if folder.config_path.is_file():
        try:
            other = RunSpec.of(folder.config(), folder.path)
        except Exception:  # noqa: BLE001 - a config this version cannot read is not this run's
            return None, f"a {CONFIG} this version cannot read"
        return other.config_hash, f"{other.run_name}, started and never ended"
    try:
        return folder.resumed()["config_hash"], "skipped by resume"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_fits(variant: Variant, model_cfg: ModelConfig, num_labels: int, targets: Targets) -> None:
    """Adapt the model's weightless skeleton (bench.inputs.models.skeleton) with a copy of ``variant``, so
    that a setting that does not fit its layers (a rank above a layer's size) fails in a second, before
    the weights load. Math the meta device cannot do (QLoRA's quantization, DoRA's norms) ends this dry
    run early, after the size checks that precede it; the real adaptation checks everything again."""
    try:
        copy.deepcopy(variant).apply(skeleton(model_cfg, num_labels), targets)
    except (RuntimeError, NotImplementedError):
        return


def check_world(w: distributed.World, n_train: int, held_out: dict[str, int], batch_size: int) -> None:
    """Raise ValueError unless every process gets examples of every batch and of every held-out split."""
    if w.size == 1:
        return
    if n_train < w.size or batch_size < w.size:
        raise ValueError(
            f"{w.size} processes for {n_train:,} training examples in batches of train.batch_size="
            f"{batch_size}: every process needs an example of each batch; use at most "
            f"{min(n_train, batch_size)} processes"
        )
    last = n_train % batch_size
    if 0 < last < w.size:
        raise ValueError(
            f"the last batch of each epoch holds {last} of the {n_train:,} training examples, fewer than "
            f"the {w.size} processes: choose a train.batch_size that leaves 0 or at least {w.size} over"
        )
    small = {split: n for split, n in held_out.items() if n < w.size}
    if small:
        split, n = next(iter(small.items()))
        raise ValueError(f"the {split} split has {n} examples for {w.size} processes; use at most {n}")
