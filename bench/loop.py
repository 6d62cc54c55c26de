"""The training loop: a plain PyTorch loop where every call a variant hooks into is visible, in order.

    for each optimizer step:
        for each of grad_accum micro-batches:
            loss = task_loss + variant.extra_loss(model)       (bf16 autocast on CUDA, fp32 elsewhere)
            (loss / grad_accum).backward()
        clip_grad_norm_; optimizer.step(); scheduler.step()
        variant.on_step_end(model, step, total_steps)
        optimizer.zero_grad()
        evaluate every `eval_every_steps` and at the end of every epoch; track the best evaluation

A non-finite loss stops the run with status ``diverged``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from variants.base import Variant

Evaluate = Callable[[], tuple[dict[str, float], dict]]
Log = Callable[[dict[str, float], int], None]


@dataclass
class TrainConfig:
    """The training loop's settings (`train.*`)."""

    lr: float | None = None  # None: the variant's recommended lr (variant.lr)
    epochs: int = 3
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs when smaller)
    batch_size: int = 32
    eval_batch_size: int = 128
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    eval_every_steps: int = 0  # 0: evaluate at the end of every epoch only
    length_grouping: bool = True  # batches of similar length (less padding)
    num_workers: int = 0
    save_adapter: bool = True


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
    train_time_s: float = 0.0
    error: str | None = None


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


def fit(
    model: torch.nn.Module,
    variant: Variant,
    loader,
    evaluate: Evaluate,
    cfg: TrainConfig,
    lr: float,
    device: torch.device,
    main_metric: str,
    log: Log,
) -> LoopResult:
    steps_total = total_steps(len(loader), cfg)
    optimizer = torch.optim.AdamW(variant.param_groups(model, lr, cfg.weight_decay))
    scheduler = linear_schedule(optimizer, int(cfg.warmup_ratio * steps_total), steps_total)
    trainable = [p for p in model.parameters() if p.requires_grad]
    result = LoopResult()
    step, micro, running = 0, 0, []
    bar = tqdm(total=steps_total, desc="train", unit="step", dynamic_ncols=True, mininterval=1.0)

    def run_eval() -> None:
        metrics, outputs = evaluate()
        model.train()
        row = {"epoch": round(micro / len(loader), 4), "step": step, "train_loss": _mean(running)}
        row["lr"] = _lr(optimizer)
        running.clear()
        row.update(metrics)
        result.history.append(row)
        result.final, result.final_outputs = metrics, outputs
        if not result.best or metrics[main_metric] > result.best[main_metric]:
            result.best, result.best_epoch = metrics, row["epoch"]
        log({f"eval/{k}": v for k, v in metrics.items()} | {"epoch": row["epoch"]}, step)
        bar.set_postfix({main_metric: f"{metrics[main_metric]:.4f}"}, refresh=False)

    start = time.perf_counter()
    eval_time = 0.0
    model.train()
    while step < steps_total:
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "idx"}
            with autocast(device):
                loss = model(**batch).loss
                extra = variant.extra_loss(model)
                if extra is not None:
                    loss = loss + extra
            if not torch.isfinite(loss):
                result.status, result.error = "diverged", f"non-finite loss {loss.item()} at step {step + 1}"
                break
            (loss / cfg.grad_accum).backward()
            running.append(loss.item())
            result.samples_seen += batch["labels"].shape[0]
            micro += 1
            if micro % cfg.grad_accum:
                continue
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            variant.on_step_end(model, step, steps_total)
            optimizer.zero_grad(set_to_none=True)
            bar.update(1)
            if step % 10 == 0 or step == steps_total:
                log({"train/loss": _mean(running[-10 * cfg.grad_accum :]), "train/lr": _lr(optimizer)}, step)
            if cfg.eval_every_steps and step % cfg.eval_every_steps == 0 and step < steps_total:
                t = time.perf_counter()
                run_eval()
                eval_time += time.perf_counter() - t
            if step >= steps_total:
                break
        if result.status == "diverged":
            break
        t = time.perf_counter()
        run_eval()
        eval_time += time.perf_counter() - t
    bar.close()
    result.steps = step
    result.train_time_s = time.perf_counter() - start - eval_time
    return result


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _lr(optimizer) -> float:
    return optimizer.param_groups[0]["lr"]
