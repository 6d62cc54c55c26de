"""One run, start to end: compose the pieces, train, evaluate, and write the run folder and sinks.

run(cfg, run_dir) -> metrics (the dict written to metrics.json). Every run appends its row to the runs
CSV and its lines to the results index (``bench.results.index``: started, ended, or skipped by resume);
``logger=...`` adds sinks (``bench.results.sinks``). A run resumes from its checkpoint when an earlier run of
its
config hash was killed (``bench.run.checkpoint``); the checkpoint is deleted once the run has ended.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import json
import random
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import variants
from bench.config import hashing
from bench.config.schemas import ModelConfig, TaskConfig, TrainConfig
from bench.inputs import batching
from bench.inputs.metrics import DEV, TEST, chance, compute_metrics, dev_metric, selection_key
from bench.inputs.models import (
    enable_gradient_checkpointing,
    model_name_or_path,
    resolve_targets,
    skeleton,
)
from bench.log import log
from bench.plural import plural
from bench.results import adapter_files, index, run_folder
from bench.results.sinks import make_sinks
from bench.run import checkpoint, compiled, distributed, loop, process_cache
from bench.run.memory import PeakMemory
from bench.run.phase_times import PhaseTimes
from variants.base import adapter_layers


class RunSkipped(Exception):
    """The run's config hash already completed (resume); nothing was done. ``metrics``: that run's results."""

    def __init__(self, message: str, metrics: dict[str, Any]):
        super().__init__(message)
        self.metrics = metrics


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA out of memory, Python's MemoryError, or a RuntimeError of the CPU / MPS allocator."""
    if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(e)
    return isinstance(e, RuntimeError) and ("DefaultCPUAllocator" in message or "out of memory" in message)


OOM_HINT = (
    "the run does not fit in memory: try a smaller train.batch_size with a larger train.grad_accum (the "
    "same effective batch), train.gradient_checkpointing=true, a smaller model.max_length, or variant=qlora"
)
MIN_FREE_MB = 200  # a run folder: metrics, history, predictions and an adapter (full: the whole model)


def check_disk(folder: Path) -> None:
    """Raise OSError before any training when ``folder`` cannot be written or has under MIN_FREE_MB free."""
    probe = folder / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(e.errno, f"cannot write to the run folder {folder}: {e.strerror}") from e
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < MIN_FREE_MB:
        raise OSError(
            errno.ENOSPC,
            f"only {free_mb:.0f} MB free for the run folder {folder}; a run needs {MIN_FREE_MB} MB: free "
            "space, or put the results elsewhere (PEFT_BENCH_RESULTS or paths.results)",
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_dataclass(cls, values: dict[str, Any]):
    return cls(**{k: v for k, v in values.items() if k in {f.name for f in dataclasses.fields(cls)}})


def label_hparams(variant_name: str) -> list[str]:
    """The hparams that name a run's configuration: lr, then the variant class's ``key_hparams``."""
    try:
        cls = variants.get(variant_name)
    except (KeyError, ImportError):  # an unknown or broken variant: _train records the run as failed
        return ["lr"]
    return ["lr", *cls.key_hparams]


SELECT_ON = (DEV, TEST)


def check_select_on(value: str) -> None:
    if value not in SELECT_ON:
        raise ValueError(
            f"select_on={value!r} is not valid: choose {DEV} (select on the dev set, report the test "
            "splits) or test (the papers' convention: best epoch on the reported split)"
        )


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


def evaluator(model, loaders: dict, device: torch.device, task: TaskConfig):
    """A function that evaluates every eval split and returns (metrics, {split: (logits, labels, idx)})."""

    @torch.inference_mode()
    def evaluate():
        model.eval()
        outputs = {}
        for split, dl in loaders.items():
            logits, labels, idx = [], [], []
            for batch in dl:
                idx.append(batch.pop("idx"))
                labels.append(batch.pop("labels"))
                batch = {k: v.to(device) for k, v in batch.items()}
                with loop.autocast(device):
                    logits.append(model(**batch).logits.float().cpu())
            arrays = (torch.cat(logits).numpy(), torch.cat(labels).numpy(), torch.cat(idx).numpy())
            logits_all, labels_all, idx_all = distributed.gather(arrays)  # every rank's share
            order = np.argsort(idx_all, kind="stable")
            outputs[split] = (logits_all[order], labels_all[order], idx_all[order])
        metrics = compute_metrics(task, {s: (lg, lb) for s, (lg, lb, _) in outputs.items()})
        return metrics, outputs

    return evaluate


def trained_lr(container: dict[str, Any]) -> float | None:
    """The lr a run trains with: train.lr (else the variant's) times train.lr_scale; None when neither is."""
    train_cfg = make_dataclass(TrainConfig, container["train"])
    base_lr = train_cfg.lr or container["variant"].get("lr")
    return base_lr * train_cfg.lr_scale if base_lr is not None else None


def record(container: dict[str, Any], run_dir: str | Path, sweep_dir: str | None = None) -> dict[str, Any]:
    """What metrics.json holds before training (status failed until the run ends): the run's names,
    ``config_hash`` (the run), ``config_key`` (its configuration: the hash without the seed), ``hparams``,
    ``label_hparams`` and ``settings`` (the resolved config as dotted keys, minus the seed and what the
    hashes ignore), from the resolved config ``container``. ``hparams.lr`` is ``trained_lr``."""
    task_cfg = make_dataclass(TaskConfig, container["task"])
    train_cfg = make_dataclass(TrainConfig, container["train"])
    variant_name = container["variant"]["name"]
    seed = container["seed"]
    options = {k: v for k, v in container["variant"].items() if k not in ("name", "lr")}
    hparams = {
        "lr": trained_lr(container),
        "epochs": train_cfg.epochs,
        "batch_size": train_cfg.batch_size,
        "max_train_samples": task_cfg.max_train_samples,
        **options,
    }
    return {
        "status": "failed",
        "error": None,
        "run_name": f"{variant_name}-{task_cfg.name}-s{seed}",
        "variant": variant_name,
        "task": task_cfg.name,
        "model": container["model"]["name"],
        "seed": seed,
        "main_metric": task_cfg.main_metric,
        "dev_metric": dev_metric(task_cfg),
        "select_on": container["select_on"],
        "selection_metric": selection_key(task_cfg, container["select_on"]),
        "config_hash": hashing.config_hash(container),
        "config_key": hashing.config_key(container),
        "git_commit": run_folder.git_commit(),
        "sweep": sweep_dir or "",
        "run_dir": str(run_dir),
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "hparams": hparams,
        "label_hparams": label_hparams(variant_name),
        "settings": hashing.config_settings(container),
    }


def run(cfg: DictConfig, run_dir: str | Path, sweep_dir: str | None = None) -> dict[str, Any]:
    """Train one variant on one task; always leaves metrics.json (status completed, diverged, failed, oom
    or interrupted: Ctrl-C). When distributed, every rank trains and only rank 0 writes."""
    w = distributed.world()
    finished = False
    try:
        metrics = _run(cfg, Path(run_dir), sweep_dir, w)
        finished = True
        return metrics
    finally:
        distributed.leave(finished)


def _run(cfg: DictConfig, run_dir: Path, sweep_dir: str | None, w: distributed.World) -> dict[str, Any]:
    times = PhaseTimes()
    if w.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    cfg_hash = hashing.config_hash(container)
    if cfg.resume and not cfg.force:
        done = index.completed_run(cfg.paths.results, cfg_hash)
        if done is not None:
            previous = json.loads((done / "metrics.json").read_text())
            if w.main:
                run_folder.write_json(
                    run_dir / "resumed.json", {"config_hash": cfg_hash, "completed_in": str(done)}
                )
                if not (run_dir / "metrics.json").exists():  # else it holds a result (done, or another's)
                    index.record(cfg.paths.results, run_dir, cfg_hash, index.RESUMED)
                for sink in make_sinks(cfg):  # a kill between metrics.json and the sinks lost its CSV row
                    sink.recover(previous)
            raise RunSkipped(
                f"config {cfg_hash} already completed in {done} (force=true reruns it)", previous
            )
    checkpoints = checkpoint.folder(cfg.paths.results, cfg_hash)
    if w.main and (not cfg.resume or cfg.force):  # before the ranks join, so before any rank loads one
        checkpoint.delete(checkpoints)  # from scratch

    model_cfg = make_dataclass(ModelConfig, container["model"])
    task_cfg = make_dataclass(TaskConfig, container["task"])
    train_cfg = make_dataclass(TrainConfig, container["train"])
    metrics = record(container, run_dir, sweep_dir)
    if w.main:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        index.record(cfg.paths.results, run_dir, cfg_hash, index.RUNNING)
    sinks = make_sinks(cfg) if w.main else []
    try:
        _train(
            container, model_cfg, task_cfg, train_cfg, cfg, run_dir, metrics, sinks, sweep_dir,
            checkpoints, w, times,
        )  # fmt: skip
    except Exception as e:
        metrics["status"] = "oom" if is_out_of_memory(e) else "failed"
        metrics["error"] = f"{type(e).__name__}: {e}"
        if metrics["status"] == "oom":
            metrics["error"] += f" ({OOM_HINT})"
        if w.main:
            (run_dir / "error.txt").write_text(traceback.format_exc())
        raise
    except KeyboardInterrupt:  # Ctrl-C: not a failure of the config; the same command runs it again
        metrics["status"], metrics["error"] = "interrupted", "KeyboardInterrupt: stopped by the user"
        raise
    finally:
        metrics["timestamp"] = dt.datetime.now().isoformat(timespec="seconds")
        metrics["phase_time_s"] = times.as_dict()
        if w.main:
            run_folder.write_json(run_dir / "metrics.json", metrics)
            index.record(cfg.paths.results, run_dir, cfg_hash, metrics["status"])  # after metrics
        for sink in sinks:
            sink.finish(metrics)
    if w.main and not train_cfg.keep_checkpoint:  # the run has ended (completed or diverged)
        checkpoint.delete(checkpoints)
    return metrics


def write_outputs(run_dir: Path, out: loop.LoopResult) -> None:
    run_folder.write_history(run_dir / "history.jsonl", out.history)
    if out.final_outputs:
        run_folder.write_predictions(run_dir / "predictions.csv", out.final_outputs)


def check_fits(container: dict[str, Any], model_cfg: ModelConfig, num_labels: int, targets) -> None:
    """Adapt the model's weightless skeleton (bench.inputs.models.skeleton) with a fresh copy of the variant,
    so
    that a setting that does not fit its layers (a rank above a layer's size) fails in a second, before
    the weights load. Math the meta device cannot do (QLoRA's quantization, DoRA's norms) ends this dry
    run early, after the size checks that precede it; the real adaptation checks everything again."""
    fresh = variants.build(container["variant"]["name"], container["variant"])
    try:
        fresh.apply(skeleton(model_cfg, num_labels), targets)
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


def _train(
    container, model_cfg, task_cfg, train_cfg, cfg, run_dir, metrics, sinks, sweep_dir, checkpoints, w, times
) -> None:
    variant = variants.build(container["variant"]["name"], container["variant"])
    check_select_on(cfg.select_on)  # these checks come before any data or model loads
    loop.check_train_config(train_cfg, metrics["hparams"]["lr"])
    if w.main:
        check_disk(run_dir)
    targets = resolve_targets(model_cfg, variant.config.targets)
    check_fits(container, model_cfg, task_cfg.num_labels, targets)
    device = distributed.join(w, loop.pick_device(cfg.device))
    seed_everything(cfg.seed)
    memory = PeakMemory(device)

    with times("load_data"):
        task_data = process_cache.task(task_cfg, with_dev=cfg.select_on == DEV)
    tests = {s: np.asarray(ds["label"]) for s, ds in task_data.evals.items()}
    metrics["chance"] = chance(task_cfg, np.asarray(task_data.train["label"]), tests)
    regression = task_cfg.num_labels == 1
    with times("load_model"):
        tokenizer = process_cache.tokenizer(model_cfg)
        model = process_cache.base_model(model_cfg, task_cfg.num_labels, cfg.seed, **variant.load_kwargs())
        base_total = sum(p.numel() for p in model.parameters())
        variant.apply(model, targets)
        if train_cfg.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        model.to(device)
        compiled.compiled(model, train_cfg.compile, device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    added = sum(
        t.numel() for layer in adapter_layers(model).values() for t in layer.adapter_tensors().values()
    )
    lr = metrics["hparams"]["lr"]
    metrics.update(
        trainable_params=trainable,
        total_params=base_total + added,
        pct_trainable=round(100 * trainable / (base_total + added), 4),
    )

    def encode(ds):
        with times("tokenize"):
            return process_cache.examples(
                ds, tokenizer, task_cfg.text_fields, model_cfg.max_length, regression
            )

    pad_to = compiled.PAD_MULTIPLE if compiled.wanted(train_cfg.compile, device) else None
    collate = batching.Collator(tokenizer, regression, pad_to)
    held_out = task_data.held_out()
    if len(task_data.train) < train_cfg.batch_size:
        log.warning(
            "the task has %d training examples, fewer than one batch (train.batch_size=%d): each epoch is "
            "a single step on all of them",
            len(task_data.train),
            train_cfg.batch_size,
        )
    check_world(w, len(task_data.train), {s: len(ds) for s, ds in held_out.items()}, train_cfg.batch_size)
    train_dl = batching.train_loader(
        encode(task_data.train),
        collate,
        train_cfg.batch_size,
        cfg.seed,
        train_cfg.length_grouping,
        train_cfg.num_workers,
        w,
    )
    eval_dls = {
        s: batching.eval_loader(encode(ds), collate, train_cfg.eval_batch_size, w)
        for s, ds in held_out.items()
    }

    group = Path(sweep_dir).name if sweep_dir else None
    run_info = {
        "run_name": metrics["run_name"],
        "variant": metrics["variant"],
        "task": task_cfg.name,
        "model": model_cfg.name,
        "seed": cfg.seed,
        "group": group,
        "run_dir": str(run_dir),
        "config": container,
    }
    log.info(
        run_header(
            metrics["variant"],
            task_cfg.name,
            model_cfg.name,
            device,
            len(task_data.train),
            {s: len(ds) for s, ds in held_out.items()},
            train_cfg.epochs,
            loop.total_steps(len(train_dl), train_cfg),
        )
    )
    for sink in sinks:
        sink.start(run_info)

    def log_values(values, step):
        for sink in sinks:
            sink.log(values, step)

    memory.model_ready(model)  # built, on its device, data tokenized: the peak counts from here
    out = loop.fit(
        model,
        variant,
        train_dl,
        evaluator(model, eval_dls, device, task_cfg),
        train_cfg,
        lr,
        device,
        metrics["selection_metric"],
        log_values,
        checkpoints,
    )
    times.add("train_steps", out.train_time_s)
    times.add("evaluate", out.eval_time_s)
    times.add("checkpoint", out.checkpoint_time_s)
    adapter_bytes = 0
    if w.main:
        write_outputs(run_dir, out)
    if w.main and train_cfg.save_adapter:
        adapter_bytes = adapter_files.save_adapter(
            run_dir / "adapter",
            variant.adapter_state_dict(model),
            variant.adapter_config(model, model_name_or_path(model_cfg)),
        )
    metrics.update(
        status=out.status,
        error=out.error,
        best=out.best,
        best_epoch=out.best_epoch,
        final=out.final,
        steps=out.steps,
        resumed_from_step=out.resumed_from,
        train_time_s=round(out.train_time_s, 3),
        train_samples_per_s=round(out.samples_seen / out.train_time_s, 2) if out.train_time_s else None,
        peak_memory_mb=round(memory.peak_mb(), 1),
        memory_kind=memory.kind,
        model_mb=round(memory.model_mb, 3),
        adapter_mb=round(adapter_bytes / 2**20, 4),
        device=str(device),
        variant_summary=variant.summary(model),
        processes=w.size,
        python=sys.version.split()[0],
        torch=torch.__version__,
    )
