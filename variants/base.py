"""The variant contract: what every fine-tuning method (built-in or plugin) implements.

A variant receives a plain dataclass config (never Hydra). ``Variant.apply`` is a template: it freezes the
model but its head (``freeze``) and wraps each target linear layer in place with ``make_layer``, so most
methods write only their ``AdapterLayer`` and ``make_layer``. The training step
(``bench.run.loop.train_step``) calls, in this order, per optimizer step:

    loss = task_loss + variant.extra_loss(model)     # e.g. AdaLoRA's orthogonality term
    loss.backward(); clip; optimizer.step()
    variant.on_step_end(model, step, total_steps)    # e.g. AdaLoRA's rank budget
    optimizer.zero_grad()

Saved tensors are found structurally (every ``AdapterLayer`` in the model, plus the head modules; see
``Variant.saved_tensors``) and named in peft's on-disk format (``base_model.model.<module>.lora_A.weight``)
so a saved adapter loads with ``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

PEFT_PREFIX = "base_model.model."


@dataclass
class VariantConfig:
    """Options every variant has. Subclasses add their own fields (the Hydra schema of `variant=`)."""

    name: str = "???"
    # Learning rate the paper recommends for this method; `train.lr` overrides it when set.
    lr: float = 5e-4
    # Which linear layers to adapt: a preset the model config defines (attention = q,v; attention_all;
    # all_linear), a list of module-name suffixes ('[key,value]'), or those suffixes comma-separated.
    targets: Any = "attention"


@dataclass
class Targets:
    """Where a variant acts on a model: adapted linear layers and the always-trained head."""

    modules: list[str]  # module-name suffixes matched like peft's target_modules
    head: list[str] = field(default_factory=lambda: ["classifier"])  # trained in full (modules_to_save)


def matches(name: str, suffixes: list[str]) -> bool:
    """peft's rule: a module is a target when its name equals a suffix or ends with '.' + suffix."""
    return any(name == s or name.endswith("." + s) for s in suffixes)


def is_head(name: str, head: list[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head)


def check_finite(t: torch.Tensor, layer: nn.Module, what: str) -> torch.Tensor:
    """``t``, or ValueError when it holds inf or nan (a merge must never corrupt the model)."""
    if not torch.isfinite(t).all():
        raise ValueError(f"refusing to merge {type(layer).__name__}: the merged {what} is not finite")
    return t


class AdapterLayer(nn.Module, ABC):
    """A wrapper around a frozen base linear layer that adds a learned update.

    Subclasses must define ``forward(x)``, ``delta_weight()`` (the dense update of W, out x in) and
    ``adapter_tensors()`` (peft-named trainable tensors, relative to this module), and, when the update
    also changes the bias (IA3's l * (W x + b)), ``delta_bias()``. The forward's update must equal
    ``F.linear(x, delta_weight(), delta_bias())``: merging folds both into the base layer.
    """

    # Keys of adapter_tensors() trained without weight decay: vectors and scales that start away from
    # zero (DoRA's magnitude, VeRA's lambdas), which decay would pull towards 0 instead of their start.
    decay_exempt: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, base_layer: nn.Linear):
        super().__init__()
        self.base_layer = base_layer
        self.merged = False
        for p in base_layer.parameters():
            p.requires_grad_(False)

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def base_weight(self) -> torch.Tensor:
        """The frozen weight in the compute dtype (QLoRA dequantizes here)."""
        return self.base_layer.weight

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``self.base_layer(x)`` plus the update; just ``self.base_layer(x)`` while merged."""

    @abstractmethod
    def delta_weight(self) -> torch.Tensor:
        """The dense update of W (out x in)."""

    def delta_bias(self) -> torch.Tensor | None:
        """The update of the bias (out), or None when the method leaves the bias alone (the default)."""
        return None

    @abstractmethod
    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        """Trainable tensors under peft's names relative to this module, e.g. {'lora_A.weight': A}."""

    def merged_weight(self) -> torch.Tensor:
        """W after merging; DoRA overrides (its update is not additive)."""
        return self.base_weight() + self.delta_weight()

    def finite_merged_weight(self) -> torch.Tensor:
        """merged_weight(), refusing a non-finite result."""
        return check_finite(self.merged_weight(), self, "weight")

    def finite_merged_bias(self) -> torch.Tensor | None:
        """b + delta_bias() (None when there is no bias update), refusing a non-finite result."""
        delta = self.delta_bias()
        if delta is None:
            return None
        bias = self.base_layer.bias
        if bias is None:
            raise ValueError(f"{type(self).__name__} updates the bias of a layer that has none")
        return check_finite(bias + delta, self, "bias")

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight (and bias). Idempotent; refuses a non-finite result."""
        if self.merged:
            return
        weight, bias = self.finite_merged_weight(), self.finite_merged_bias()
        base = self.base_layer
        self._unmerged = (base.weight.data.clone(), None if bias is None else base.bias.data.clone())
        base.weight.data.copy_(weight.to(base.weight.dtype))
        if bias is not None:
            base.bias.data.copy_(bias.to(base.bias.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the base weight (and bias) exactly as they were before merge()."""
        if not self.merged:
            return
        weight, bias = self._unmerged
        self.base_layer.weight.data.copy_(weight)
        if bias is not None:
            self.base_layer.bias.data.copy_(bias)
        del self._unmerged
        self.merged = False


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    """Every AdapterLayer of ``model`` by module name, in module order: the one source of a model's
    adapted layers (variants hold no list of their own)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, AdapterLayer)}


def wrap_linears(model: nn.Module, targets: Targets, make) -> dict[str, AdapterLayer]:
    """Replace every target nn.Linear (outside the head) with ``make(name, linear)``; return the new layers.

    ``make`` may return None to leave a layer as it is. Raises when no linear layer matches the targets,
    naming the suffixes and a few of the model's linear layers.
    """
    found = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and matches(name, targets.modules) and not is_head(name, targets.head)
    ]
    if not found:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(
            f"target modules {targets.modules} match no linear layer of {type(model).__name__}; "
            f"its linear layers include: {', '.join(linears[:8])}"
        )
    wrapped = {}
    for name, linear in found:
        layer = make(name, linear)
        if layer is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer)
        wrapped[name] = layer
    return wrapped


def freeze_all_but_head(model: nn.Module, head: list[str]) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(is_head(name, head))


def is_norm(module: nn.Module) -> bool:
    """A normalisation layer (LayerNorm, RMSNorm, BatchNorm, ... of any library), by its type's name."""
    return "norm" in type(module).__name__.lower()


def no_decay_params(model: nn.Module) -> set[int]:
    """ids of the parameters trained without weight decay, chosen by what they are: biases, the weights
    of normalisation layers, and the tensors an AdapterLayer lists in ``decay_exempt``."""
    ids = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name == "bias" or is_norm(module):
                ids.add(id(p))
        if isinstance(module, AdapterLayer):
            ids |= {id(t) for key, t in module.adapter_tensors().items() if key in module.decay_exempt}
    return ids


class Variant(ABC):
    """Base class of every fine-tuning method. Subclasses set ``name`` and ``Config``, must define
    ``make_layer``, and override the other hooks where the method differs."""

    name: ClassVar[str]
    Config: ClassVar[type[VariantConfig]] = VariantConfig
    # peft's adapter_config "peft_type" of the saved adapter (None: not a peft adapter, e.g. `full`).
    peft_type: ClassVar[str | None] = None
    # Options that name a configuration in leaderboards, beside the learning rate (e.g. LoRA's rank).
    key_hparams: ClassVar[tuple[str, ...]] = ()
    # Keyword arguments of bench.testing.check_variant for this method (options, tolerances), so the
    # contract matrix runs a plugin too without an edit to the harness's tests.
    check_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: VariantConfig | None = None):
        self.config = config if config is not None else self.Config(name=self.name)
        self.targets: Targets | None = None

    # -- setup -------------------------------------------------------------------------------
    def load_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``from_pretrained`` (e.g. a quantized base)."""
        return {}

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        """Adapt ``model`` in place: remember the targets, ``freeze`` it, wrap each target linear layer
        with ``make_layer``. Subclasses extend it (``super().apply``) rather than repeat it; the adapted
        layers are found in the model again with ``adapter_layers``."""
        self.targets = targets
        self.freeze(model)
        wrap_linears(model, targets, self.make_layer)
        return model

    def freeze(self, model: nn.Module) -> None:
        """Which base parameters train: by default only the head's (``targets.head``)."""
        freeze_all_but_head(model, self.targets.head)

    @abstractmethod
    def make_layer(self, name: str, linear: nn.Linear) -> AdapterLayer | None:
        """The adapter layer that wraps the target ``linear`` called ``name``; None leaves it as it is
        (the baselines adapt no layer)."""

    # -- training hooks ----------------------------------------------------------------------
    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer groups: weight decay on weights, none on what ``no_decay_params`` names."""
        exempt = no_decay_params(model)
        params = [p for p in model.parameters() if p.requires_grad]
        return [
            {"params": [p for p in params if id(p) not in exempt], "lr": lr, "weight_decay": weight_decay},
            {"params": [p for p in params if id(p) in exempt], "lr": lr, "weight_decay": 0.0},
        ]

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def on_step_end(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called after optimizer.step() and before zero_grad(), with the 1-based step count."""
        return None

    def training_state(self) -> dict[str, Any]:
        """What the method keeps between steps besides the model's parameters (AdaLoRA's importance and
        masks), for a checkpoint (bench.run.checkpoint): tensors and values JSON can hold. Default:
        nothing."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore ``training_state()`` (tensors on the CPU) into this variant, applied to its model."""
        return None

    def summary(self, model: nn.Module) -> dict[str, Any]:
        """Variant-specific facts for metrics.json (e.g. AdaLoRA's final ranks)."""
        return {}

    # -- merge -------------------------------------------------------------------------------
    def merge(self, model: nn.Module) -> None:
        for layer in adapter_layers(model).values():
            layer.merge()

    def unmerge(self, model: nn.Module) -> None:
        for layer in adapter_layers(model).values():
            layer.unmerge()

    # -- saving in peft's format -------------------------------------------------------------
    def saved_tensors(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The tensors the adapter file holds, live (not copies), under peft's key names: every
        AdapterLayer's ``adapter_tensors()`` plus the head's parameters. Override it when a method keeps
        what it trains elsewhere (full fine-tuning) or saves more (VeRA's shared projections)."""
        if self.targets is None:
            raise RuntimeError(f"{type(self).__name__}: call apply(model, targets) first")
        live = {}
        for name, layer in adapter_layers(model).items():
            for key, t in layer.adapter_tensors().items():
                live[f"{PEFT_PREFIX}{name}.{key}"] = t
        for name, p in model.named_parameters():
            if is_head(name, self.targets.head):
                live[PEFT_PREFIX + name] = p
        return live

    def adapter_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Detached ``saved_tensors``: what ``adapter_model.safetensors`` holds."""
        return {k: v.detach() for k, v in self.saved_tensors(model).items()}

    def load_adapter_state_dict(self, model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
        """Copy a saved adapter into an adapted model; raises KeyError on missing or unexpected keys (an
        adapter of another variant or other targets) and ValueError on a shape that differs (another base
        model or rank)."""
        live = self.saved_tensors(model)
        missing = sorted(set(live) - set(sd))
        unexpected = sorted(set(sd) - set(live))
        if missing or unexpected:
            raise KeyError(
                f"adapter keys do not match variant {self.name!r} on this model: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}; was it saved by another variant or with other targets?"
            )
        wrong = [k for k, v in sd.items() if tuple(v.shape) != tuple(live[k].shape)]
        if wrong:
            k = wrong[0]
            raise ValueError(
                f"adapter tensor {k} has shape {tuple(sd[k].shape)}, the model's {tuple(live[k].shape)} "
                f"({len(wrong)} such); was it saved from another base model or with another rank?"
            )
        with torch.no_grad():
            for k, v in sd.items():
                live[k].copy_(v.to(live[k].dtype))

    def adapter_config(self, model: nn.Module, base_model_name_or_path: str) -> dict[str, Any] | None:
        """peft's adapter_config.json: the fields every peft adapter has, plus ``peft_options``; None when
        the variant has no peft form (``peft_type`` None)."""
        if self.peft_type is None:
            return None
        return {
            "peft_type": self.peft_type,
            "task_type": "SEQ_CLS",
            "base_model_name_or_path": base_model_name_or_path,
            "target_modules": list(self.targets.modules),
            "modules_to_save": list(self.targets.head),
            "bias": "none",
            "fan_in_fan_out": False,
            "inference_mode": True,
            **self.peft_options(model),
        }

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        """The method's own fields of peft's adapter config (e.g. LoRA's r, lora_alpha)."""
        return {}
