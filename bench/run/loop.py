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
    given `evaluate_test`: the test splits once at the end, on the best evaluation's trainable state
    (kept meanwhile: bench.run.best_state) and on the final state when it differs

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
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from bench.config.schemas import TrainConfig
from bench.log import log
from bench.run import best_state, checkpoint, compiled, distributed
from bench.run.memory_breakdown import MemoryBreakdown
from bench.run.progress import Progress

Batch = dict[str, Tensor]

Evaluate = Callable[[], tuple[dict[str, float], dict]]
Log = Callable[[dict[str, float], int], None]


@dataclass
class LoopResult:
    status: str = "completed"  # completed | diverged
    history: list[dict] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    best_epoch: float | None = None
    final: dict[str, float] = field(default_factory=dict)
    final_outputs: dict = field(default_factory=dict)
    best_outputs: dict = field(default_factory=dict)  # the reported state's: the best evaluation's and tests
    steps: int = 0
    samples_seen: int = 0
    train_time_s: float = 0.0  # the optimizer steps, batching included
    eval_time_s: float = 0.0
    checkpoint_time_s: float = 0.0
    error: str | None = None
    resumed_from: int | None = None  # the step of the checkpoint this run resumed from
    memory_breakdown_mb: dict[str, float] | None = None  # bench.run.memory_breakdown


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


class Trainable(StepHooks, checkpoint.HasTrainingState, Protocol):
    """What ``fit`` needs of a variant: the step hooks, the optimizer groups and its state between steps."""

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]: ...


class Fit:
    """One training for the configured budget: the optimizer, the schedule and the loop's counters, from
    the first step (or the checkpoint it resumes from) to the result. ``run()`` trains; each method is one
    part of a step. The best evaluation is the one with the highest ``select_metric`` (a key of
    ``evaluate``'s metrics: ``dev/accuracy``, see ``bench.inputs.metrics``).

    ``checkpoints``: the run's checkpoint folder (``bench.run.checkpoint.folder``); training resumes from the
    newest usable checkpoint there and writes its own there. None: neither. ``evaluate_test``: the test
    splits, evaluated once at the end (``_test``; ``evaluate`` then leaves them out); None: ``evaluate``
    covers them at every evaluation. ``cfg`` and ``lr`` are checked before
    (``bench.run.checks.check_train_config``).
    """

    def __init__(
        self,
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
        evaluate_test: Evaluate | None = None,
    ):
        self.model, self.variant, self.loader, self.evaluate, self.cfg = model, variant, loader, evaluate, cfg
        self.device, self.select_metric, self.log_metrics = device, select_metric, log_metrics
        self.checkpoints, self.evaluate_test = checkpoints, evaluate_test
        self.steps_total = total_steps(len(loader), cfg)
        self.optimizer = make_optimizer(variant.param_groups(model, lr, cfg.weight_decay), device)
        warmup = int(cfg.warmup_ratio * self.steps_total)
        self.scheduler = linear_schedule(self.optimizer, warmup, self.steps_total)
        eager = not compiled.wanted(cfg.compile, device)
        self.memory = MemoryBreakdown(model, self.optimizer, self.steps_total, compiled=not eager)
        params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.trainable = list(params.values())
        self.net = distributed.wrap(model, device)
        samplers = (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None))  # none: a list
        order = next((s for s in samplers if isinstance(s, checkpoint.ResumableOrder)), None)
        # a checkpoint's parts, besides the loop's counters
        self.parts = (params, self.optimizer, self.scheduler, variant, order)
        self.best_state = best_state.BestState(params) if evaluate_test is not None else None
        self.fingerprint = checkpoint.fingerprint(
            params,
            total_steps=self.steps_total,
            batches_per_epoch=len(loader),
            tests_at_end=evaluate_test is not None,
        )
        self.result = LoopResult()
        self.step, self.epoch, self.micro, self.running = 0, 0, 0, []
        # paused: time spent evaluating and checkpointing (timed)
        self.start, self.paused = time.perf_counter(), 0.0
        self.rng_to_restore = None
        if checkpoints is not None:
            self._resume(checkpoints)
        self.progress = Progress(self.steps_total, cfg.progress, done=self.step)
        self.last_saved = time.perf_counter()
        self.check_loss = checks_each_loss(device)
        self.pending: list[tuple[int, Tensor]] = []  # (step, loss) not read yet: on the device

    def _resume(self, checkpoints: Path) -> None:
        """Take the state of the newest usable checkpoint in ``checkpoints``, if there is one."""
        found = checkpoint.load_latest(checkpoints, self.fingerprint)
        if found is None:
            return
        path, state = found
        checkpoint.load_training_state(state, *self.parts)
        if self.best_state is not None:
            self.best_state.load_state_dict(state["best_state"])
        saved = state["loop"]
        self.step, self.epoch, self.micro = saved["step"], saved["epoch"], saved["micro"]
        self.running = saved["running"]
        result = self.result = LoopResult(**saved["result"])
        for outputs in (result.final_outputs, result.best_outputs):
            outputs.update({split: tuple(arrays) for split, arrays in outputs.items()})
        result.resumed_from, self.rng_to_restore = self.step, state["rng"]
        self.start -= result.train_time_s
        log.info("resuming from checkpoint %s: step %d of %d", path, self.step, self.steps_total)

    def run(self) -> LoopResult:
        """Train epoch by epoch until the last step or a divergence, evaluating at each epoch's end."""
        result = self.result
        self.model.train()
        while self.step < self.steps_total and result.status == "completed":
            self._train_epoch()
            if result.status == "diverged" or not self._read_losses():
                break
            if not result.history or result.history[-1]["step"] != self.step:  # else eval_every_steps did
                result.eval_time_s += self._timed(self._evaluate)
            self.epoch += 1
        if self.best_state is not None and self.best_state.step is not None:
            result.eval_time_s += self._timed(self._test)
        self.progress.close()
        result.samples_seen = distributed.total(result.samples_seen)
        if result.status == "completed":
            result.steps = self.step
        result.train_time_s = time.perf_counter() - self.start - self.paused
        return result

    def _batches(self) -> Iterator[Batch]:
        """The epoch's batches (for a DataLoader, drawing its order takes a seed from torch's RNG); in the
        epoch of a checkpoint, those after the ones it had done, and its RNG states restored."""
        batches = iter(self.loader)
        if self.rng_to_restore is not None:
            for _ in range(self.micro - self.epoch * len(self.loader)):
                next(batches)
            checkpoint.set_rng_state(self.rng_to_restore)
            self.rng_to_restore = None
        return batches

    def _train_epoch(self) -> None:
        """The optimizer steps of one epoch, until its end, the last step or a divergence."""
        for group in groups_of(self._batches(), self.cfg.grad_accum):
            if not self._step(group) or not self._after_step():
                return

    def _step(self, group: list[Batch]) -> bool:
        """One optimizer step on ``group`` (``train_step``); False when its loss was not finite."""
        group = [{k: v.to(self.device, non_blocking=True) for k, v in b.items() if k != "idx"} for b in group]
        try:
            with self.memory.around(self.step + 1):
                losses = train_step(
                    self.net, self.variant, self.optimizer, group, self.step + 1, self.steps_total,
                    self.device, self.cfg.max_grad_norm, self.scheduler, self.trainable, self.check_loss,
                )  # fmt: skip
        except Diverged as e:
            self.result.status, self.result.error, self.result.steps = "diverged", str(e), self.step
            return False
        self.pending.extend((self.step + 1, loss) for loss in losses)
        self.result.memory_breakdown_mb = self.result.memory_breakdown_mb or self.memory.mb()
        self.result.samples_seen += sum(b["labels"].shape[0] for b in group)
        self.micro += len(group)
        self.step += 1
        self.progress.update()
        return True

    def _after_step(self) -> bool:
        """Read the losses, log, evaluate and checkpoint as due after a step; False to end the epoch (the
        last step, or a loss read that was not finite)."""
        step, last = self.step, self.steps_total
        evaluate_now = bool(self.cfg.eval_every_steps) and step % self.cfg.eval_every_steps == 0
        save_now = step < last and self._checkpoint_due()
        log_now = step % LOSS_READ_EVERY == 0 or step == last
        if (log_now or evaluate_now or save_now) and not self._read_losses():
            return False
        if log_now:
            recent = self.running[-LOSS_READ_EVERY * self.cfg.grad_accum :]
            self.log_metrics({"train/loss": _mean(recent), "train/lr": _lr(self.optimizer)}, step)
        if evaluate_now and step < last:
            self.result.eval_time_s += self._timed(self._evaluate)
        if step >= last:
            return False  # no checkpoint of the last step: the final evaluation comes next
        if save_now and distributed.is_main():  # every rank holds the same state
            self._checkpoint()
        return True

    def _read_losses(self) -> bool:
        """Move the pending losses to ``running`` (one host sync); False if one is not finite."""
        if not self.pending:
            return True
        values = torch.stack([loss for _, loss in self.pending]).tolist()
        steps_of = [s for s, _ in self.pending]
        self.pending.clear()
        for at, value in zip(steps_of, values, strict=True):
            if not math.isfinite(value):
                self.result.status = "diverged"
                self.result.error = f"non-finite loss {value} at step {at} (read at step {self.step})"
                self.result.steps = at - 1
                return False
            self.running.append(value)
        return True

    def _evaluate(self) -> None:
        """Evaluate, add the history row and keep the best evaluation by the selection metric."""
        result, key = self.result, self.select_metric
        metrics, outputs = self.evaluate()
        self.model.train()
        row = {"epoch": round(self.micro / len(self.loader), 4), "step": self.step}
        row["train_loss"] = _mean(self.running)
        row["lr"] = _lr(self.optimizer)
        self.running.clear()
        row.update(metrics)
        result.history.append(row)
        result.final, result.final_outputs = metrics, outputs
        if not result.best or metrics[key] > result.best[key]:
            result.best, result.best_epoch, result.best_outputs = metrics, row["epoch"], outputs
            if self.best_state is not None:
                self.best_state.keep(self.step)
        self.log_metrics(metrics | {"epoch": row["epoch"]}, self.step)
        self.progress.show(f"{key}={metrics[key]:.4f}")

    def _test(self) -> None:
        """The test splits on the best state, and on the final one when it differs (a completed run's live
        state); their metrics join ``best`` and ``final``, their outputs ``final_outputs``. A diverged run
        stopped past its last evaluation: its ``final`` gets test metrics only when that was the best."""
        result, kept, evaluate = self.result, self.best_state, self.evaluate_test
        best_is_last = kept.step == result.history[-1]["step"]
        if result.status == "completed" and best_is_last:
            tests, outputs = evaluate()  # the live state is the best
        else:
            if result.status == "completed":
                final, on_final = evaluate()
                result.final, result.final_outputs = result.final | final, result.final_outputs | on_final
            with kept.loaded():
                tests, outputs = evaluate()
        result.best, result.best_outputs = result.best | tests, result.best_outputs | outputs
        if best_is_last:
            result.final, result.final_outputs = result.final | tests, result.final_outputs | outputs
        self.model.train()

    def _checkpoint_due(self) -> bool:
        every, minutes = self.cfg.checkpoint_every_steps, self.cfg.checkpoint_every_minutes
        by_time = minutes and time.perf_counter() - self.last_saved >= 60 * minutes
        return self.checkpoints is not None and bool((every and self.step % every == 0) or by_time)

    def _checkpoint(self) -> None:
        """Write a checkpoint of the training state and the loop's counters (timed)."""
        done = {f.name: getattr(self.result, f.name) for f in fields(self.result)}
        done["train_time_s"] = time.perf_counter() - self.start - self.paused
        position = {"step": self.step, "epoch": self.epoch, "micro": self.micro, "running": self.running}
        snapshot = {
            "fingerprint": self.fingerprint,
            **checkpoint.training_state(*self.parts),
            "best_state": self.best_state.state_dict() if self.best_state is not None else None,
            "loop": position | {"result": done},
        }
        self.result.checkpoint_time_s += self._timed(checkpoint.save, self.checkpoints, self.step, snapshot)
        self.last_saved = time.perf_counter()

    def _timed(self, work: Callable[..., Any], *args: Any) -> float:
        """Seconds ``work(*args)`` took, counted out of the training time."""
        t = time.perf_counter()
        work(*args)
        spent = time.perf_counter() - t
        self.paused += spent
        return spent


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _lr(optimizer) -> float:
    return optimizer.param_groups[0]["lr"]
