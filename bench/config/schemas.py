"""The structured-config schemas: one dataclass per config section, holding its defaults.

``bench.config.store`` registers them in Hydra's ConfigStore, so every YAML file of a group extends its
schema. This module imports the standard library and ``bench.config.hash_policy`` only (no torch, no
Hydra), so anything that reads a config (the hash, the analysis commands) starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.config.hash_policy import hashed_if_set, not_hashed

MISSING: Any = "???"  # omegaconf.MISSING: a value the config must set
# The targets presets of a BERT-like model: the module-name suffixes of its attention and MLP linears.
BERT_TARGETS = {
    "attention": ["query", "value"],
    "attention_all": ["query", "key", "value", "attention.output.dense"],
    "all_linear": ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
}


@dataclass
class ModelConfig:
    """Schema of `model=`."""

    name: str = MISSING
    source: str = "hub"  # minilm | tiny | hub
    pretrained: str | None = None  # Hub id or local folder (source=hub)
    max_length: int = 128
    head: list[str] = field(default_factory=lambda: ["classifier"])
    targets: dict[str, list[str]] = field(default_factory=lambda: dict(BERT_TARGETS))
    # Architecture, as in the checkpoint's config.json (source=tiny: the random-init model's own).
    family: str = MISSING  # transformers' model_type: bert | roberta | deberta-v2
    vocab_size: int = MISSING
    hidden_size: int = MISSING
    num_layers: int = MISSING
    num_heads: int = MISSING
    intermediate_size: int = MISSING
    # Hidden and attention dropout; None: the checkpoint's own (0.1 for BERT, RoBERTa and MiniLM)
    dropout: float | None = hashed_if_set(None)


@dataclass
class TaskConfig:
    """Schema of `task=`."""

    name: str = MISSING
    source: str = "glue"  # glue | vader | packaged | local
    text_fields: list[str] = MISSING  # e.g. [sentence] or [sentence1, sentence2]
    num_labels: int = MISSING  # 1 means regression
    metrics: list[str] = MISSING  # e.g. [accuracy, f1]
    main_metric: str = MISSING  # a metric name, plus _<suffix> for suffixed splits (MNLI: accuracy_m)
    eval_splits: dict[str, str] = MISSING  # the test splits -> metric suffix: {validation: ""}
    dev_split: str | None = None  # a source split used as the dev set; None: carve dev_size from train
    dev_size: float = 0.1  # carved dev set: a fraction of train (< 1) or a number of examples (>= 1)
    label_names: list[str] = field(default_factory=list)  # id order; maps label strings in local files
    # Regression: [low, high], the targets' declared range; a label outside it (or not finite) is refused
    # where the data loads. A check, not a setting: not hashed.
    label_range: list[float] | None = not_hashed(None)
    data_dir: str | None = (
        None  # local GLUE TSV / CSV / JSON / parquet files (vader, packaged: the archive's)
    )
    # The digest of the files the task reads from data_dir, set by the run (bench.inputs.fingerprint), never
    # by hand; null (and not hashed) for data fixed by a checksum of its own (vader, the Hub).
    data_fingerprint: str | None = hashed_if_set(None)
    max_train_samples: int | None = None  # seeded subsample for quick runs
    max_eval_samples: int | None = None  # dev and each test split (dev only when max_test_samples is set)
    max_test_samples: int | None = hashed_if_set(None)  # each test split; None: max_eval_samples caps them
    split_seed: int = 0  # seed of the vader splits and of subsampling
    hub_path: str = "nyu-mll/glue"
    hub_config: str | None = None  # default: name
    # GLUE TSV files (source=glue with data_dir): our column (text field or label) -> the TSV's header
    # name, or its 0-based position when the files have no header (tsv_header false). Empty: no TSV.
    tsv_columns: dict[str, Any] = field(default_factory=dict)
    tsv_header: bool = True
    # vader: movieReviewSnippets | tweets | amazonReviewSnippets | nytEditorialSnippets
    vader_corpus: str | None = None
    neutral_band: float = 0.5  # vader polarity tasks drop examples with |mean rating| < this
    # vader: the test part's share of the corpus, in (0, 0.9) (validation stays n // 10, train the rest);
    # None: n // 10. The vader task configs take it from the budget's vader_test_fraction.
    test_fraction: float | None = hashed_if_set(None)
    packaged_set: str | None = hashed_if_set(None)  # packaged: a set of bench.inputs.packaged_sets.SETS


@dataclass
class TrainConfig:
    """The training loop's settings (`train.*`)."""

    lr: float | None = None  # None: the variant's recommended lr (variant.lr)
    lr_scale: float = 1.0  # multiplies that lr: the grid of experiment=compare (x1, x4, x16, x64)
    epochs: int = 3
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs when smaller)
    batch_size: int = 32
    eval_batch_size: int = 128
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    eval_every_steps: int = 0  # 0: evaluate at the end of every epoch only
    # the test splits at every evaluation too (their curves in history.jsonl); by default dev alone, and
    # the test splits once at the end on the selected and the final state, with the same numbers
    test_every_epoch: bool = not_hashed(False)
    length_grouping: bool = True  # batches of similar length (less padding)
    num_workers: int = 0
    gradient_checkpointing: bool = not_hashed(False)  # recompute activations in backward: less memory
    save_adapter: bool = not_hashed(True)
    progress: str = not_hashed("auto")  # auto: a bar on a terminal, else log lines | bar | log | off
    # Checkpoints to resume a killed run from (bench.run.checkpoint); they do not change what a run computes.
    checkpoint_every_steps: int = not_hashed(0)  # 0: not by steps
    checkpoint_every_minutes: float = not_hashed(30.0)  # 0: not by time; shorter runs never write one
    keep_checkpoint: bool = not_hashed(False)  # keep the last checkpoint once the run has ended
    # torch.compile the model: auto (on CUDA) | on | off (bench.run.compiled)
    compile: str = not_hashed("auto")


@dataclass
class PathsConfig:
    """Where results go; the values are set once, in conf/train.yaml's ``paths:``."""

    results: str = MISSING  # $PEFT_BENCH_RESULTS, else results
    runs_csv: str = MISSING  # <results>/runs.csv: one row per run (bench.results.runs_csv)


@dataclass
class TuneConfig:
    """Staged tuning of an experiment's grid (``peft-bench tune``, bench.analysis.stages): an experiment
    tuned in stages states every count (``tune.top_k=2`` ... on the command line for any other); the
    seeds are its sweep's ``seed`` values, in order."""

    top_k: int = MISSING  # stage 2: this many points, the best on the first seeds, get more seeds
    first_seeds: int = MISSING  # stage 1: every point on this many seeds
    top_seeds: int = MISSING  # stage 2: the top_k points on this many seeds
    edge_cap: int = MISSING  # at most this many points past the grid on each side (widening at an edge)
    grid: str = "train.lr_scale"  # the swept setting whose points are tuned


@dataclass
class RootConfig:
    """Schema of the whole config (``conf/train.yaml``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    variant: Any = None
    logger: Any = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    # dev: the best epoch (and in the leaderboard the lr) is selected on the dev set and the test splits
    # are reported; test: the papers' convention, best epoch on the reported split (paper experiments only)
    select_on: str = "dev"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    resume: bool = True  # skip a run whose config hash already completed
    force: bool = False  # rerun even when completed
    # refuse to start when the code (bench/, variants/, conf/) has uncommitted changes (bench.run.provenance)
    require_clean_code: bool = not_hashed(False)
    experiment_name: str = "default"
    tune: TuneConfig = field(default_factory=TuneConfig)  # staged tuning; not hashed: it chooses runs
    # A budget's task.test_fraction for the vader tasks alone (their configs read it; a task of another
    # source has no test part of that kind). Not hashed: task.test_fraction is, where it applies.
    vader_test_fraction: float | None = None
