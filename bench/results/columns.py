"""The columns of the runs CSV (``<results>/runs.csv``), one row per run, in this order."""

RUNS_COLUMNS = [
    "timestamp",  # ISO time the run ended
    "run_name",  # variant-task-s<seed>
    "status",  # completed | failed | diverged | oom | interrupted (Ctrl-C; rerun by the same command)
    "variant",
    "task",
    "model",
    "seed",
    "main_metric",  # name of the task's main metric, e.g. accuracy
    "score",  # test main metric at the selected epoch (raw scale: 0..1 for accuracy, -1..1 for correlations)
    "dev_score",  # dev main metric at the selected epoch (what selects; empty with select_on=test)
    "select_on",  # dev (the best epoch by the dev set) | test (the papers' convention)
    "best_epoch",  # the selected epoch
    "final_score",  # test main metric at the last evaluation
    "chance_score",  # test main metric of the train majority class (regression: 0, a constant)
    "metrics",  # JSON: every metric (dev/..., test/...) at the selected epoch
    "final_metrics",  # JSON: every metric at the last evaluation
    "hparams",  # JSON: key hyperparameters (lr, epochs, batch size, the variant's options)
    "label_hparams",  # JSON list: the hparams naming its configuration (lr, key_hparams)
    "settings",  # JSON: the resolved config minus the seed and HASH_IGNORED, as dotted keys
    "lr",
    "trainable_params",
    "total_params",
    "pct_trainable",
    "peak_memory_mb",  # training peak from the built model on (bench.run.memory)
    "model_mb",  # the model's parameters and buffers as held (frozen + trainable; NF4 codes for QLoRA)
    "memory_breakdown_mb",  # JSON: a training step's memory by what holds it (MEMORY_PARTS)
    "train_time_s",
    "train_samples_per_s",
    "adapter_mb",
    "config_hash",  # one per run (the resolved config, seed included; resume matches it)
    "config_key",  # one per configuration: config_hash without the seed (a leaderboard row)
    "sweep",  # sweep folder (empty for a single run)
    "run_dir",
    "git_commit",
    "error",  # one line, for failed runs
]
ADDED_COLUMNS = (  # absent from CSVs written before them: read as empty (placed as in RUNS_COLUMNS)
    "label_hparams",
    "settings",
    "model_mb",
    "config_key",
    "dev_score",
    "select_on",
    "chance_score",
    "memory_breakdown_mb",
)
# the keys of memory_breakdown_mb (bench.run.memory_breakdown)
MEMORY_PARTS = ("frozen_weights", "trainable_weights", "gradients", "optimizer_state", "activations", "peak")
