"""Prompt tuning (Lester et al., "The Power of Scale for Parameter-Efficient Prompt Tuning", EMNLP 2021,
arXiv:2104.08691), as peft 0.21.2's ``PROMPT_TUNING`` builds it for a sequence classifier (``SEQ_CLS``).

``num_virtual_tokens`` learned embeddings P (n x hidden) are put in front of the input's word embeddings;
the encoder is frozen and the classifier head trained (peft's SEQ_CLS ``modules_to_save``). It acts on
the input, not on a layer: a forward pre-hook on the model rewrites each call's keyword arguments as
peft's ``PeftModelForSequenceClassification.forward`` does, so the harness calls ``model(**batch)``
unchanged:

    inputs_embeds  = [P ; word_embeddings(input_ids)]     (P cast to the embeddings' dtype)
    attention_mask = [ones(batch, n) ; attention_mask]
    token_type_ids = [zeros(batch, n) ; token_type_ids]   (when given)
    position_ids   dropped (peft ignores them), so the positions count the virtual tokens too

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
from variants.base import Targets, Variant, VariantConfig, freeze_all_but_head, is_head
from variants.registry import register

INITS = ("random", "text")
PROMPT_KEY = "prompt_embeddings"  # peft's on-disk name of the virtual token embeddings
HEAD_PREFIX = "base_model."  # peft's prefix of modules_to_save in a prompt-learning adapter


@dataclass
class PromptTuningConfig(VariantConfig):
    name: str = "prompt_tuning"
    lr: float = 3e-2  # peft's prompt tuning examples, AdamW at 3e-2 (the paper: Adafactor at 0.3)
    targets: Any = "attention"  # unused: the method adapts no layer (the head comes from the model config)
    num_virtual_tokens: int = 20  # peft's docs and examples
    init: str = "random"  # random | text (peft's prompt_tuning_init RANDOM / TEXT)
    init_text: str | None = None  # the text whose embeddings start the prompt (init=text)
    tokenizer: str | None = None  # tokenizer name or path for init=text; None: the base model's own


class PromptEncoder(nn.Module):
    """The virtual token embeddings and the forward pre-hook that puts them in front of the input."""

    def __init__(self, num_virtual_tokens: int, word_embeddings: nn.Embedding):
        super().__init__()
        dim = word_embeddings.embedding_dim
        self.embedding = nn.Embedding(num_virtual_tokens, dim, device=word_embeddings.weight.device)
        self.words = [word_embeddings]  # the base's, not a submodule of this one

    @property
    def num_virtual_tokens(self) -> int:
        return self.embedding.num_embeddings

    def prepend(self, model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """The pre-hook: the call's input_ids (or inputs_embeds) and masks extended as peft extends them."""
        kwargs = dict(kwargs)
        if args:
            kwargs["input_ids"], args = args[0], args[1:]
        input_ids, embeds = kwargs.pop("input_ids", None), kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = self.words[0](input_ids)
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
        return args, kwargs


def text_token_ids(tokenizer, text: str, n: int) -> list[int]:
    """``text``'s token ids (special tokens included, as the tokenizer adds them), cut or repeated to n."""
    ids = tokenizer(text)["input_ids"]
    return (ids * math.ceil(n / len(ids)))[:n]


@register
class PromptTuning(Variant):
    name = "prompt_tuning"
    Config = PromptTuningConfig
    peft_type = "PROMPT_TUNING"
    key_hparams = ("num_virtual_tokens",)
    # At initialisation the virtual tokens already change the output (they are attended to): the kit's
    # output-at-init check does not apply to an input-level method, so its tolerance is unbounded.
    check_options = {"init_atol": math.inf}
    config: PromptTuningConfig

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        """Freeze all but the head, add the prompt encoder (``model.prompt_encoder``) and its pre-hook."""
        c = self.config
        if c.init not in INITS:
            raise ValueError(f"prompt_tuning init={c.init!r} is not valid; choose one of {', '.join(INITS)}")
        if c.num_virtual_tokens < 1:
            raise ValueError(f"prompt_tuning num_virtual_tokens={c.num_virtual_tokens} must be at least 1")
        if c.init == "text" and not c.init_text:
            raise ValueError("prompt_tuning init=text needs init_text (the text whose embeddings start it)")
        self.targets = targets
        freeze_all_but_head(model, targets.head)
        encoder = PromptEncoder(c.num_virtual_tokens, model.get_input_embeddings())
        if c.init == "text":
            self.init_from_text(encoder, model)
        model.prompt_encoder = encoder
        model.register_forward_pre_hook(encoder.prepend, with_kwargs=True)
        return model

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
        words = encoder.words[0]
        encoder.embedding.weight.copy_(words(torch.tensor(ids, device=words.weight.device)).float())

    def make_layer(self, name: str, linear: nn.Linear) -> None:
        """No adapter layer: the method changes the input, not a layer."""
        return None

    def saved_tensors(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``prompt_embeddings`` and the head as peft saves a prompt-learning adapter's."""
        if self.targets is None:
            raise RuntimeError(f"{type(self).__name__}: call apply(model, targets) first")
        live = {PROMPT_KEY: model.prompt_encoder.embedding.weight}
        for name, p in model.named_parameters():
            if is_head(name, self.targets.head):
                live[HEAD_PREFIX + name] = p
        return live

    def adapter_config(self, model: nn.Module, base_model_name_or_path: str) -> dict[str, Any] | None:
        """peft's PromptTuningConfig fields: no target modules, no LoRA fields."""
        c, config = self.config, model.config
        return {
            "peft_type": self.peft_type,
            "task_type": "SEQ_CLS",
            "base_model_name_or_path": base_model_name_or_path,
            "modules_to_save": list(self.targets.head),
            "inference_mode": True,
            "num_virtual_tokens": c.num_virtual_tokens,
            "token_dim": config.hidden_size,
            "num_transformer_submodules": 1,
            "num_attention_heads": config.num_attention_heads,
            "num_layers": config.num_hidden_layers,
            "prompt_tuning_init": c.init.upper(),
            "prompt_tuning_init_text": c.init_text if c.init == "text" else None,
            "tokenizer_name_or_path": self.tokenizer_name(model) if c.init == "text" else None,
        }
