"""The phases of one run, in the order ``bench.run.runner`` calls them. Each takes the spec
(``bench.run.spec.RunSpec``) and what earlier phases returned, and returns what later ones need.

    (check_outputs)  bench.run.checks.check_outputs: no other run's folder, every output writable
    look_up / skip   resume: a completed run of the config hash, recorded as resumed here
    (checks)         bench.run.checks.check: every check, before anything is written or loads
    start            from scratch or a checkpoint; config.yaml, the index line; metrics.json's first keys
    load_data        the task's splits (dev and test) and the chance scores
    load_model       tokenizer, base model, the variant applied, on its device
    make_loaders     the splits tokenized and batched
    fit              train (bench.run.loop.Fit), evaluating dev at each evaluation and the test splits once
                     at the end, on the selected state and the final one (``tests_at_end``)
    results          the selected (best) and final evaluations, throughput, memory, sizes
    record_outputs   history.jsonl, predictions.csv, test_predictions.csv.gz, adapter/ (with the base
                     weights' fingerprint)
    record           metrics.json, the results index, the sinks (the runs CSV, W&B)
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.config import hashing
from bench.inputs import batching
from bench.inputs.metrics import DEV, chance, dev_metric
from bench.inputs.models import enable_gradient_checkpointing, model_name_or_path
from bench.inputs.tasks import TaskData
from bench.log import log
from bench.plural import plural
from bench.results import adapter_files, index, run_folder
from bench.results.run_folder import RunFolder
from bench.results.sinks import Sink
from bench.run import checkpoint, checks, compiled, distributed, evaluation, loop, process_cache, provenance
from bench.run.memory import PeakMemory
from bench.run.phase_times import PhaseTimes
from bench.run.spec import RunSpec, label_hparams
from variants.base import Variant, added_tensors


def look_up(spec: RunSpec) -> RunFolder | None:
    """With resume on, the folder of a completed run of the spec's config hash (``bench.results.index``)."""
    if not spec.resume:
        return None
    done = index.completed_run(spec.results, spec.config_hash)
    return None if done is None else RunFolder(done)


def skip(spec: RunSpec, done: RunFolder, sinks: list[Sink], w: distributed.World) -> dict[str, Any]:
    """Resume skips the run: its folder gets ``resumed.json`` (pointing at ``done``) and, unless it holds
    a result, an index line; each sink recovers what a kill may have lost. Returns ``done``'s metrics."""
    previous = done.metrics()
    if w.main:
        spec.folder.path.mkdir(parents=True, exist_ok=True)
        spec.folder.write_resumed(spec.config_hash, done.path)
        if not spec.folder.metrics_path.exists():  # else it holds a result (done, or another's)
            index.record(spec.results, spec.folder.path, spec.config_hash, index.RESUMED)
        for sink in sinks:  # a kill between metrics.json and the sinks lost its CSV row
            sink.recover(previous)
    return previous


def first_metrics(spec: RunSpec) -> dict[str, Any]:
    """What metrics.json holds before training (status failed until the run ends): the run's names,
    ``config_hash`` (the run), ``config_key`` (its configuration: the hash without the seed), ``hparams``
    (``lr``: the one it trains with), ``label_hparams``, ``settings`` (the resolved config as dotted
    keys, minus the seed and what the hashes ignore), ``data_files`` (the user's data files the task
    reads, each with its split, name, size and sha256: ``bench.inputs.fingerprint``), ``code_version``
    and ``code_dirty`` (the code's last commit and whether it has uncommitted changes:
    ``bench.run.provenance``)."""
    code = provenance.code_state()
    options = {k: v for k, v in spec.variant.items() if k not in ("name", "lr")}
    hparams = {
        "lr": spec.lr,
        "epochs": spec.train.epochs,
        "batch_size": spec.train.batch_size,
        "max_train_samples": spec.task.max_train_samples,
        **options,
    }
    return {
        "status": "failed",
        "error": None,
        "run_name": spec.run_name,
        "variant": spec.variant_name,
        "task": spec.task.name,
        "model": spec.model.name,
        "seed": spec.seed,
        "main_metric": spec.task.main_metric,
        "dev_metric": dev_metric(spec.task),
        "select_on": spec.select_on,
        "selection_metric": spec.selection_metric,
        "config_hash": spec.config_hash,
        "config_key": spec.config_key,
        "git_commit": run_folder.git_commit(),
        "code_version": code.version,
        "code_dirty": code.dirty,
        "sweep": spec.sweep_dir or "",
        "run_dir": str(spec.folder.path),
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "hparams": hparams,
        "label_hparams": label_hparams(spec.variant_name),
        "settings": hashing.config_settings(spec.config),
        "data_files": [asdict(f) for f in spec.data_files],
    }


def start(spec: RunSpec, w: distributed.World) -> dict[str, Any]:
    """The run starts: from scratch (its checkpoints deleted) unless resume is on, then config.yaml and the
    index line ``running``. Returns ``first_metrics``."""
    if w.main and not spec.resume:  # before the ranks join, so before any rank loads one
        checkpoint.delete(spec.checkpoints)
    metrics = first_metrics(spec)
    if w.main:
        spec.folder.write_config(spec.config_yaml)
        index.record(spec.results, spec.folder.path, spec.config_hash, index.RUNNING)
    return metrics


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Data:
    task: TaskData  # train, dev (unless select_on=test) and the test splits
    chance: dict[str, float]  # the test metrics of the majority class (bench.inputs.metrics.chance)


def load_data(spec: RunSpec, times: PhaseTimes) -> Data:
    with times("load_data"):
        task_data = process_cache.task(spec.task, with_dev=spec.select_on == DEV)
    tests = {s: np.asarray(ds["label"]) for s, ds in task_data.evals.items()}
    return Data(task_data, chance(spec.task, np.asarray(task_data.train["label"]), tests))


@dataclass(frozen=True)
class Model:
    model: nn.Module  # the base model, adapted by ``variant``, on ``device``
    variant: Variant
    tokenizer: Any
    device: torch.device
    sizes: dict[str, Any]  # trainable_params, total_params (adapter tensors included), pct_trainable
    base_sha256: str | None = None  # the base weights' fingerprint (adapter_files.base_fingerprint), if saved


def load_model(spec: RunSpec, checked: checks.Checked, device: torch.device, times: PhaseTimes) -> Model:
    """The tokenizer and the base model, adapted by the checked variant, moved to ``device`` (and
    compiled when ``train.compile`` asks for it)."""
    variant, num_labels = checked.variant, spec.task.num_labels
    with times("load_model"):
        tokenizer = process_cache.tokenizer(spec.model)
        model = process_cache.base_model(spec.model, num_labels, spec.seed, **variant.load_kwargs())
        base_total = sum(p.numel() for p in model.parameters())
        head = checked.targets.head
        base_sha256 = adapter_files.base_fingerprint(model, head) if spec.train.save_adapter else None
        variant.apply(model, checked.targets)
        if spec.train.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        model.to(device)
        compiled.compiled(model, spec.train.compile, device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    added = sum(t.numel() for t in added_tensors(model))
    sizes = {
        "trainable_params": trainable,
        "total_params": base_total + added,
        "pct_trainable": round(100 * trainable / (base_total + added), 4),
    }
    return Model(model, variant, tokenizer, device, sizes, base_sha256)


@dataclass(frozen=True)
class Loaders:
    train: DataLoader
    evals: dict[str, DataLoader]  # dev (when loaded), then the test splits


def make_loaders(spec: RunSpec, data: Data, model: Model, w: distributed.World, times: PhaseTimes) -> Loaders:
    """The splits tokenized (once per process: ``bench.run.process_cache``) and batched; logs the run's
    header. Checks first that every process gets examples (``check_world``)."""
    task, train_cfg, train = spec.task, spec.train, data.task.train
    regression = task.num_labels == 1

    def encode(ds):
        with times("tokenize"):
            return process_cache.examples(
                ds, model.tokenizer, task.text_fields, spec.model.max_length, regression
            )

    pad_to = compiled.PAD_MULTIPLE if compiled.wanted(train_cfg.compile, model.device) else None
    collate = batching.Collator(model.tokenizer, regression, pad_to)
    held_out = data.task.held_out()
    if len(train) < train_cfg.batch_size:
        log.warning(
            "the task has %d training examples, fewer than one batch (train.batch_size=%d): each epoch is "
            "a single step on all of them",
            len(train),
            train_cfg.batch_size,
        )
    sizes = {s: len(ds) for s, ds in held_out.items()}
    checks.check_world(w, len(train), sizes, train_cfg.batch_size)
    train_dl = batching.train_loader(
        encode(train), collate, train_cfg.batch_size, spec.seed, train_cfg.length_grouping,
        train_cfg.num_workers, w,
    )  # fmt: skip
    evals = {
        s: batching.eval_loader(encode(ds), collate, train_cfg.eval_batch_size, w)
        for s, ds in held_out.items()
    }
    steps = loop.total_steps(len(train_dl), train_cfg)
    header = run_header(
        spec.variant_name,
        task.name,
        spec.model.name,
        model.device,
        len(train),
        sizes,
        train_cfg.epochs,
        steps,
    )
    log.info(header)
    return Loaders(train_dl, evals)


def run_header(
    variant: str,
    task: str,
    model: str,
    device: torch.device,
    n_train: int,
    held_out: dict[str, int],
    epochs: int,
    steps: int,
) -> str:
    """One line before training, e.g. "lora on rt_polarity with minilm, cpu: 2,000 train, 996 dev,
    1,000 test examples, 2 epochs, 126 steps"."""
    parts = "".join(f", {n:,} {split}" for split, n in held_out.items())
    return (
        f"{variant} on {task} with {model}, {device}: {n_train:,} train{parts} examples, "
        f"{plural(epochs, 'epoch')}, {plural(steps, 'step')}"
    )


def tests_at_end(spec: RunSpec) -> bool:
    """Whether the test splits wait for the end of training: unless ``train.test_every_epoch`` asks for
    their curves, or they select (``select_on=test``, where dev is not loaded)."""
    return spec.select_on == DEV and not spec.train.test_every_epoch


def fit(
    spec: RunSpec, model: Model, loaders: Loaders, sinks: list[Sink], memory: PeakMemory, times: PhaseTimes
) -> loop.LoopResult:
    """Train (``bench.run.loop.Fit``), from the spec's checkpoint when one is there; the sinks start
    first and get every logged value. Each evaluation covers dev, and the test splits too unless they
    wait for the end (``tests_at_end``). The peak memory counts from here."""
    run_info = {
        "run_name": spec.run_name,
        "variant": spec.variant_name,
        "task": spec.task.name,
        "model": spec.model.name,
        "seed": spec.seed,
        "lr": spec.lr,
        "config_key": spec.config_key,
        "group": spec.group,
        "run_dir": str(spec.folder.path),
        "config": spec.config,
    }
    for sink in sinks:
        sink.start(run_info)

    def log_values(values: dict[str, float], step: int) -> None:
        for sink in sinks:
            sink.log(values, step)

    memory.model_ready(model.model)  # built, on its device, data tokenized: the peak counts from here
    later = tests_at_end(spec)
    every = [DEV] if later else None
    evaluate = evaluation.evaluator(model.model, loaders.evals, model.device, spec.task, splits=every)
    tests = {s: dl for s, dl in loaders.evals.items() if s != DEV}
    evaluate_test = evaluation.evaluator(model.model, tests, model.device, spec.task) if later else None
    out = loop.Fit(
        model.model, model.variant, loaders.train, evaluate, spec.train, spec.lr, model.device,
        spec.selection_metric, log_values, spec.checkpoints, evaluate_test,
    ).run()  # fmt: skip
    times.add("train_steps", out.train_time_s)
    times.add("evaluate", out.eval_time_s)
    times.add("checkpoint", out.checkpoint_time_s)
    return out


def results(
    out: loop.LoopResult, model: Model, memory: PeakMemory, adapter_bytes: int, w: distributed.World
) -> dict[str, Any]:
    """What the run measured, as metrics.json records it: status, the selected (best) and final
    evaluations, steps, time and throughput, peak memory, sizes, and where it ran."""
    return {
        "status": out.status,
        "error": out.error,
        "best": out.best,
        "best_epoch": out.best_epoch,
        "final": out.final,
        "steps": out.steps,
        "resumed_from_step": out.resumed_from,
        "train_time_s": round(out.train_time_s, 3),
        "train_samples_per_s": round(out.samples_seen / out.train_time_s, 2) if out.train_time_s else None,
        "peak_memory_mb": round(memory.peak_mb(), 1),
        "memory_kind": memory.kind,
        "memory_breakdown_mb": out.memory_breakdown_mb,
        "model_mb": round(memory.model_mb, 3),
        "adapter_mb": round(adapter_bytes / 2**20, 4),
        "device": str(model.device),
        "variant_summary": model.variant.summary(model.model),
        "processes": w.size,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }


def record_outputs(spec: RunSpec, out: loop.LoopResult, model: Model, w: distributed.World) -> int:
    """Rank 0 writes history.jsonl, predictions.csv (the final state's), test_predictions.csv.gz (the
    test splits of the reported state, whose metrics are ``best``; none before any evaluation) and, with
    train.save_adapter, adapter/; returns the adapter's size in bytes (0 when not saved)."""
    if not w.main:
        return 0
    spec.folder.write_history(out.history)
    if out.final_outputs:
        spec.folder.write_predictions(out.final_outputs)
    tests = {split: outputs for split, outputs in out.best_outputs.items() if split != DEV}
    if tests:
        spec.folder.write_test_predictions(tests)
    if not spec.train.save_adapter:
        return 0
    base = model_name_or_path(spec.model)
    return adapter_files.save_adapter(
        spec.folder.adapter_path,
        model.variant.adapter_state_dict(model.model),
        model.variant.adapter_config(model.model, base),
        adapter_files.base_record(base, model.base_sha256, model.variant.targets.head),
    )


def record(spec: RunSpec, metrics: dict[str, Any], sinks: list[Sink], w: distributed.World) -> None:
    """The run has ended, whatever its status: rank 0 writes metrics.json, then its index line; every sink
    gets the metrics. A sink that fails makes a run that had a result (completed, diverged) failed, with
    that error, in metrics.json and the index too; the later sinks still get the metrics, then the first
    sink's error is raised."""
    if w.main:
        spec.folder.write_metrics(metrics)
        index.record(spec.results, spec.folder.path, spec.config_hash, metrics["status"])  # after metrics
    failure = None
    for sink in sinks:
        try:
            sink.finish(metrics)
        except Exception as e:  # noqa: BLE001 - raised below, once every sink had the metrics
            if failure is None and metrics["status"] in ("completed", "diverged"):
                metrics["status"] = "failed"
                metrics["error"] = f"{type(e).__name__}: {e} (recording the run: {type(sink).__name__})"
                if w.main:
                    spec.folder.write_metrics(metrics)
                    index.record(spec.results, spec.folder.path, spec.config_hash, metrics["status"])
            failure = failure or e
    if failure is not None:
        raise failure
