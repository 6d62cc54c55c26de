"""Prompt tuning (Lester et al., "The Power of Scale for Parameter-Efficient Prompt Tuning", EMNLP 2021,
arXiv:2104.08691), as peft 0.21.2's ``PROMPT_TUNING`` builds it for a sequence classifier (``SEQ_CLS``).

``num_virtual_tokens`` learned embeddings P (n x hidden) are put in front of the input's word embeddings;
the encoder is frozen and the classifier head trained (peft's SEQ_CLS ``modules_to_save``). It acts on
the input, not on a layer: an ``InputAdapter`` (the model's ``input_adapter``) rewrites each call's
keyword inputs as peft's ``PeftModelForSequenceClassification.forward`` does, so the harness calls
``model(**batch)`` unchanged:

    inputs_embeds  = [P ; word_embeddings(input_ids)]     (P cast to the embeddings' dtype)
    attention_mask = [ones(batch, n) ; attention_mask]
    token_type_ids = [zeros(batch, n) ; token_type_ids]   (when given)
    position_ids   dropped (peft ignores them), so the positions count the virtual tokens too

An input of L tokens therefore takes L + n positions: ``added_tokens`` tells the run's checks, which
refuse a ``model.max_length`` that leaves no room for them.

Initialisation: ``random`` draws P from N(0, 1) (a fresh ``nn.Embedding``, as peft's RANDOM); ``text``
copies the word embeddings of ``init_text`` tokenized by ``tokenizer`` (default: the base model's own
``name_or_path``), cut or repeated to n tokens (peft's TEXT). Nothing to merge: the model has no adapter
layer. Saved as a peft adapter: ``prompt_embeddings`` and the head under ``base_model.<module>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.log import log
from variants.base import Variant, VariantConfig
from variants.input_adapter import InputAdapter
from variants.registry import register

INITS = ("random", "text")
PROMPT_KEY = "prompt_embeddings"  # peft's on-disk name of the virtual token embeddings


@dataclass
class PromptTuningConfig(VariantConfig):
    name: str = "prompt_tuning"
    lr: float = 3e-2  # peft's prompt tuning examples, AdamW at 3e-2 (the paper: Adafactor at 0.3)
    targets: Any = "attention"  # unused: the method adapts no layer (the head comes from the model config)
    num_virtual_tokens: int = 20  # peft's docs and examples
    init: str = "random"  # random | text (peft's prompt_tuning_init RANDOM / TEXT)
    init_text: str | None = None  # the text whose embeddings start the prompt (init=text)
    tokenizer: str | None = None  # tokenizer name or path for init=text; None: the base model's own


class PromptEncoder(InputAdapter):
    """The virtual token embeddings, put in front of the input's word embeddings."""

    def __init__(self, num_virtual_tokens: int, dim: int, device: torch.device):
        super().__init__()
        self.embedding = nn.Embedding(num_virtual_tokens, dim, device=device)

    @property
    def num_virtual_tokens(self) -> int:
        return self.embedding.num_embeddings

    def forward(self, model: nn.Module, inputs: dict[str, Any]) -> dict[str, Any]:
        """The call's input_ids (or inputs_embeds) and masks extended as peft extends them."""
        kwargs = dict(inputs)
        input_ids, embeds = kwargs.pop("input_ids", None), kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = model.get_input_embeddings()(input_ids)
        batch, n = embeds.shape[0], self.num_virtual_tokens
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and embeds.shape[1] + n > limit:
            raise ValueError(
                f"{embeds.shape[1]} tokens + num_virtual_tokens={n} exceed the model's "
                f"{limit} positions; lower model.max_length or num_virtual_tokens"
            )
        if kwargs.get("attention_mask") is not None:
            mask = kwargs["attention_mask"]
            kwargs["attention_mask"] = torch.cat((torch.ones(batch, n).to(mask.device), mask), dim=1)
        if kwargs.get("token_type_ids") is not None:
            types = kwargs["token_type_ids"]
            kwargs["token_type_ids"] = torch.cat((torch.zeros_like(types[:, :1]).expand(batch, n), types), 1)
        if kwargs.get("position_ids") is not None:
            log.warning("prompt tuning ignores position_ids as peft does: positions count the virtual tokens")
            kwargs["position_ids"] = None
        prompts = self.embedding.weight.unsqueeze(0).expand(batch, -1, -1).to(embeds.dtype)
        kwargs["inputs_embeds"] = torch.cat((prompts, embeds), dim=1)
        return kwargs

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {PROMPT_KEY: self.embedding.weight}


def text_token_ids(tokenizer, text: str, n: int) -> list[int]:
    """``text``'s token ids (special tokens included, as the tokenizer adds them), cut or repeated to n."""
    ids = tokenizer(text)["input_ids"]
    return (ids * math.ceil(n / len(ids)))[:n]


@register
class PromptTuning(Variant):
    name = "prompt_tuning"
    Config = PromptTuningConfig
    wraps = ()  # no layer: the method changes the input (make_input_adapter)
    mergeable = False
    peft_type = "PROMPT_TUNING"
    peft_prefix = "base_model."  # peft holds the model itself in a prompt-learning adapter
    key_hparams = ("num_virtual_tokens",)
    # The virtual tokens are attended to from the start: the output at init differs from the base model's.
    check_options = {"init_atol": None}
    config: PromptTuningConfig

    def added_tokens(self) -> int:
        return self.config.num_virtual_tokens

    def make_input_adapter(self, model: nn.Module) -> PromptEncoder:
        """The prompt encoder for the frozen ``model``, its options checked, initialised as configured."""
        c = self.config
        if c.init not in INITS:
            raise ValueError(f"prompt_tuning init={c.init!r} is not valid; choose one of {', '.join(INITS)}")
        if c.num_virtual_tokens < 1:
            raise ValueError(f"prompt_tuning num_virtual_tokens={c.num_virtual_tokens} must be at least 1")
        if c.init == "text" and not c.init_text:
            raise ValueError("prompt_tuning init=text needs init_text (the text whose embeddings start it)")
        words = model.get_input_embeddings()
        encoder = PromptEncoder(c.num_virtual_tokens, words.embedding_dim, words.weight.device)
        if c.init == "text":
            self.init_from_text(encoder, model)
        return encoder

    def tokenizer_name(self, model: nn.Module) -> str:
        name = self.config.tokenizer or getattr(model.config, "_name_or_path", "")
        if not name:
            raise ValueError("prompt_tuning init=text: the base model names no tokenizer; set tokenizer")
        return name

    @torch.no_grad()
    def init_from_text(self, encoder: PromptEncoder, model: nn.Module) -> None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name(model))
        ids = text_token_ids(tokenizer, self.config.init_text, encoder.num_virtual_tokens)
        words = model.get_input_embeddings()
        encoder.embedding.weight.copy_(words(torch.tensor(ids, device=words.weight.device)).float())

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        """peft's PromptTuningConfig fields: the prompt's size, the model's shape and the init."""
        c, config = self.config, model.config
        return {
            "num_virtual_tokens": c.num_virtual_tokens,
            "token_dim": config.hidden_size,
            "num_transformer_submodules": 1,
            "num_attention_heads": config.num_attention_heads,
            "num_layers": config.num_hidden_layers,
            "prompt_tuning_init": c.init.upper(),
            "prompt_tuning_init_text": c.init_text if c.init == "text" else None,
            "tokenizer_name_or_path": self.tokenizer_name(model) if c.init == "text" else None,
        }
