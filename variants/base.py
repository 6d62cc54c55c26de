"""The variant contract: what every fine-tuning method (built-in or plugin) implements.

A variant receives a plain dataclass config (never Hydra), wraps the target linear layers of an already
loaded model in place, and tells the training loop which parameters to optimise and how. The loop calls,
in this order, per optimizer step:

    loss = task_loss + variant.extra_loss(model)     # e.g. AdaLoRA's orthogonality term
    loss.backward(); clip; optimizer.step()
    variant.on_step_end(model, step, total_steps)    # e.g. AdaLoRA's rank budget
    optimizer.zero_grad()

Adapter tensors are found structurally (every ``AdapterLayer`` in the model, plus the head modules) and
named in peft's on-disk format (``base_model.model.<module>.lora_A.weight``) so a saved adapter loads
with ``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

PEFT_PREFIX = "base_model.model."


@dataclass
class VariantConfig:
    """Options every variant has. Subclasses add their own fields (the Hydra schema of `variant=`)."""

    name: str = "???"
    # Learning rate the paper recommends for this method; `optim.lr` overrides it when set.
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


class AdapterLayer(nn.Module):
    """A wrapper around a frozen base linear layer that adds a learned update.

    Subclasses define ``delta_weight()`` (the dense update of W, out x in) and ``adapter_tensors()``
    (peft-named trainable tensors, relative to this module). Merging folds the update into W.
    """

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

    def delta_weight(self) -> torch.Tensor:
        raise NotImplementedError

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        """Trainable tensors under peft's names relative to this module, e.g. {'lora_A.weight': A}."""
        raise NotImplementedError

    def merged_weight(self) -> torch.Tensor:
        """W after merging; DoRA overrides (its update is not additive)."""
        return self.base_weight() + self.delta_weight()

    def finite_merged_weight(self) -> torch.Tensor:
        """merged_weight(), refusing a non-finite result (a merge must never corrupt the model)."""
        new = self.merged_weight()
        if not torch.isfinite(new).all():
            raise ValueError(f"refusing to merge {type(self).__name__}: the merged weight is not finite")
        return new

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight. Idempotent; refuses a non-finite result."""
        if self.merged:
            return
        new = self.finite_merged_weight()
        self._unmerged_weight = self.base_layer.weight.data.clone()
        self.base_layer.weight.data.copy_(new.to(self.base_layer.weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the base weight exactly as it was before merge()."""
        if not self.merged:
            return
        self.base_layer.weight.data.copy_(self._unmerged_weight)
        del self._unmerged_weight
        self.merged = False


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    return {name: m for name, m in model.named_modules() if isinstance(m, AdapterLayer)}


def wrap_linears(model: nn.Module, targets: Targets, make) -> dict[str, AdapterLayer]:
    """Replace every target nn.Linear (outside the head) with ``make(name, linear)``; return the new layers.

    Raises when nothing matches, naming the suffixes and a few of the model's linear layers.
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
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = make(name, linear)
        setattr(parent, child, layer)
        wrapped[name] = layer
    return wrapped


def freeze_all_but_head(model: nn.Module, head: list[str]) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(is_head(name, head))


class Variant:
    """Base class of every fine-tuning method. Subclasses set ``name`` and ``Config`` and override hooks."""

    name: ClassVar[str]
    Config: ClassVar[type[VariantConfig]] = VariantConfig
    # peft's adapter_config "peft_type" of the saved adapter (None: not a peft adapter, e.g. `full`).
    peft_type: ClassVar[str | None] = None

    def __init__(self, config: VariantConfig | None = None):
        self.config = config if config is not None else self.Config(name=self.name)
        self.targets: Targets | None = None

    # -- setup -------------------------------------------------------------------------------
    def load_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``from_pretrained`` (e.g. a quantized base)."""
        return {}

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        """Adapt ``model`` in place: wrap target linears, freeze all but adapter and head parameters."""
        raise NotImplementedError

    # -- training hooks ----------------------------------------------------------------------
    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer groups: weight decay on matrices, none on 1-D tensors (biases, norms, vectors)."""
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        return [
            {"params": decay, "lr": lr, "weight_decay": weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        ]

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def on_step_end(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called after optimizer.step() and before zero_grad(), with the 1-based step count."""

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
    def adapter_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Every trained tensor under peft's key names: adapter tensors plus the head's parameters."""
        return {k: v.detach() for k, v in self._live_tensors(model).items()}

    def load_adapter_state_dict(self, model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
        """Copy a saved adapter into an adapted model; raises on missing or unexpected keys."""
        own = self.adapter_state_dict(model)
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if missing or unexpected:
            raise KeyError(f"adapter keys do not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
        live = self._live_tensors(model)
        with torch.no_grad():
            for k, v in sd.items():
                live[k].copy_(v.to(live[k].dtype))

    def _live_tensors(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The trained tensors themselves (not copies), keyed by peft's names."""
        live = {}
        for name, layer in adapter_layers(model).items():
            for key, t in layer.adapter_tensors().items():
                live[f"{PEFT_PREFIX}{name}.{key}"] = t
        head = self.targets.head if self.targets else []
        for name, p in model.named_parameters():
            if is_head(name, head):
                live[PEFT_PREFIX + name] = p
        return live

    def adapter_config(self, model: nn.Module, base_model_name_or_path: str) -> dict[str, Any] | None:
        """peft's adapter_config.json for the saved adapter; None when the variant has no peft form."""
        return None
