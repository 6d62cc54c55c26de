"""Rebuild a finished run from its folder: the variant, the model with its adapter, the tokenizer and
the evaluated splits (dev and test), to look at predictions or keep using the model.

    from bench.tools.reload import load_run, predict
    run = load_run("results/runs/2026-01-01_12-00-00_lora-rt_polarity-s0")
    run.evals["test"][0]              # {"sentence": ..., "label": ..., "idx": ...}
    predict(run)["test"]              # logits, one row per example, as in predictions.csv

It reads ``config.yaml`` and ``adapter/`` and calls the same functions as the runner (bench.inputs.models,
bench.inputs.tasks, bench.inputs.batching, variants.build, Variant.load_adapter_state_dict). Each eval split
is in predictions.csv's order: by ``idx``, the example's index in its source split.

The base model is checked against the fingerprint of the base the adapter was trained on
(``adapter/base_model.json``, ``bench.results.adapter_files.check_base``): another base with the same
shapes but other weights is refused, unless ``allow_other_base=True`` (then warned).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file

import variants
from bench.config.schemas import ModelConfig, TaskConfig
from bench.inputs import batching
from bench.inputs.metrics import DEV
from bench.inputs.models import load_model, load_tokenizer, resolve_targets
from bench.inputs.tasks import load_task
from bench.results.adapter_files import base_fingerprint, check_base
from bench.results.run_folder import RunFolder
from bench.run.evaluation import evaluator
from bench.run.phases import seed_everything
from bench.run.spec import make_dataclass
from variants.base import Variant


@dataclass
class LoadedRun:
    """A run rebuilt from its folder (see ``load_run``)."""

    run_dir: Path
    config: DictConfig  # the run's config.yaml
    variant: Variant
    model: torch.nn.Module  # the base model with the run's adapter loaded, in eval mode
    tokenizer: object
    model_cfg: ModelConfig
    task: TaskConfig
    evals: dict[str, datasets.Dataset]  # dev and test splits -> examples sorted by idx, as in predictions.csv
    device: torch.device


def load_run(run_dir: str | Path, device: str = "cpu", allow_other_base: bool = False) -> LoadedRun:
    """The run of ``run_dir`` rebuilt from its ``config.yaml`` and ``adapter/`` (saved when
    train.save_adapter is true, the default). A base model whose weights differ from those the adapter
    was trained on is refused (a ValueError naming both fingerprints), or with ``allow_other_base``
    warned about."""
    folder = RunFolder(run_dir)
    adapter = folder.adapter_weights_path
    if not adapter.is_file():
        raise FileNotFoundError(
            f"{folder.path} has no saved adapter ({adapter}); was train.save_adapter false?"
        )
    cfg = folder.config()
    container = OmegaConf.to_container(cfg, resolve=True)
    model_cfg = make_dataclass(ModelConfig, container["model"])
    task_cfg = make_dataclass(TaskConfig, container["task"])
    variant = variants.build(container["variant"]["name"], container["variant"])
    seed_everything(cfg.seed)
    model = load_model(model_cfg, task_cfg.num_labels, seed=cfg.seed, **variant.load_kwargs())
    targets = resolve_targets(model_cfg, variant.config.targets)
    check_base(folder.adapter_path, base_fingerprint(model, targets.head), allow_other_base)
    variant.apply(model, targets)
    variant.load_adapter_state_dict(model, load_file(str(adapter)))
    model.to(device).eval()
    task_data = load_task(task_cfg, with_dev=cfg.get("select_on", "test") == DEV)
    evals = {split: ds.sort("idx") for split, ds in task_data.held_out().items()}
    return LoadedRun(
        run_dir=folder.path,
        config=cfg,
        variant=variant,
        model=model,
        tokenizer=load_tokenizer(model_cfg),
        model_cfg=model_cfg,
        task=task_cfg,
        evals=evals,
        device=torch.device(device),
    )


def predict(run: LoadedRun, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """The logits of the run's model on each eval split, one row per example in ``run.evals`` order.

    ``batch_size``: default the run's train.eval_batch_size (the same batches, so the same numbers).
    """
    regression = run.task.num_labels == 1
    collate = batching.Collator(run.tokenizer, regression)
    size = batch_size or run.config.train.eval_batch_size
    loaders = {
        split: batching.eval_loader(
            batching.tokenize(ds, run.tokenizer, run.task.text_fields, run.model_cfg.max_length, regression),
            collate,
            size,
        )
        for split, ds in run.evals.items()
    }
    _, outputs = evaluator(run.model, loaders, run.device, run.task)()
    return {split: logits for split, (logits, _, _) in outputs.items()}
