"""The variant contract: what every fine-tuning method (built-in or plugin) implements.

A variant receives a plain dataclass config (never Hydra). ``Variant.apply`` is a template: it freezes the
model but its head (``freeze``), wraps each target module of the types the variant declares (``wraps``:
linear layers by default; LayerNorm, embedding, Conv1D, ...) in place with ``make_layer``, and attaches
the variant's ``InputAdapter`` when it has one (``make_input_adapter``: an input-level method such as
prompt tuning, which changes the sequence, not a layer). Most methods write only their ``AdapterLayer``
and ``make_layer``. The training step (``bench.run.loop.train_step``) calls, in this order, per optimizer
step:

    loss = task_loss + variant.extra_loss(model)     # e.g. AdaLoRA's orthogonality term
    loss.backward(); clip; optimizer.step()
    variant.on_step_end(model, step, total_steps)    # e.g. AdaLoRA's rank budget
    optimizer.zero_grad()

Saved tensors are found structurally (every ``AdapterLayer`` and ``InputAdapter`` in the model, plus the
head modules; see ``Variant.saved_tensors``) and named in peft's on-disk format
(``base_model.model.<module>.lora_A.weight``) so a saved adapter loads with
``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from variants.input_adapter import InputAdapter, attach_input_adapter, input_adapters

PEFT_PREFIX = "base_model.model."


@dataclass
class VariantConfig:
    """Options every variant has. Subclasses add their own fields (the Hydra schema of `variant=`)."""

    name: str = "???"
    # Learning rate the paper recommends for this method; `train.lr` overrides it when set.
    lr: float = 5e-4
    # Which modules to adapt: a preset the model config defines (attention = q,v; attention_all;
    # all_linear), a list of module-name suffixes ('[key,value]'), or those suffixes comma-separated.
    targets: Any = "attention"


@dataclass
class Targets:
    """Where a variant acts on a model: the adapted modules and the always-trained head."""

    modules: list[str]  # module-name suffixes matched like peft's target_modules
    head: list[str] = field(default_factory=lambda: ["classifier"])  # trained in full (modules_to_save)


def matches(name: str, suffixes: list[str]) -> bool:
    """peft's rule: a module is a target when its name equals a suffix or ends with '.' + suffix."""
    return any(name == s or name.endswith("." + s) for s in suffixes)


def is_head(name: str, head: list[str]) -> bool:
    """Whether the module or parameter ``name`` is (inside) one of the ``head`` modules."""
    return any(name == h or name.startswith(h + ".") for h in head)


def check_finite(t: torch.Tensor, layer: nn.Module, what: str) -> torch.Tensor:
    """``t``, or ValueError when it holds inf or nan (a merge must never corrupt the model)."""
    if not torch.isfinite(t).all():
        raise ValueError(f"refusing to merge {type(layer).__name__}: the merged {what} is not finite")
    return t


class AdapterLayer(nn.Module, ABC):
    """A wrapper around a frozen base module (``nn.Linear`` unless the variant declares other ``wraps``)
    that changes its weight, and maybe its bias, by a learned update.

    Subclasses must define ``forward(x)``, ``delta_weight()`` (the dense update of the base weight, in its
    shape: out x in for a linear layer) and ``adapter_tensors()`` (peft-named trainable tensors, relative
    to this module), and, when the update also changes the bias (IA3's l * (W x + b)), ``delta_bias()``.
    The forward must equal the base module's with weight ``merged_weight()`` and bias ``merged_bias()``
    (for a linear layer: ``base_layer(x) + F.linear(x, delta_weight(), delta_bias())``): merging folds both
    into the base module. A multiplicative update (IA3's l * W, OFT's R W) overrides ``merged_weight`` (and
    ``merged_bias``) to compute W' itself, exactly; its ``delta_weight`` is W' - W.
    """

    # Keys of adapter_tensors() trained without weight decay: vectors and scales that start away from
    # zero (DoRA's magnitude, VeRA's lambdas), which decay would pull towards 0 instead of their start.
    decay_exempt: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, base_layer: nn.Module):
        super().__init__()
        self.base_layer = base_layer
        self.merged = False
        for p in base_layer.parameters():
            p.requires_grad_(False)

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features  # a linear base layer's

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def base_weight(self) -> torch.Tensor:
        """The frozen weight in the compute dtype (QLoRA dequantizes here)."""
        return self.base_layer.weight

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``self.base_layer(x)`` changed by the update; just ``self.base_layer(x)`` while merged."""

    @abstractmethod
    def delta_weight(self) -> torch.Tensor:
        """The dense update of the base weight, in its shape (out x in for a linear layer)."""

    def delta_bias(self) -> torch.Tensor | None:
        """The update of the bias (out), or None when the method leaves the bias alone (the default)."""
        return None

    @abstractmethod
    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        """Trainable tensors under peft's names relative to this module, e.g. {'lora_A.weight': A}."""

    def merged_weight(self) -> torch.Tensor:
        """W after merging: W + delta_weight(); DoRA and multiplicative updates override it."""
        return self.base_weight() + self.delta_weight()

    def merged_bias(self) -> torch.Tensor | None:
        """b after merging: b + delta_bias(), None when the bias is left alone; a multiplicative update of
        the bias (IA3's l * b) overrides it."""
        delta = self.delta_bias()
        if delta is None:
            return None
        bias = self.base_layer.bias
        if bias is None:
            raise ValueError(f"{type(self).__name__} updates the bias of a layer that has none")
        return bias + delta

    def finite_merged_weight(self) -> torch.Tensor:
        """merged_weight(), refusing a non-finite result."""
        return check_finite(self.merged_weight(), self, "weight")

    def finite_merged_bias(self) -> torch.Tensor | None:
        """merged_bias(), refusing a non-finite result."""
        bias = self.merged_bias()
        return None if bias is None else check_finite(bias, self, "bias")

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


def added_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The tensors adapters add to the model: every AdapterLayer's and InputAdapter's adapter_tensors()."""
    adapters = [*adapter_layers(model).values(), *input_adapters(model).values()]
    return [t for a in adapters for t in a.adapter_tensors().values()]


def type_names(types: tuple[type[nn.Module], ...]) -> str:
    """'linear' for nn.Linear, else the class names: how errors name the module types a variant wraps."""
    return " or ".join("linear" if t is nn.Linear else t.__name__ for t in types)


def wrap_modules(
    model: nn.Module,
    targets: Targets,
    make: Callable[[str, nn.Module], nn.Module | None],
    types: tuple[type[nn.Module], ...] = (nn.Linear,),
) -> dict[str, nn.Module]:
    """Replace every target module (outside the head) that is an instance of ``types`` with
    ``make(name, module)``; return the new modules by name.

    ``make`` may return None to leave a module as it is. With ``types`` empty nothing is wrapped. Raises
    when no module of ``types`` matches the targets, naming the suffixes and a few such modules.
    """
    if not types:
        return {}
    found = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, types) and matches(name, targets.modules) and not is_head(name, targets.head)
    ]
    if not found:
        kind = type_names(types)
        candidates = [n for n, m in model.named_modules() if isinstance(m, types)]
        raise ValueError(
            f"target modules {targets.modules} match no {kind} layer of {type(model).__name__}; "
            f"its {kind} layers include: {', '.join(candidates[:8])}"
        )
    wrapped = {}
    for name, module in found:
        layer = make(name, module)
        if layer is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer)
        wrapped[name] = layer
    return wrapped


def freeze_all_but_head(model: nn.Module, head: list[str]) -> None:
    """Freeze every parameter of ``model`` but those of the ``head`` modules."""
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
    """Base class of every fine-tuning method. Subclasses set ``name`` and ``Config``, define
    ``make_layer`` (unless they wrap no module: ``wraps = ()``), and override the other hooks where the
    method differs."""

    name: ClassVar[str]
    Config: ClassVar[type[VariantConfig]] = VariantConfig
    # The module types make_layer wraps among the targets (nn.LayerNorm, nn.Embedding, Conv1D, ...); ()
    # for a method that wraps no module (an input-level method, BitFit).
    wraps: ClassVar[tuple[type[nn.Module], ...]] = (nn.Linear,)
    # False when the method has nothing to fold into the base weights (prompt tuning, BitFit, the
    # baselines): merge and unmerge do nothing, and the test-kit skips its merge checks.
    mergeable: ClassVar[bool] = True
    # peft's adapter_config "peft_type" of the saved adapter (None: not a peft adapter, e.g. `full`).
    peft_type: ClassVar[str | None] = None
    # The key prefix of module tensors in peft's adapter file: "base_model.model." where peft wraps the
    # model in a tuner (layer methods), "base_model." where it holds the model itself (prompt learning).
    peft_prefix: ClassVar[str] = PEFT_PREFIX
    # Options that name a configuration in leaderboards, beside the learning rate (e.g. LoRA's rank).
    key_hparams: ClassVar[tuple[str, ...]] = ()
    # Keyword arguments of bench.testing.check_variant for this method (options, tolerances), so the
    # contract matrix runs a plugin too without an edit to the harness's tests.
    check_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: VariantConfig | None = None):
        if self.wraps and type(self).make_layer is Variant.make_layer:
            raise TypeError(
                f"{type(self).__name__} wraps {type_names(self.wraps)} modules but defines no make_layer: "
                "define it, or set wraps = () for a method that wraps no module"
            )
        self.config = config if config is not None else self.Config(name=self.name)
        self.targets: Targets | None = None

    # -- setup -------------------------------------------------------------------------------
    def load_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``from_pretrained`` (e.g. a quantized base)."""
        return {}

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        """Adapt ``model`` in place: remember the targets, ``freeze`` it, wrap each target module of the
        ``wraps`` types with ``make_layer`` and attach ``make_input_adapter``'s adapter, if any. Subclasses
        extend it (``super().apply``) rather than repeat it; the adapted layers are found in the model
        again with ``adapter_layers`` (``input_adapters``)."""
        self.targets = targets
        self.freeze(model)
        wrap_modules(model, targets, self.make_layer, self.wraps)
        adapter = self.make_input_adapter(model)
        if adapter is not None:
            attach_input_adapter(model, adapter)
        return model

    def freeze(self, model: nn.Module) -> None:
        """Which base parameters train: by default only the head's (``targets.head``)."""
        freeze_all_but_head(model, self.targets.head)

    def make_layer(self, name: str, module: nn.Module) -> AdapterLayer | None:
        """The adapter layer that wraps the target ``module`` (an instance of ``wraps``) called ``name``;
        None leaves it as it is (the baselines adapt no layer). Required unless ``wraps`` is empty."""
        raise NotImplementedError(f"{type(self).__name__}.make_layer")

    def make_input_adapter(self, model: nn.Module) -> InputAdapter | None:
        """The input-level part of the method (prompt tuning's virtual tokens), made for the frozen
        ``model``; None (the default) when the method changes no input."""
        return None

    def added_tokens(self) -> int:
        """How many tokens the input adapter puts in every sequence (prompt tuning's virtual tokens): they
        take positions beside ``model.max_length``'s, which the run's checks count; 0 by default."""
        return 0

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
        """A term added to the task loss (AdaLoRA's orthogonality penalty); None by default."""
        return None

    def on_step_end(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called after optimizer.step() and before zero_grad(), with the 1-based step count."""
        return None

    def training_state(self) -> dict[str, Any]:
        """What the method keeps between steps besides the model's parameters (AdaLoRA's importance and
        masks), for a checkpoint (bench.run.checkpoint): tensors and values JSON can hold."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore ``training_state()`` (tensors on the CPU) into this variant, applied to its model."""
        return None

    def summary(self, model: nn.Module) -> dict[str, Any]:
        """Variant-specific facts for metrics.json (e.g. AdaLoRA's final ranks)."""
        return {}

    # -- merge -------------------------------------------------------------------------------
    def merge(self, model: nn.Module) -> None:
        """Fold every AdapterLayer's update into its base module (nothing when not ``mergeable``)."""
        if self.mergeable:
            for layer in adapter_layers(model).values():
                layer.merge()

    def unmerge(self, model: nn.Module) -> None:
        """Undo ``merge``: every AdapterLayer's base module restored exactly."""
        if self.mergeable:
            for layer in adapter_layers(model).values():
                layer.unmerge()

    # -- saving in peft's format -------------------------------------------------------------
    def saved_tensors(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The tensors the adapter file holds, live (not copies), under peft's key names: every
        AdapterLayer's ``adapter_tensors()`` (prefixed ``peft_prefix + <module>.``), every InputAdapter's
        (under their own full keys) and the head's parameters. Override it when a method keeps what it
        trains elsewhere (full fine-tuning, BitFit's biases) or saves more (VeRA's shared projections)."""
        if self.targets is None:
            raise RuntimeError(f"{type(self).__name__}: call apply(model, targets) first")
        live = {}
        for name, layer in adapter_layers(model).items():
            for key, t in layer.adapter_tensors().items():
                live[f"{self.peft_prefix}{name}.{key}"] = t
        for adapter in input_adapters(model).values():
            live.update(adapter.adapter_tensors())
        for name, p in model.named_parameters():
            if is_head(name, self.targets.head):
                live[self.peft_prefix + name] = p
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
        """peft's adapter_config.json, None when the variant has no peft form (``peft_type`` None): the
        fields of peft's ``PeftConfig`` (peft_type, task_type, base_model_name_or_path, revision,
        inference_mode), ``target_modules`` when the variant wraps modules, ``modules_to_save`` (the
        head), then the method's own fields (``peft_options``)."""
        if self.peft_type is None:
            return None
        config = {
            "peft_type": self.peft_type,
            "task_type": "SEQ_CLS",
            "base_model_name_or_path": base_model_name_or_path,
            "revision": None,
            "inference_mode": True,
        }
        if self.wraps:
            config["target_modules"] = list(self.targets.modules)
        config["modules_to_save"] = list(self.targets.head)
        return {**config, **self.peft_options(model)}

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        """The method's own fields of peft's adapter config (e.g. LoRA's r, lora_alpha, bias)."""
        return {}
