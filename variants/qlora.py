"""QLoRA: Efficient Finetuning of Quantized LLMs (Dettmers et al., 2023, arXiv:2305.14314).

    h = dequant(NF4(W)) x + s * B A dropout(x),   s = alpha / r   (rsLoRA: alpha / sqrt(r))

Every target linear's frozen W is stored as 4-bit NormalFloat with double-quantized block scales
(``variants.nf4``: blocks of 64, absmax coded in 8 bits per block of 256, about 4.13 bits per weight,
bit-compatible with bitsandbytes) and dequantized in each forward to the compute dtype: the autocast
dtype when autocast is on (bf16 on CUDA), else the input's dtype (fp32 on CPU). LoRA on top is
``variants.lora`` unchanged: A kaiming-uniform (or N(0, 1/r)), B = 0, so at initialisation the model
equals the base model with each target W replaced by dequant(quant(W)).

Quantized are exactly the adapted linears (the target set; the recipe's ``all_linear`` covers every
linear of the encoder layers). The classifier head (trained in full), the pooler and the embeddings
stay dense. The base model loads dense (``load_kwargs`` is empty) and ``apply`` quantizes the targets
in place. ``backend=bnb`` stores the same format in bitsandbytes' ``Linear4bit`` instead (CUDA only).

Merging folds dequant(W) + s B A into a dense ``nn.Linear`` base; unmerging puts the untouched NF4
storage back. Saved as a peft LoRA adapter (``peft_type: LORA``, ``lora_A.weight``, ``lora_B.weight``).
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from variants.base import Targets, adapter_layers, is_head, matches
from variants.lora import LoRA, LoRAConfig, LoRALinear
from variants.nf4 import NF4Linear
from variants.peft_twin import PeftTwin, twin_of
from variants.registry import register

BACKENDS = ("ours", "bnb")


@dataclass
class QLoRAConfig(LoRAConfig):
    name: str = "qlora"
    lr: float = 2e-4  # QLoRA paper, 7B/13B models
    r: int = 64
    alpha: float = 16.0
    dropout: float = 0.05  # the paper's value for 33B/65B models (0.1 for 7B/13B)
    targets: Any = "all_linear"
    backend: str = "ours"  # ours (variants.nf4, any device) | bnb (bitsandbytes Linear4bit, CUDA)


class BnbNF4Linear(nn.Module):
    """bitsandbytes' ``Linear4bit`` (NF4, blocks of 64, double quantization) behind NF4Linear's interface."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        bnb = _import_bnb()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_dtype = linear.weight.dtype
        layer = bnb.nn.Linear4bit(
            linear.in_features, linear.out_features, bias=linear.bias is not None, quant_type="nf4"
        )
        weight = linear.weight.detach().clone()
        layer.weight = bnb.nn.Params4bit(weight, blocksize=64, compress_statistics=True, quant_type="nf4")
        if linear.bias is not None:
            layer.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.linear4bit = layer.to(linear.weight.device)  # Params4bit quantizes when moved to a device

    @property
    def bias(self) -> nn.Parameter | None:
        return self.linear4bit.bias

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        from bitsandbytes.functional import dequantize_4bit

        w = self.linear4bit.weight
        return dequantize_4bit(w.data, w.quant_state).to(dtype or self.weight_dtype)

    def nbytes(self) -> int:
        w = self.linear4bit.weight
        state = w.quant_state
        tensors = [w.data, state.absmax] + ([state.state2.absmax, state.offset] if state.nested else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear4bit(x)


def _import_bnb():
    try:
        import bitsandbytes
    except ImportError as e:
        raise ImportError("qlora backend='bnb' needs bitsandbytes (pip install bitsandbytes)") from e
    return bitsandbytes


def check_backend_name(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown qlora backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def check_backend(backend: str) -> None:
    """Raise unless ``backend`` is known and, for 'bnb', bitsandbytes and a CUDA device are present."""
    check_backend_name(backend)
    if backend == "bnb":
        _import_bnb()
        if not torch.cuda.is_available():
            raise RuntimeError("qlora backend='bnb' needs a CUDA device, and none is available; use 'ours'")


def quantize_linear(linear: nn.Linear, backend: str) -> nn.Module:
    return NF4Linear.from_linear(linear) if backend == "ours" else BnbNF4Linear(linear)


class QLoRALinear(LoRALinear):
    """LoRA over a quantized base: ``base_layer`` is an NF4Linear (or BnbNF4Linear) until merged."""

    def __init__(self, base_layer: nn.Linear, backend: str, **lora):
        super().__init__(base_layer, **lora)
        self.base_layer = quantize_linear(base_layer, backend)

    @property
    def quantized(self) -> nn.Module:
        """The quantized base, also while merged (then it is kept aside, outside the module tree)."""
        return self._quantized if self.merged else self.base_layer

    def base_weight(self) -> torch.Tensor:
        """dequant(W) in fp32 (while merged: the dense merged weight)."""
        return self.base_layer.weight if self.merged else self.base_layer.dequantize(torch.float32)

    @torch.no_grad()
    def merge(self) -> None:
        """Swap the quantized base for a dense nn.Linear holding dequant(W) + s B A, in W's original dtype."""
        if self.merged:
            return
        new = self.finite_merged_weight()
        quantized = self.base_layer
        dense = nn.Linear(self.in_features, self.out_features, bias=False, device="meta")
        dense.weight = nn.Parameter(new.to(quantized.weight_dtype), requires_grad=False)
        dense.bias = quantized.bias
        # Kept off the module tree: a merged model is a dense model (its state dict has no NF4 codes).
        object.__setattr__(self, "_quantized", quantized)
        self.base_layer = dense
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Put the NF4 storage back exactly as it was (the same module, never re-quantized)."""
        if not self.merged:
            return
        self.base_layer = self._quantized
        object.__delattr__(self, "_quantized")
        self.merged = False


@register
class QLoRA(LoRA):
    name = "qlora"
    Config = QLoRAConfig
    # A quantized base differs from the fp32 base by the NF4 rounding error at initialisation; the
    # recipe's r=64 is wider than the kit's tiny model (hidden 32).
    # peft loads the adapter onto the weights QLoRA computes with: the dequantized NF4 ones.
    check_options: ClassVar[dict[str, Any]] = {"options": {"r": 8}, "init_atol": 5e-2, "peft_base": "adapted"}
    config: QLoRAConfig

    def __init__(self, config: QLoRAConfig | None = None):
        super().__init__(config)
        check_backend_name(self.config.backend)  # the requirements of 'bnb' are checked in apply()

    def make_layer(self, name: str, linear: nn.Linear) -> QLoRALinear:
        return QLoRALinear(linear, self.config.backend, **self.lora_options())

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        check_backend(self.config.backend)
        return super().apply(model, targets)

    def summary(self, model: nn.Module) -> dict[str, Any]:
        """Memory of the quantized linears: bytes, weights, bits per weight (about 4.13 with double quant)."""
        layers = [m for m in adapter_layers(model).values() if isinstance(m, QLoRALinear)]
        params = sum(m.in_features * m.out_features for m in layers)
        nbytes = sum(m.quantized.nbytes() for m in layers)
        return {
            "quantized_layers": len(layers),
            "quantized_params": params,
            "quantized_bytes": nbytes,
            "bits_per_quantized_param": 8 * nbytes / params if params else 0.0,
        }


@twin_of(QLoRA)
class QLoRATwin(PeftTwin):
    """peft's QLoRA for bench speed: its LoRA on a bitsandbytes NF4 base, through transformers."""

    variant: QLoRA

    def unavailable(self, device: torch.device) -> str | None:
        if device.type != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
            return f"peft's QLoRA needs CUDA and bitsandbytes (device: {device.type})"
        return None

    def base(self, base: nn.Module, device: torch.device) -> nn.Module:
        """``base`` reloaded through transformers' bitsandbytes NF4 path (double quant, bf16 compute),
        with exactly the target linears quantized, as ours."""
        from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig

        t = self.variant.targets
        skip = [
            n
            for n, m in base.named_modules()
            if isinstance(m, nn.Linear) and (not matches(n, t.modules) or is_head(n, t.head))
        ]
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
            llm_int8_skip_modules=skip,
        )
        with tempfile.TemporaryDirectory() as tmp:
            base.save_pretrained(tmp)
            model = AutoModelForSequenceClassification.from_pretrained(
                tmp, quantization_config=quant, device_map={"": device}, use_safetensors=True
            )
        return model.train()
