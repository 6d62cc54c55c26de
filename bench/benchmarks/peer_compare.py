"""End-to-end peer benchmark: our runner against the Hugging Face ``Trainer`` + peft recipe, LoRA on a task.

    python -m bench peer_compare                   # rt_polarity, MiniLM, 2,000 train, 1 epoch, batch 32
    python -m bench peer_compare --repeats 3 --json results/peer_compare.json

Both sides train LoRA (r 8 on query and value, our LoRA's alpha and dropout; the head trained in full) on
the same data with the same hyperparameters, at the lr the tuned comparison selected for LoRA on the task
(``--lr``: a paper lr leaves both near chance on this budget, where agreement says little), then report
train samples/s, train time and the test metrics:

- ours: ``bench.run.runner.run`` on the config ``python -m bench train`` composes from ``budget=cpu_short``
  (length 64, test splits capped at 1,000 examples) with ``variant=lora``, ``--task``, ``--model``,
  ``--train-samples``, ``--epochs``, ``--batch``, ``--seed`` and ``--device``, in a temporary results
  folder; samples/s, train time and the test metrics are read back from its ``metrics.json``
  (``train_samples_per_s``, ``train_time_s``, ``final``). Its train time leaves out the evaluation
  after each epoch.
- peer: what a user writes with transformers and peft (``Trainer``, ``TrainingArguments``,
  ``DataCollatorWithPadding``, ``get_peft_model`` with ``LoraConfig(task_type="SEQ_CLS")``), evaluation
  at the end only, no saving, ``report_to=[]``, ``use_cpu`` on CPU and bf16 on CUDA (our autocast). Its
  samples/s and train time are the Trainer's own ``train_samples_per_second`` and ``train_runtime``;
  the test metrics are ``bench.inputs.metrics.compute_metrics`` on ``Trainer.predict``'s logits.

The same for both: the task's examples (``bench.inputs.tasks.load_task`` on the composed task config: the same
train subset and test split), the tokenization (``bench.inputs.batching.tokenize``), the base model and its
head's
initial weights (``bench.inputs.models.load_model`` with the seed), the lr, batch size, epochs, weight decay,
clipping (max_grad_norm), gradient accumulation, and the warmup: the runner's step count
(``int(warmup_ratio * steps)``), passed to the Trainer as ``warmup_steps``, then linear decay to 0.

What differs, as each side does it by default: ours batches examples of similar length (less padding)
where the Trainer samples uniformly; the LoRA A matrices and the data order come from different random
draws; both use torch's fused AdamW (the Trainer's default in transformers 5.24 with torch >= 2.8;
ours: ``bench.run.loop.make_optimizer``); our warmup starts at lr / (warmup + 1), the Trainer's at 0. So
the two test metrics agree within the noise of a seed, not exactly: the table prints both, their
difference, and for an accuracy twice the binomial standard error of that difference on the test
examples (the bar it should stay under).

With ``--repeats`` the runs alternate (ours, peer, peer, ours, ...) so that a drift in machine load hits
both alike; the ratio ours / peer is that of the medians of samples/s. Every repeat uses the same seed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bench.benchmarks.speed import device_name
from bench.config.schemas import ModelConfig, TaskConfig, TrainConfig
from bench.config.store import compose, group_options, selected_lr
from bench.inputs import batching
from bench.inputs.metrics import TEST, compute_metrics, metric_key
from bench.inputs.models import load_model, load_tokenizer, resolve_targets
from bench.inputs.tasks import TaskData, load_task
from bench.plural import plural
from bench.results.run_folder import RunFolder
from bench.run import loop, runner
from bench.run.device import pick_device
from bench.run.phases import seed_everything
from bench.run.spec import make_dataclass, trained_lr

OURS, PEER = "ours", "peer"
LORA = {"r": 8, "targets": "attention"}  # attention: query and value; alpha and dropout: our LoRA's defaults
TUNED = "compare"  # conf/selected/compare.yaml: the lrs experiment=compare selected (as experiment=demo)
PEER_PACKAGES = ("peft", "accelerate")  # accelerate: the Trainer's
DEVICES = ("auto", "cpu", "cuda", "mps")  # the Trainer picks the device index itself
Row = dict[str, Any]


class Setup:
    """The composed config both sides train from, and the task's data (loaded once, for the peer)."""

    def __init__(self, args: argparse.Namespace):
        self.overrides = [
            "budget=cpu_short",
            "variant=lora",
            f"task={args.task}",
            f"model={args.model}",
            f"task.max_train_samples={args.train_samples}",
            f"train.epochs={args.epochs}",
            f"train.batch_size={args.batch}",
            f"seed={args.seed}",
            f"device={args.device}",
            *(f"variant.{k}={v}" for k, v in LORA.items()),
            f"train.lr={tuned_lr(args.task) if args.lr == 'tuned' else args.lr}",
        ]
        container = OmegaConf.to_container(compose(self.overrides), resolve=True)
        self.model = make_dataclass(ModelConfig, container["model"])
        self.task = make_dataclass(TaskConfig, container["task"])
        self.train = make_dataclass(TrainConfig, container["train"])
        self.variant = container["variant"]
        self.lr = trained_lr(self.train, self.variant)
        self.seed = args.seed
        self.device = pick_device(args.device)
        self.data: TaskData = load_task(self.task, with_dev=False)
        self.main = f"{TEST}/{self.task.main_metric}"

    def test_size(self) -> int:
        """Examples of the test split the main metric comes from."""
        for split, suffix in self.task.eval_splits.items():
            if self.task.main_metric in (metric_key(m, suffix) for m in self.task.metrics):
                return len(self.data.evals[split])
        raise ValueError(f"task {self.task.name!r}: no test split reports {self.task.main_metric!r}")


def tuned_lr(task: str) -> float | str:
    """The lr the tuned comparison selected for LoRA on ``task``, else LoRA's own (null)."""
    lr = selected_lr(TUNED, task, "lora")
    return "null" if lr is None else lr


def run_ours(setup: Setup, repeat: int) -> Row:
    """Our runner on the composed config, results in a temporary folder; the numbers from metrics.json."""
    with tempfile.TemporaryDirectory(prefix="peer-compare-") as tmp:
        run_dir = Path(tmp) / "run"
        runner.run(compose([*setup.overrides, f"paths.results={tmp}"]), run_dir)
        m = RunFolder(run_dir).metrics()
    if m["status"] != "completed":
        raise RuntimeError(f"our run ended {m['status']}: {m['error']}")
    tests = {k: v for k, v in m["final"].items() if k.startswith(f"{TEST}/")}
    return row(OURS, repeat, m["train_samples_per_s"], m["train_time_s"], m["trainable_params"], setup, tests)


def run_peer(setup: Setup, repeat: int) -> Row:
    """The Trainer + peft recipe on the same examples, tokenization, base model and hyperparameters."""
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    task, train_cfg, device = setup.task, setup.train, setup.device
    tokenizer = load_tokenizer(setup.model)

    def encode(ds) -> list[dict]:
        examples = batching.tokenize(
            ds, tokenizer, task.text_fields, setup.model.max_length, task.num_labels == 1
        )
        return [{k: v for k, v in e.items() if k != "idx"} for e in examples]  # the model takes no idx

    train = encode(setup.data.train)
    batches = math.ceil(len(train) / train_cfg.batch_size)
    steps = loop.total_steps(batches, train_cfg)
    model = load_model(setup.model, task.num_labels, seed=setup.seed)
    seed_everything(setup.seed)  # the LoRA weights' draws, as the runner seeds before adapting
    lora = LoraConfig(
        r=setup.variant["r"],
        lora_alpha=setup.variant["alpha"],
        lora_dropout=setup.variant["dropout"],
        target_modules=resolve_targets(setup.model, setup.variant["targets"]).modules,
        task_type="SEQ_CLS",  # peft trains the classifier head in full (modules_to_save)
    )
    model = get_peft_model(model, lora)
    with tempfile.TemporaryDirectory(prefix="peer-compare-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=train_cfg.batch_size,
            per_device_eval_batch_size=train_cfg.eval_batch_size,
            gradient_accumulation_steps=train_cfg.grad_accum,
            num_train_epochs=train_cfg.epochs,
            max_steps=train_cfg.max_steps or -1,
            learning_rate=setup.lr,
            lr_scheduler_type="linear",
            # bench.run.loop.Fit's count; a ratio (warmup_steps < 1 in transformers 5.24, which has no
            # warmup_ratio) would be rounded up (TrainingArguments.get_warmup_steps)
            warmup_steps=int(train_cfg.warmup_ratio * steps),
            weight_decay=train_cfg.weight_decay,
            max_grad_norm=train_cfg.max_grad_norm,
            seed=setup.seed,
            eval_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=device.type == "cpu",
            bf16=device.type == "cuda",
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer)
        )
        timing = trainer.train().metrics
        outputs = {}
        for split, ds in setup.data.evals.items():
            predicted = trainer.predict(encode(ds))
            outputs[split] = (predicted.predictions, predicted.label_ids)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tests = compute_metrics(task, outputs)
    return row(
        PEER, repeat, timing["train_samples_per_second"], timing["train_runtime"], trainable, setup, tests
    )


def row(
    implementation: str,
    repeat: int,
    samples_per_s: float,
    train_time_s: float,
    trainable: int,
    setup: Setup,
    tests: dict[str, float],
) -> Row:
    return {
        "implementation": implementation,
        "repeat": repeat,
        "samples_per_s": samples_per_s,
        "train_time_s": train_time_s,
        "trainable_params": trainable,
        "score": tests[setup.main],
        "metrics": tests,
    }


def measure(setup: Setup, repeats: int) -> list[Row]:
    """``repeats`` runs of each side, alternating: ours, peer, peer, ours, ..."""
    sides: list[Callable[[Setup, int], Row]] = [run_ours, run_peer]
    rows = []
    for repeat in range(1, repeats + 1):
        for side in sides if repeat % 2 else sides[::-1]:
            rows.append(side(setup, repeat))
    return rows


def summarize(rows: list[Row], test_size: int, accuracy: bool) -> dict[str, Any]:
    """Medians of each side, the samples/s ratio ours / peer, and the score difference with its noise
    bar: for an accuracy, twice the binomial standard error of a difference of two accuracies on
    ``test_size`` examples (None for another metric)."""
    med = {
        side: {
            key: statistics.median(r[key] for r in rows if r["implementation"] == side)
            for key in ("samples_per_s", "train_time_s", "score")
        }
        for side in (OURS, PEER)
    }
    ours, peer = med[OURS]["score"], med[PEER]["score"]
    noise = None
    if accuracy:
        noise = 2 * math.sqrt((ours * (1 - ours) + peer * (1 - peer)) / test_size)
    difference = ours - peer
    return {
        "ours": med[OURS],
        "peer": med[PEER],
        "ratio": med[OURS]["samples_per_s"] / med[PEER]["samples_per_s"],
        "difference": difference,
        "noise": noise,
        "agree": None if noise is None else abs(difference) <= noise,
    }


def settings(setup: Setup, repeats: int) -> dict[str, Any]:
    return {
        "task": setup.task.name,
        "model": setup.model.name,
        "train_examples": len(setup.data.train),
        "test_examples": setup.test_size(),
        "epochs": setup.train.epochs,
        "batch": setup.train.batch_size,
        "max_length": setup.model.max_length,
        "lr": setup.lr,
        "lora": {k: setup.variant[k] for k in ("r", "alpha", "dropout")},
        "target_modules": resolve_targets(setup.model, setup.variant["targets"]).modules,
        "seed": setup.seed,
        "device": device_name(setup.device),
        "repeats": repeats,
        "metric": setup.main,
    }


def print_table(rows: list[Row], summary: dict[str, Any], info: dict[str, Any]) -> None:
    metric = info["metric"]
    print(f"{'implementation':<16}{'repeat':>7}{'samples/s':>11}{'train s':>9}{'trainable':>11}{metric:>15}")
    for r in rows:
        print(
            f"{r['implementation']:<16}{r['repeat']:>7}{r['samples_per_s']:>11.1f}{r['train_time_s']:>9.1f}"
            f"{r['trainable_params']:>11,}{r['score']:>15.4f}"
        )
    median = "median of each side" if info["repeats"] > 1 else "one run each"
    print(f"samples/s ours / peer: {summary['ratio']:.2f} ({median})")
    verdict = "no noise bar for this metric"
    if summary["noise"] is not None:
        within = "agree within noise" if summary["agree"] else "DIFFER by more than the noise"
        verdict = (
            f"{within} (2 s.e. of a difference on {info['test_examples']:,} examples: {summary['noise']:.4f})"
        )
    print(
        f"{metric}: ours {summary['ours']['score']:.4f}, peer {summary['peer']['score']:.4f}, "
        f"difference {summary['difference']:+.4f}: {verdict}"
    )
    lora = info["lora"]
    print(
        f"{info['task']} with {info['model']} on {info['device']}: {info['train_examples']:,} train, "
        f"{info['test_examples']:,} test examples, {plural(info['epochs'], 'epoch')}, batch {info['batch']}, "
        f"length {info['max_length']}, lr {info['lr']:g}, LoRA r {lora['r']} alpha {lora['alpha']:g} "
        f"dropout {lora['dropout']:g} on {', '.join(info['target_modules'])}, seed {info['seed']}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="peft-bench peer_compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="rt_polarity", help="a task config (conf/task)")
    parser.add_argument("--model", default="minilm", help="a model config (conf/model)")
    parser.add_argument("--train-samples", type=int, default=2000, help="training examples (seeded subset)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32, help="training batch size")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, alternating")
    parser.add_argument(
        "--lr",
        default="tuned",
        help="a learning rate, or tuned (default): the lr experiment=compare selected for LoRA on the task "
        "(conf/selected/compare.yaml), else LoRA's own",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)}")
    parser.add_argument("--json", type=Path, help="write the settings, rows and summary to this file")
    args = parser.parse_args(argv)
    for group in ("task", "model"):
        options = group_options(group)
        if getattr(args, group) not in options:
            parser.error(f"unknown --{group} {getattr(args, group)!r}; choose one of {', '.join(options)}")
    if args.lr != "tuned":
        try:
            valid = math.isfinite(float(args.lr)) and float(args.lr) > 0
        except ValueError:
            valid = False
        if not valid:
            parser.error(f"--lr={args.lr} is not valid: it must be tuned or a finite number > 0")
    for name in ("train_samples", "epochs", "batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} is not valid: it must be >= 1")
    if args.device not in DEVICES:
        parser.error(f"unknown --device {args.device!r}; choose one of {', '.join(DEVICES)}")
    try:
        pick_device(args.device)
    except ValueError as e:
        parser.error(f"--device: {e}")
    return args


def check_peer_installed() -> None:
    """Exit with the install command when the peer's packages are missing (before any training)."""
    missing = [name for name in PEER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"error: the peer side needs {', '.join(missing)}: pip install 'peft-bench[reference]'"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_peer_installed()
    setup = Setup(args)
    rows = measure(setup, args.repeats)
    info = settings(setup, args.repeats)
    summary = summarize(rows, info["test_examples"], setup.task.main_metric.startswith("accuracy"))
    print_table(rows, summary, info)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"settings": info, "rows": rows, "summary": summary}, indent=2) + "\n"
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
