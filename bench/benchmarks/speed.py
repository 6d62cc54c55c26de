"""Step-time benchmark: our variants against Hugging Face peft's on an identical random-init base.

    python -m bench speed --shape roberta_base --variants lora,dora,vera,adalora --batch 32 --seq 128
    python -m bench speed --shape minilm --batch 16 --seq 64 --compile on --json results/speed.json

For each variant it times one whole optimizer step, ``bench.run.loop.train_step`` (what training runs):

    loss = model(**batch).loss + extra_loss;  backward;  clip_grad_norm_;  optimizer.step();
    on_step_end(step, total);  zero_grad

for our implementation and, where peft has the method, for peft's: the variant's twin
(``variants.peft_twin``): ``get_peft_model`` with the peft config our variant saves as
``adapter_config.json``, on the base peft starts from, with the optimizer a peft user would make and what
runs after each step: LoRA+ through ``create_loraplus_optimizer``, AdaLoRA's budget through
``update_and_allocate`` (its orthogonal loss comes from peft's forward), QLoRA on a bitsandbytes NF4 base
(CUDA only). Both start from the same base weights, seed and batch, and their steps are interleaved
(ours, peft, ours, ...) so a drift in machine load hits both alike. ``full`` and ``head`` are the anchors
(``full`` is always timed: the ratios need it). Reported: the median ms per step over ``--steps`` after
``--warmup``, with ``torch.cuda.synchronize`` around each step and bf16 autocast on CUDA (as in
training), fp32 elsewhere, and our first step in seconds.

Every variant uses its own defaults (the paper recipes: LoRA r 8, VeRA r 256, QLoRA r 64, ...) on its own
targets (``Config.targets``: what a run of it adapts; each row names them), or on the ``--targets`` given
(a preset of the shape, or comma-separated module-name suffixes) for all, plus its twin's
``benchmark_options`` (AdaLoRA: no warm-up or final phase, so every timed step updates importance and
masks: its costliest phase); a rank above the hidden size (only the tiny shape) is capped at it.

``--compile`` (``bench.run.compiled``: auto, on, off) compiles our models in place with ``torch.compile``;
peft's stay eager, and the table says which side is compiled. The default, auto, compiles where it pays
back within a run (CUDA), so the benchmark times what a compiled training run does there, while CPU runs
stay eager and short. A compiled run's batch is padded with masked tokens to a multiple of PAD_MULTIPLE,
as training pads then; the warm-up steps absorb the compile (so it needs ``--warmup`` >= 1), and the
first step's time shows it.

Inference (``bench.benchmarks.inference_speed``; ``--no-inference`` skips it): each variant's trained
model is timed forward in eval mode: the base model, the adapters unmerged and merged, interleaved.
Printed: the step table (with the floor), the inference table, and the ratios of the project's speed
targets (``bench.benchmarks.speed_targets``) against their targets on this device. Written: ``--out``
(the step rows), ``<stem>_inference.csv`` beside it, and with ``--json PATH`` one file of all three:
``{"rows": [...], "inference": [...], "ratios": [...]}``.

The FLOP floor ("vs floor" = ours / floor): a fraction of the *full* step measured in this run, so it
carries the same overheads as its anchor. Full fine-tuning costs about 6 N T FLOPs per step (N base
parameters, T tokens: forward, input gradients, weight gradients, 2 N T each); an adapter step needs no
weight gradients of the frozen base and no optimizer over it, 4 N T (2/3); head-only training the forward
alone (1/3). It ignores the adapters' own matmuls (VeRA's r 256 projections cannot reach it exactly) and
the anchor's work outside 6 N T (the embeddings' gradient and AdamW update: on small models the floor
comes out high, and an adapter can score below 1); docs/speed.md says more.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gc
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import variants
from bench.benchmarks import adapted_layers, speed_targets
from bench.benchmarks.inference_speed import INFERENCE_COLUMNS, latency
from bench.benchmarks.timing import Timing, timed
from bench.config.schemas import ModelConfig
from bench.config.store import group_options
from bench.inputs.models import RANDOM_INIT, model_config, random_init_model
from bench.run.compiled import COMPILE_MODES, PAD_MULTIPLE, compiled, wanted
from bench.run.device import pick_device
from bench.run.loop import StepHooks, checks_each_loss, make_optimizer, train_step
from variants.base import Targets, Variant
from variants.peft_twin import NO_PEFT_METHOD, twin, twin_class

Device = torch.device
Batch = dict[str, Tensor]
Row = dict[str, Any]
SEED = 0
LABELS = 2
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
ANCHOR = "full"
FLOOR_FRACTION = {"full": 1.0, "head": 1 / 3}  # every other variant (an adapter): 2 / 3
ADAPTER_FLOOR = 2 / 3
RUN_COLUMNS = ["shape", "targets", "batch", "seq", "steps", "warmup", "device", "compiled"]
COLUMNS = [
    "variant", "ours_ms", "peft_ms", "ours_vs_peft", "ours_vs_full", "floor_ms", "vs_floor", "first_step_s",
    "peft_note", *RUN_COLUMNS,
]  # fmt: skip


def shapes() -> list[str]:
    """The model configs (conf/model) whose architecture bench.benchmarks.speed can build at random init."""
    return [n for n in group_options("model") if model_config(n).family in RANDOM_INIT]


@dataclass
class Run:
    """One implementation of one variant, ready to step."""

    label: str  # e.g. "lora/peft"
    model: nn.Module
    optimizer: torch.optim.Optimizer
    hooks: StepHooks
    trainable: list[nn.Parameter] = field(init=False)  # for clipping, listed once as bench.run.loop does

    def __post_init__(self) -> None:
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]


@dataclass
class Measured:
    """One variant's times: our steps, peft's (None: not timed, see peft_note) and the inference row."""

    ours: Timing
    peft: Timing | None
    peft_note: str
    inference: Row | None  # a row of INFERENCE_COLUMNS; None with --no-inference
    targets: str  # the layers adapted: a preset or comma-separated module-name suffixes


# -- setup ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="peft-bench speed", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants", help="comma-separated registered variants (default: every registered variant)"
    )
    parser.add_argument(
        "--shape", default="roberta_base", choices=shapes(), help="a model config's architecture"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument(
        "--targets",
        help="for every variant: a preset of the model config or comma-separated module-name suffixes "
        "(default: each variant's own targets)",
    )
    parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda:N")
    parser.add_argument("--no-peft", action="store_true", help="time our implementations only")
    parser.add_argument(
        "--compile", default="auto", choices=COMPILE_MODES, help="torch.compile our models (auto: on CUDA)"
    )
    parser.add_argument("--no-inference", action="store_true", help="skip the inference latency")
    parser.add_argument(
        "--out",
        default="results/speed.csv",
        help="CSV of the step rows; inference rows: <stem>_inference.csv",
    )
    parser.add_argument("--json", help="also write the rows, inference rows and target ratios to this file")
    args = parser.parse_args(argv)
    known = variants.available()
    if args.variants is None:
        args.variants = list(known)
    else:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in known]
    if unknown or not args.variants:
        parser.error(f"unknown variant(s) {unknown or args.variants}; available: {', '.join(known)}")
    for name in ("batch", "seq", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    unknown = adapted_layers.unknown_targets(args.targets, model_config(args.shape), LABELS)
    if unknown:
        presets = ", ".join(model_config(args.shape).targets)
        parser.error(
            f"unknown --targets {args.targets!r} for {args.shape}; choose one of {presets}, or module-name "
            f"suffixes of its modules (none ends with {', '.join(unknown)})"
        )
    if ANCHOR not in args.variants:
        args.variants.append(ANCHOR)  # the ratios are measured against it
    return args


def device_name(device: Device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


def base_model(cfg: ModelConfig, seq: int, seed: int) -> nn.Module:
    """A random-init sequence classifier of ``cfg``'s architecture (on CPU; every run copies it)."""
    return random_init_model(replace(cfg, max_length=max(512, seq)), LABELS, seed).train()


def padded_length(seq: int, compiling: bool) -> int:
    """A batch's length: ``seq``, rounded up to PAD_MULTIPLE when compiled (as training pads then)."""
    return math.ceil(seq / PAD_MULTIPLE) * PAD_MULTIPLE if compiling else seq


def make_batch(cfg: ModelConfig, batch: int, seq: int, seed: int, device: Device, length: int = 0) -> Batch:
    """``seq`` random token ids (no special tokens) and random labels, padded with masked tokens up to
    ``length`` when that is longer."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, cfg.vocab_size, (batch, max(seq, length)), generator=g)
    labels = torch.randint(0, LABELS, (batch,), generator=g)
    mask = torch.ones_like(ids)
    mask[:, seq:] = 0
    data = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    return {k: v.to(device) for k, v in data.items()}


def variant_options(name: str, total_steps: int, cfg: ModelConfig) -> dict[str, Any]:
    """Each variant's defaults and its twin's benchmark_options, a rank above the hidden size capped (see
    the top)."""
    cls = variants.get(name)
    rank = getattr(cls.Config(), "r", None)
    capped = {"r": cfg.hidden_size} if isinstance(rank, int) and rank > cfg.hidden_size else {}
    return {**capped, **twin_class(cls).benchmark_options(total_steps)}


def our_run(
    name: str, options: dict[str, Any], base: nn.Module, targets: Targets, device: Device
) -> tuple[Variant, Run]:
    variant = variants.build(name, options)
    model = copy.deepcopy(base).to(device)
    torch.manual_seed(SEED)
    variant.apply(model, targets)
    optimizer = make_optimizer(variant.param_groups(model, variant.config.lr, WEIGHT_DECAY), device)
    return variant, Run(label=f"{name}/ours", model=model, optimizer=optimizer, hooks=variant)


# -- peft's side ---------------------------------------------------------------------------------
def peft_run(variant: Variant, ours: nn.Module, base: nn.Module, device: Device) -> Run:
    """peft's version of ``variant`` (its twin) on its base from ``base``, from the config ours saves."""
    peft = twin(variant)
    model = peft.base(base, device)
    torch.manual_seed(SEED)
    model = peft.model(ours, model)
    optimizer = peft.optimizer(model, variant.config.lr, WEIGHT_DECAY)
    return Run(label=f"{variant.name}/peft", model=model, optimizer=optimizer, hooks=peft)


# -- timing --------------------------------------------------------------------------------------
def time_runs(
    runs: list[Run], batch: Batch, warmup: int, steps: int, device: Device, bar: tqdm
) -> list[Timing]:
    """Each run's first step and median step after ``warmup``; the runs' steps are interleaved."""
    total = warmup + steps
    times: list[list[float]] = [[] for _ in runs]
    for step in range(1, total + 1):
        for run, ms in zip(runs, times, strict=True):
            bar.set_description(run.label)
            t, _ = timed(
                lambda run=run, step=step: train_step(
                    run.model, run.hooks, run.optimizer, [batch], step, total, device, MAX_GRAD_NORM,
                    trainable=run.trainable, check_loss=checks_each_loss(device),
                ),
                device,
            )  # fmt: skip
            ms.append(t)
            bar.update(1)
    return [Timing.of(ms, warmup) for ms in times]


def release(device: Device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure(args: argparse.Namespace, device: Device) -> dict[str, Measured]:
    """Step times of every variant asked for, ours (compiled when asked) and peft's, then ours' inference."""
    model_cfg = model_config(args.shape)
    base = base_model(model_cfg, args.seq, SEED)
    compiling = wanted(args.compile, device)
    batch = make_batch(model_cfg, args.batch, args.seq, SEED, device, padded_length(args.seq, compiling))
    infer_base = None if args.no_inference else compiled(copy.deepcopy(base).to(device), args.compile, device)
    total = args.warmup + args.steps
    skips = {
        n: "--no-peft" if args.no_peft else twin(variants.get(n)()).unavailable(device) for n in args.variants
    }
    n_runs = sum(1 if skips[n] else 2 for n in args.variants)
    measured = {}
    with tqdm(total=n_runs * total, unit="step", dynamic_ncols=True, disable=None) as bar:
        for name in args.variants:
            options = variant_options(name, total, model_cfg)
            label, targets = adapted_layers.variant_targets(name, model_cfg, args.targets)
            variant, ours = our_run(name, options, base, targets, device)
            runs = [ours] if skips[name] else [ours, peft_run(variant, ours.model, base, device)]
            compiled(ours.model, args.compile, device)
            timings = time_runs(runs, batch, args.warmup, args.steps, device, bar)
            del runs
            release(device)
            inference = None
            if infer_base is not None:  # on the trained model: its adapters are no longer at their init
                inference = latency(
                    infer_base, variant, ours.model, batch, args.warmup, args.steps, device, bar
                )
            peft = timings[1] if len(timings) > 1 else None
            measured[name] = Measured(timings[0], peft, skips[name] or "", inference, label)
            del variant, ours
            release(device)
    return measured


# -- report --------------------------------------------------------------------------------------
def run_columns(args: argparse.Namespace, device: Device) -> Row:
    """What every row says about the run (RUN_COLUMNS but the variant's targets)."""
    return {
        "shape": args.shape, "batch": args.batch, "seq": args.seq,
        "steps": args.steps, "warmup": args.warmup, "device": device_name(device),
        "compiled": "ours" if wanted(args.compile, device) else "none",
    }  # fmt: skip


def rows_from(measured: dict[str, Measured], args: argparse.Namespace, device: Device) -> list[Row]:
    """CSV rows; every ratio is computed from times measured in this run."""
    full_ms = measured[ANCHOR].ours.median_ms
    run = run_columns(args, device)
    rows = []
    for name in args.variants:
        m = measured[name]
        ours_ms, peft_ms = m.ours.median_ms, m.peft.median_ms if m.peft else None
        floor_ms = FLOOR_FRACTION.get(name, ADAPTER_FLOOR) * full_ms
        rows.append({
            "variant": name,
            "ours_ms": round(ours_ms, 3),
            "peft_ms": round(peft_ms, 3) if peft_ms is not None else "",
            "ours_vs_peft": round(ours_ms / peft_ms, 4) if peft_ms is not None else "",
            "ours_vs_full": round(ours_ms / full_ms, 4),
            "floor_ms": round(floor_ms, 3),
            "vs_floor": round(ours_ms / floor_ms, 4),
            "first_step_s": round(m.ours.first_ms / 1e3, 3),
            "peft_note": m.peft_note,
            "targets": m.targets,
            **run,
        })  # fmt: skip
    return rows


def inference_rows(measured: dict[str, Measured], args: argparse.Namespace, device: Device) -> list[Row]:
    run = run_columns(args, device)
    return [
        {**m.inference, "targets": m.targets, **run} for m in measured.values() if m.inference is not None
    ]


def print_rows(rows: list[Row], columns: dict[str, str]) -> None:
    """``rows`` as a table of ``columns`` (key -> header), the first one left-aligned."""
    (first, *rest) = columns
    print(f"{columns[first]:<10}" + "".join(f"{columns[k]:>12}" for k in rest))
    for row in rows:
        print(f"{row[first]:<10}" + "".join(f"{_cell(row[k]):>12}" for k in rest))


def print_table(rows: list[Row]) -> None:
    print_rows(rows, {
        "variant": "variant", "ours_ms": "ours ms", "peft_ms": "peft ms", "ours_vs_peft": "ours/peft",
        "ours_vs_full": "ours/full", "floor_ms": "floor ms", "vs_floor": "vs floor",
        "first_step_s": "1st step s",
    })  # fmt: skip
    for row in rows:
        if row["peft_note"] not in ("", NO_PEFT_METHOD):
            print(f"peft {row['variant']}: skipped, {row['peft_note']}")
    r = rows[0]
    compiling = r["compiled"] != "none"
    padded = padded_length(r["seq"], compiling)
    seq = f"{r['seq']} (padded to {padded})" if padded != r["seq"] else r["seq"]
    (targets, *more) = sorted({row["targets"] for row in rows})
    targets = "each variant's own targets (the CSV's targets column)" if more else f"{targets} targets"
    print(
        f"{r['shape']}, {targets}, batch {r['batch']} x seq {seq}, median of {r['steps']} "
        f"steps after {r['warmup']} warm-up, on {r['device']}; floor = fraction x full ms, "
        "vs floor = ours / floor"
    )
    sides = "ours (torch.compile; its 1st step holds the compile), peft's eager" if compiling else "none"
    print(f"compiled: {sides}")


def print_inference(rows: list[Row]) -> None:
    print("\ninference: one forward in eval mode under torch.inference_mode, ours only")
    print_rows(rows, {
        "variant": "variant", "base_ms": "base ms", "unmerged_ms": "unmerged ms", "merged_ms": "merged ms",
        "unmerged_vs_base": "unmerged/b", "merged_vs_base": "merged/b", "merged_max_diff": "max |diff|",
    })  # fmt: skip
    for row in rows:
        if row["merge_note"]:
            print(f"{row['variant']}: merged -, {row['merge_note']}")
    print(
        f"median of {rows[0]['steps']} forwards after {rows[0]['warmup']}, base / unmerged / merged "
        "interleaved (merged: merge before the forward, unmerge after, neither timed); /b = / base ms; "
        "max |diff| = largest gap of the merged and unmerged logits"
    )


def _cell(value: float | str) -> str:
    if value == "":
        return "-"
    return f"{value:.1f}" if isinstance(value, float) and value >= 10 else f"{value:.3g}"


def write_csv(rows: list[Row], columns: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def inference_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_inference{out.suffix}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = pick_device(args.device)
    except ValueError as e:
        raise SystemExit(f"--device: {e}") from None
    if wanted(args.compile, device) and args.warmup < 1:
        raise SystemExit(
            f"--compile {args.compile} compiles on {device.type}: it needs --warmup >= 1 (the first step "
            "compiles, and is not to be timed)"
        )
    measured = measure(args, device)
    rows, inference = rows_from(measured, args, device), inference_rows(measured, args, device)
    adapters = [n for n in variants.available() if variants.get(n).peft_type]
    ratios = speed_targets.ratios(rows, adapters, device.type)
    print_table(rows)
    if inference:
        print_inference(inference)
    speed_targets.print_summary(ratios, device.type, args.shape)
    out = Path(args.out)
    write_csv(rows, COLUMNS, out)
    written = [out]
    if inference:
        write_csv(inference, [*INFERENCE_COLUMNS, *RUN_COLUMNS], inference_path(out))
        written.append(inference_path(out))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"rows": rows, "inference": inference, "ratios": [r.as_dict() for r in ratios]}
        path.write_text(json.dumps(doc, indent=1) + "\n")
        written.append(path)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
