"""The training loop: a plain PyTorch loop where every call a variant hooks into is visible, in order.

``train_step`` is the one optimizer step of the project: the loop, the speed benchmark, the variant
test-kit and the tests all call it, so a benchmark times what training does.

    for each optimizer step (train_step):
        for each of grad_accum micro-batches:
            loss = task_loss + hooks.extra_loss(model)       (bf16 autocast on CUDA, fp32 elsewhere)
            (loss / micro-batches).backward()
        clip_grad_norm_; optimizer.step(); scheduler.step()
        hooks.on_step_end(model, step, total_steps)
        optimizer.zero_grad()
    evaluate every `eval_every_steps` and at the end of every epoch; the best evaluation is the one
    with the best selection metric (the dev set's, see bench.inputs.metrics)

A non-finite loss stops the run with status ``diverged``. The step never waits on the device for its
loss: on the CPU (where nothing runs ahead) each loss is checked before its backward; on an accelerator
the losses stay on the device and are read every LOSS_READ_EVERY steps (one host sync), so a divergence is
found up to that many steps late. Given a checkpoint folder, ``fit`` resumes from
the newest usable checkpoint there and writes one every ``checkpoint_every_steps`` steps or
``checkpoint_every_minutes`` minutes (``bench.run.checkpoint``). This module imports neither Hydra nor
datasets.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from bench.config.schemas import TrainConfig
from bench.log import log
from bench.run import checkpoint, compiled, distributed

Batch = dict[str, Tensor]
PROGRESS = ("auto", "bar", "log", "off")

Evaluate = Callable[[], tuple[dict[str, float], dict]]
Log = Callable[[dict[str, float], int], None]


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


@dataclass
class LoopResult:
    status: str = "completed"  # completed | diverged
    history: list[dict] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    best_epoch: float | None = None
    final: dict[str, float] = field(default_factory=dict)
    final_outputs: dict = field(default_factory=dict)
    steps: int = 0
    samples_seen: int = 0
    train_time_s: float = 0.0  # the optimizer steps, batching included
    eval_time_s: float = 0.0
    checkpoint_time_s: float = 0.0
    error: str | None = None
    resumed_from: int | None = None  # the step of the checkpoint this run resumed from


class StepHooks(Protocol):
    """What a training step calls besides the model: a ``Variant`` (or peft's side in
    bench.benchmarks.speed)."""

    def extra_loss(self, model: nn.Module) -> Tensor | None: ...

    def on_step_end(self, model: nn.Module, step: int, total_steps: int) -> None: ...


class Diverged(Exception):
    """The loss was not finite; nothing was applied from that micro-batch."""


LOSS_READ_EVERY = 10  # steps between reads of the losses on an accelerator (and between train/loss logs)


def checks_each_loss(device: torch.device) -> bool:
    """Whether a step checks its loss before backward: only where reading it costs no wait (the CPU)."""
    return device.type == "cpu"


def make_optimizer(groups: list[dict], device: torch.device) -> torch.optim.Optimizer:
    """AdamW over ``groups``, fused into one kernel per step on CUDA and the CPU (torch >= 2.4), the
    multi-tensor (foreach) version elsewhere; the update is AdamW's either way (torch.optim.AdamW docs)."""
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, fused=fused, foreach=None if fused else True)


def train_step(
    model: nn.Module,
    hooks: StepHooks,
    optimizer: torch.optim.Optimizer,
    micro_batches: Sequence[Batch],
    step: int,
    total_steps: int,
    device: torch.device,
    max_grad_norm: float = 0.0,
    scheduler=None,
    trainable: list[nn.Parameter] | None = None,
    check_loss: bool = True,
) -> list[Tensor]:
    """One optimizer step over ``micro_batches`` (gradient accumulation); returns each micro-batch's loss,
    detached, on the device (reading it is the caller's host sync).

    ``step`` is 1-based. Clipping (when max_grad_norm > 0) covers ``trainable`` (default: every parameter
    that requires grad). With ``check_loss``, raises Diverged on a non-finite loss, before its backward
    (a host sync per micro-batch: see ``checks_each_loss``). ``model`` may be
    wrapped in DDP (bench.run.distributed): the hooks get the model inside, and each micro-batch's loss is
    weighted so that the ranks' averaged gradient is that of the whole batch.
    """
    inner = distributed.unwrap(model)
    losses = []
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        # DDP: gradients are averaged over the ranks once, after the last micro-batch of the step
        sync = model.no_sync() if inner is not model and not last else contextlib.nullcontext()
        with sync:
            with autocast(device):
                loss = model(**batch).loss
                extra = hooks.extra_loss(inner)
                if extra is not None:
                    loss = loss + extra
            shown, weight = loss.detach(), 1.0
            if inner is not model:  # every rank sees the whole batch's loss, and so stops together
                shown, weight = distributed.global_mean(loss, batch["labels"].shape[0])
            if check_loss and not torch.isfinite(shown):
                raise Diverged(f"non-finite loss {shown.item()} at step {step}")
            (loss * weight / len(micro_batches)).backward()
        losses.append(shown)
    if max_grad_norm:
        params = trainable if trainable is not None else [p for p in inner.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    hooks.on_step_end(inner, step, total_steps)
    optimizer.zero_grad(set_to_none=True)
    return losses


def total_steps(batches_per_epoch: int, cfg: TrainConfig) -> int:
    per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
    steps = per_epoch * cfg.epochs
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def linear_schedule(optimizer, warmup: int, total: int):
    """Linear warmup from 0 to the peak lr over `warmup` steps, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


DEVICES = "auto, cpu, cuda, cuda:N or mps"


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA if there is one, then Apple's MPS, else the CPU; other names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; choose {DEVICES}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asks for CUDA, but this machine has none; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asks for Apple's MPS, but this machine has none; use auto or cpu")
    return device


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def groups_of(batches: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    """Consecutive groups of ``size`` batches (the last one of an epoch may be shorter)."""
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class Progress:
    """Progress of the optimizer steps: a tqdm bar on a terminal, else a log line every tenth of the run.

    ``auto`` draws the bar only in a main process writing to a terminal: parallel launchers' workers
    (joblib) share the terminal, and their bars would overwrite each other.
    """

    def __init__(self, total: int, mode: str, done: int = 0):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() and multiprocessing.parent_process() is None else "log"
        self.total, self.mode, self.done, self.postfix = total, mode, done, ""
        self.every = max(1, math.ceil(total / 10))
        self.bar = None
        if mode == "bar":
            self.bar = tqdm(total=total, initial=done, desc="train", unit="step", mininterval=1.0)

    def update(self, metrics: str | None = None) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.mode == "log" and (self.done % self.every == 0 or self.done == self.total):
            log.info("train: step %d/%d%s", self.done, self.total, self.postfix)

    def show(self, text: str) -> None:
        self.postfix = f", {text}"
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Trainable(StepHooks, checkpoint.HasTrainingState, Protocol):
    """What ``fit`` needs of a variant: the step hooks, the optimizer groups and its state between steps."""

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]: ...


def fit(
    model: nn.Module,
    variant: Trainable,
    loader,
    evaluate: Evaluate,
    cfg: TrainConfig,
    lr: float,
    device: torch.device,
    select_metric: str,
    log_metrics: Log,
    checkpoints: Path | None = None,
) -> LoopResult:
    """Train for the configured budget; the best evaluation is the one with the highest
    ``select_metric`` (a key of ``evaluate``'s metrics: ``dev/accuracy``, see ``bench.inputs.metrics``).

    ``checkpoints``: the run's checkpoint folder (``bench.run.checkpoint.folder``); training resumes from the
    newest usable checkpoint there and writes its own there. None: neither.
    """
    check_train_config(cfg, lr)
    steps_total = total_steps(len(loader), cfg)
    optimizer = make_optimizer(variant.param_groups(model, lr, cfg.weight_decay), device)
    scheduler = linear_schedule(optimizer, int(cfg.warmup_ratio * steps_total), steps_total)
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    trainable = list(params.values())
    net = distributed.wrap(model, device)
    samplers = (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None))  # none: a list
    order = next((s for s in samplers if isinstance(s, checkpoint.ResumableOrder)), None)
    parts = (params, optimizer, scheduler, variant, order)  # a checkpoint's, besides the loop's counters
    fingerprint = checkpoint.fingerprint(params, total_steps=steps_total, batches_per_epoch=len(loader))
    result = LoopResult()
    step, epoch, micro, running = 0, 0, 0, []
    start, paused = time.perf_counter(), 0.0  # paused: time spent evaluating and checkpointing (timed)
    rng_to_restore = None
    found = checkpoint.load_latest(checkpoints, fingerprint) if checkpoints is not None else None
    if found is not None:
        path, state = found
        checkpoint.load_training_state(state, *parts)
        saved = state["loop"]
        step, epoch, micro, running = saved["step"], saved["epoch"], saved["micro"], saved["running"]
        result = LoopResult(**saved["result"])
        result.final_outputs = {split: tuple(arrays) for split, arrays in result.final_outputs.items()}
        result.resumed_from, rng_to_restore = step, state["rng"]
        start -= result.train_time_s
        log.info("resuming from checkpoint %s: step %d of %d", path, step, steps_total)
    progress = Progress(steps_total, cfg.progress, done=step)
    last_saved = time.perf_counter()

    def run_eval() -> None:
        metrics, outputs = evaluate()
        model.train()
        row = {"epoch": round(micro / len(loader), 4), "step": step, "train_loss": _mean(running)}
        row["lr"] = _lr(optimizer)
        running.clear()
        row.update(metrics)
        result.history.append(row)
        result.final, result.final_outputs = metrics, outputs
        if not result.best or metrics[select_metric] > result.best[select_metric]:
            result.best, result.best_epoch = metrics, row["epoch"]
        log_metrics(metrics | {"epoch": row["epoch"]}, step)
        progress.show(f"{select_metric}={metrics[select_metric]:.4f}")

    def snapshot() -> dict[str, Any]:
        done = {f.name: getattr(result, f.name) for f in fields(result)}
        done["train_time_s"] = time.perf_counter() - start - paused
        position = {"step": step, "epoch": epoch, "micro": micro, "running": running}
        return {
            "fingerprint": fingerprint,
            **checkpoint.training_state(*parts),
            "loop": position | {"result": done},
        }

    def checkpoint_due() -> bool:
        every, minutes = cfg.checkpoint_every_steps, cfg.checkpoint_every_minutes
        by_time = minutes and time.perf_counter() - last_saved >= 60 * minutes
        return checkpoints is not None and bool((every and step % every == 0) or by_time)

    check_loss = checks_each_loss(device)
    pending: list[tuple[int, Tensor]] = []  # (step, loss) not read yet: on the device

    def read_losses() -> bool:
        """Move the pending losses to ``running`` (one host sync); False if one is not finite."""
        if not pending:
            return True
        values = torch.stack([loss for _, loss in pending]).tolist()
        steps_of = [s for s, _ in pending]
        pending.clear()
        for at, value in zip(steps_of, values, strict=True):
            if not math.isfinite(value):
                result.status = "diverged"
                result.error = f"non-finite loss {value} at step {at} (read at step {step})"
                result.steps = at - 1
                return False
            running.append(value)
        return True

    def timed(work: Callable[..., Any], *args: Any) -> float:
        """Seconds ``work(*args)`` took, counted out of the training time."""
        nonlocal paused
        t = time.perf_counter()
        work(*args)
        spent = time.perf_counter() - t
        paused += spent
        return spent

    model.train()
    while step < steps_total and result.status == "completed":
        batches = iter(loader)  # draws the epoch's order (and, for a DataLoader, a seed from torch's RNG)
        if rng_to_restore is not None:  # the checkpoint's epoch: skip what it had done, then its RNG states
            for _ in range(micro - epoch * len(loader)):
                next(batches)
            checkpoint.set_rng_state(rng_to_restore)
            rng_to_restore = None
        for group in groups_of(batches, cfg.grad_accum):
            group = [{k: v.to(device, non_blocking=True) for k, v in b.items() if k != "idx"} for b in group]
            try:
                losses = train_step(
                    net, variant, optimizer, group, step + 1, steps_total, device,
                    cfg.max_grad_norm, scheduler, trainable, check_loss,
                )  # fmt: skip
            except Diverged as e:
                result.status, result.error, result.steps = "diverged", str(e), step
                break
            pending.extend((step + 1, loss) for loss in losses)
            result.samples_seen += sum(b["labels"].shape[0] for b in group)
            micro += len(group)
            step += 1
            progress.update()
            evaluate_now = bool(cfg.eval_every_steps) and step % cfg.eval_every_steps == 0
            save_now = step < steps_total and checkpoint_due()
            if step % LOSS_READ_EVERY == 0 or step == steps_total or evaluate_now or save_now:
                if not read_losses():
                    break
            if step % LOSS_READ_EVERY == 0 or step == steps_total:
                recent = running[-LOSS_READ_EVERY * cfg.grad_accum :]
                log_metrics({"train/loss": _mean(recent), "train/lr": _lr(optimizer)}, step)
            if evaluate_now and step < steps_total:
                result.eval_time_s += timed(run_eval)
            if step >= steps_total:
                break  # no checkpoint of the last step: the final evaluation comes next
            if save_now and distributed.is_main():  # every rank holds the same state
                result.checkpoint_time_s += timed(checkpoint.save, checkpoints, step, snapshot())
                last_saved = time.perf_counter()
        if result.status == "diverged" or not read_losses():
            break
        if not result.history or result.history[-1]["step"] != step:  # eval_every_steps did this step
            result.eval_time_s += timed(run_eval)
        epoch += 1
    progress.close()
    result.samples_seen = distributed.total(result.samples_seen)
    if result.status == "completed":
        result.steps = step
    result.train_time_s = time.perf_counter() - start - paused
    return result


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _lr(optimizer) -> float:
    return optimizer.param_groups[0]["lr"]
