"""Step-time benchmark: our variants against Hugging Face peft's on an identical random-init base.

    python -m bench.speed --shape roberta_base --variants lora,dora,vera,adalora --batch 32 --seq 128

For each variant it times one whole optimizer step, ``bench.loop.train_step`` (what training runs):

    loss = model(**batch).loss + extra_loss;  backward;  clip_grad_norm_;  optimizer.step();
    on_step_end(step, total);  zero_grad

for our implementation and, where peft has the method, for peft's: ``get_peft_model`` with the peft config
our variant saves as ``adapter_config.json``, and the variant's ``peft_*`` hooks for the rest (the base
peft starts from, the optimizer a peft user would make, what runs after each step): LoRA+ through
``create_loraplus_optimizer``, AdaLoRA's budget through ``update_and_allocate`` (its orthogonal loss comes
from peft's forward), QLoRA on a bitsandbytes NF4 base (CUDA only).
Both start from the same base weights, seed and batch, and their steps are
interleaved (ours, peft, ours, ...) so a drift in machine load hits both alike. ``full`` and ``head`` are
the anchors (``full`` is always timed: the ratios need it). Reported: the median ms per step over
``--steps`` after ``--warmup``, with ``torch.cuda.synchronize`` around each step and bf16 autocast on CUDA
(as in training), fp32 elsewhere.

Every variant uses its own defaults (the paper recipes: LoRA r 8, VeRA r 256, QLoRA r 64, ...) on the
``--targets`` layers, plus its ``benchmark_options`` (AdaLoRA: no warm-up or final phase, so every timed
step updates importance and masks: its costliest phase); a rank above the hidden size (only the tiny
shape) is capped at it.

The FLOP floor ("vs floor" = ours / floor). For N base parameters and T tokens, full fine-tuning costs
about 6 N T FLOPs per step: forward 2 N T, input gradients 2 N T, weight gradients 2 N T. An adapter step
still needs the forward and the input gradients (to reach the adapters of lower layers) but no weight
gradients of the frozen base and no optimizer over it: about 4 N T, 2/3 of full fine-tuning. Head-only
training needs the forward alone: 1/3. The floor is that fraction of the *full* step measured in this
run, so it carries the same overheads (attention, norms, kernel launches) as its anchor. It ignores the
adapters' own matmuls: small for LoRA (r 8), but VeRA's shared r 256 projections add about 2/3 of each
adapted layer's forward cost, so VeRA cannot reach the floor exactly. The anchor also holds work that is
not in 6 N T: the gradient and AdamW update of the word embeddings (half of MiniLM's 22.7M parameters),
so on small models the floor comes out high and an adapter can score below 1. All ratios come from this
one run.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gc
import statistics
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import variants
from bench.config import group_options
from bench.loop import StepHooks, pick_device, train_step
from bench.models import RANDOM_INIT, ModelConfig, model_config, random_init_model, resolve_targets
from variants.base import NO_PEFT_METHOD, Targets, Variant

Device = torch.device
Batch = dict[str, Tensor]
Measured = dict[str, tuple[float, float | None, str]]  # variant -> (ours ms, peft ms or None, peft note)
SEED = 0
LABELS = 2
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
DEFAULT_VARIANTS = "lora,dora,vera,adalora,loraplus,qlora,full,head"
ANCHOR = "full"
FLOOR_FRACTION = {"full": 1.0, "head": 1 / 3}  # every other variant (an adapter): 2 / 3
ADAPTER_FLOOR = 2 / 3
COLUMNS = [
    "variant", "ours_ms", "peft_ms", "ours_vs_peft", "ours_vs_full", "floor_ms", "vs_floor", "peft_note",
    "shape", "targets", "batch", "seq", "steps", "warmup", "device",
]  # fmt: skip


def shapes() -> list[str]:
    """The model configs (conf/model) whose architecture bench.speed can build at random init."""
    return [n for n in group_options("model") if model_config(n).family in RANDOM_INIT]


@dataclass
class Run:
    """One implementation of one variant, ready to step."""

    label: str  # e.g. "lora/peft"
    model: nn.Module
    optimizer: torch.optim.Optimizer
    hooks: StepHooks
    trainable: list[nn.Parameter] = field(init=False)  # for clipping, listed once as bench.loop does

    def __post_init__(self) -> None:
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]


class PeftHooks:
    """peft's side of a step: its forward adds any extra loss; the variant says what follows a step."""

    def __init__(self, variant: Variant):
        self.variant = variant

    def extra_loss(self, model: nn.Module) -> Tensor | None:
        return None

    def on_step_end(self, model: nn.Module, step: int, total_steps: int) -> None:
        self.variant.peft_on_step_end(model, step, total_steps)


# -- setup ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated registered variants")
    parser.add_argument(
        "--shape", default="roberta_base", choices=shapes(), help="a model config's architecture"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--targets", default="attention", help="a target preset of the model config")
    parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda:N")
    parser.add_argument("--no-peft", action="store_true", help="time our implementations only")
    parser.add_argument("--out", default="results/speed.csv", help="CSV file of the rows")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    known = variants.available()
    unknown = [v for v in args.variants if v not in known]
    if unknown or not args.variants:
        parser.error(f"unknown variant(s) {unknown or args.variants}; available: {', '.join(known)}")
    for name in ("batch", "seq", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    presets = list(model_config(args.shape).targets)
    if args.targets not in presets:
        parser.error(
            f"unknown --targets {args.targets!r} for {args.shape}; choose one of {', '.join(presets)}"
        )
    if ANCHOR not in args.variants:
        args.variants.append(ANCHOR)  # the ratios are measured against it
    return args


def describe(device: Device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


def base_model(cfg: ModelConfig, seq: int, seed: int) -> nn.Module:
    """A random-init sequence classifier of ``cfg``'s architecture (on CPU; every run copies it)."""
    return random_init_model(replace(cfg, max_length=max(512, seq)), LABELS, seed).train()


def make_batch(cfg: ModelConfig, batch: int, seq: int, seed: int, device: Device) -> Batch:
    """Random token ids (no special tokens, no padding), full attention mask, random labels."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, cfg.vocab_size, (batch, seq), generator=g)
    labels = torch.randint(0, LABELS, (batch,), generator=g)
    data = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return {k: v.to(device) for k, v in data.items()}


def variant_options(name: str, total_steps: int, cfg: ModelConfig) -> dict[str, Any]:
    """Each variant's defaults and benchmark_options, a rank above the hidden size capped (see the top)."""
    cls = variants.get(name)
    rank = getattr(cls.Config(), "r", None)
    capped = {"r": cfg.hidden_size} if isinstance(rank, int) and rank > cfg.hidden_size else {}
    return {**capped, **cls.benchmark_options(total_steps)}


def our_run(
    name: str, options: dict[str, Any], base: nn.Module, targets: Targets, device: Device
) -> tuple[Variant, Run]:
    variant = variants.build(name, options)
    model = copy.deepcopy(base).to(device)
    torch.manual_seed(SEED)
    variant.apply(model, targets)
    optimizer = torch.optim.AdamW(variant.param_groups(model, variant.config.lr, WEIGHT_DECAY))
    return variant, Run(label=f"{name}/ours", model=model, optimizer=optimizer, hooks=variant)


# -- peft's side ---------------------------------------------------------------------------------
def peft_run(variant: Variant, ours: nn.Module, base: nn.Module, device: Device) -> Run:
    """peft's version of ``variant`` on a copy of ``base``, from the peft config our variant saves."""
    from peft import get_peft_config, get_peft_model

    config = variant.adapter_config(ours, "")
    config.update(inference_mode=False)  # a saved adapter is frozen; this one trains
    for key in ("base_model_name_or_path", "rank_pattern"):  # no checkpoint; AdaLoRA's pattern: from training
        config.pop(key, None)
    model = variant.peft_base(base, device)
    torch.manual_seed(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecations, raised inside peft
        model = get_peft_model(model, get_peft_config(config)).train()
    optimizer = variant.peft_optimizer(model, variant.config.lr, WEIGHT_DECAY)
    return Run(label=f"{variant.name}/peft", model=model, optimizer=optimizer, hooks=PeftHooks(variant))


# -- timing --------------------------------------------------------------------------------------
def sync(device: Device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(
    runs: list[Run], batch: Batch, warmup: int, steps: int, device: Device, bar: tqdm
) -> list[float]:
    """Median ms per step of each run; the runs' steps are interleaved."""
    total = warmup + steps
    times: list[list[float]] = [[] for _ in runs]
    for step in range(1, total + 1):
        for run, ms in zip(runs, times, strict=True):
            bar.set_description(run.label)
            sync(device)
            start = time.perf_counter()
            train_step(
                run.model, run.hooks, run.optimizer, [batch], step, total, device, MAX_GRAD_NORM,
                trainable=run.trainable,
            )  # fmt: skip
            sync(device)
            if step > warmup:
                ms.append(1e3 * (time.perf_counter() - start))
            bar.update(1)
    return [statistics.median(ms) for ms in times]


def release(device: Device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure(args: argparse.Namespace, device: Device) -> Measured:
    """Median step times of every variant asked for, ours and peft's."""
    model_cfg = model_config(args.shape)
    targets = resolve_targets(model_cfg, args.targets)
    base = base_model(model_cfg, args.seq, SEED)
    batch = make_batch(model_cfg, args.batch, args.seq, SEED, device)
    total = args.warmup + args.steps
    skips = {
        n: "--no-peft" if args.no_peft else variants.get(n)().peft_unavailable(device) for n in args.variants
    }
    n_runs = sum(1 if skips[n] else 2 for n in args.variants)
    measured = {}
    with tqdm(total=n_runs * total, unit="step", dynamic_ncols=True, disable=None) as bar:
        for name in args.variants:
            options = variant_options(name, total, model_cfg)
            variant, ours = our_run(name, options, base, targets, device)
            runs = [ours] if skips[name] else [ours, peft_run(variant, ours.model, base, device)]
            medians = time_runs(runs, batch, args.warmup, args.steps, device, bar)
            peft_ms = medians[1] if len(medians) > 1 else None
            measured[name] = (medians[0], peft_ms, skips[name] or "")
            del variant, ours, runs
            release(device)
    return measured


# -- report --------------------------------------------------------------------------------------
def rows_from(measured: Measured, args: argparse.Namespace, device: Device) -> list[dict[str, Any]]:
    """CSV rows; every ratio is computed from times measured in this run."""
    full_ms = measured[ANCHOR][0]
    rows = []
    for name in args.variants:
        ours_ms, peft_ms, note = measured[name]
        floor_ms = FLOOR_FRACTION.get(name, ADAPTER_FLOOR) * full_ms
        rows.append({
            "variant": name,
            "ours_ms": round(ours_ms, 3),
            "peft_ms": round(peft_ms, 3) if peft_ms is not None else "",
            "ours_vs_peft": round(ours_ms / peft_ms, 4) if peft_ms is not None else "",
            "ours_vs_full": round(ours_ms / full_ms, 4),
            "floor_ms": round(floor_ms, 3),
            "vs_floor": round(ours_ms / floor_ms, 4),
            "peft_note": note,
            "shape": args.shape,
            "targets": args.targets,
            "batch": args.batch,
            "seq": args.seq,
            "steps": args.steps,
            "warmup": args.warmup,
            "device": describe(device),
        })  # fmt: skip
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("variant", "ours ms", "peft ms", "ours/peft", "ours/full", "vs floor")
    keys = ("variant", "ours_ms", "peft_ms", "ours_vs_peft", "ours_vs_full", "vs_floor")
    print(f"{header[0]:<10}" + "".join(f"{h:>11}" for h in header[1:]))
    for row in rows:
        cells = [_cell(row[k]) for k in keys[1:]]
        print(f"{row['variant']:<10}" + "".join(f"{c:>11}" for c in cells))
    for row in rows:
        if row["peft_note"] not in ("", NO_PEFT_METHOD):
            print(f"peft {row['variant']}: skipped, {row['peft_note']}")
    r = rows[0]
    print(
        f"{r['shape']}, {r['targets']} targets, batch {r['batch']} x seq {r['seq']}, median of {r['steps']} "
        f"steps after {r['warmup']} warm-up, on {r['device']}; vs floor = ours / (fraction x full ms)"
    )


def _cell(value: float | str) -> str:
    if value == "":
        return "-"
    return f"{value:.1f}" if isinstance(value, float) and value >= 10 else f"{value:.3g}"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = pick_device(args.device)
    except ValueError as e:
        raise SystemExit(f"--device: {e}") from None
    rows = rows_from(measure(args, device), args, device)
    print_table(rows)
    write_csv(rows, Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
