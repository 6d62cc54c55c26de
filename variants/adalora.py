"""AdaLoRA: Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning (Zhang et al., ICLR 2023,
arXiv:2303.10512).

    dW = P diag(E) Q * s,   h = W x + s * P (E * Q) dropout(x),   s = alpha / (r0 + 1e-5)

in peft's names P = lora_B (out x r0), E = lora_E (r0 x 1, the singular values), Q = lora_A (r0 x in).
E starts at zero and A, B ~ N(0, 0.02), so the adapted model equals the base model at initialisation.
The scale divides by the initial rank r0 for the whole run (peft and the authors' code add 1e-5 to it);
pruning zeroes entries of E, never changes s. Training adds the orthogonality penalty

    R = orth_reg_weight * mean over all 2L matrices of ||Q Q^T - I||_F and ||P^T P - I||_F

(Frobenius norm, not squared; each A and each B counts once, masked ranks included). After each optimizer
step, with the gradients still there, every entry w of A, E, B updates its importance:

    I = |w * grad w|,  Ibar <- b1 Ibar + (1 - b1) I,  Ubar <- b2 Ubar + (1 - b2) |I - Ibar|,  S = Ibar * Ubar

and the triplet i of a layer scores S(E_i) + (mean_j S(A_ij) + mean_j S(B_ji)). The total rank budget follows
a cubic schedule over the 0-based step t (peft's ``global_step``), with b0 = r0 * L, bT = target_r * L:

    b(t) = b0                                                     t <= tinit
    b(t) = int((b0 - bT) * (1 - (t - tinit) / (T - tfinal - tinit))^3 + bT)   tinit < t < T - tfinal
    b(t) = bT                                                     t >= T - tfinal

tinit, tfinal and deltaT are steps, or fractions of T when in (0, 1) (the defaults: 0.1, 0.4, 0.01, so
the schedule fits any run length); ``schedule`` turns them into steps once T is known.

In the middle phase, at every t divisible by deltaT, the E entries of all triplets whose score is at or
below the (b0 - b)-th smallest score are zeroed (a zeroed entry may come back at a later mask). At
t = T - tfinal the mask is cut to bT from the scores so far (no update at that step) and then fixed: later
steps only re-zero it.

Step convention: the loop calls ``on_step_end`` with the 1-based step s after optimizer.step(); that is peft's
``update_and_allocate(global_step=s - 1)`` with ``total_step = T``, the 0-based count of peft's examples. The
kept ranks per layer ("rank pattern") are saved like peft: A, E, B pruned to the kept ranks, and
``rank_pattern`` {"<module>.lora_E": [bool] * r0} in adapter_config.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import count
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from variants.base import PEFT_PREFIX, AdapterLayer, Targets, Variant, VariantConfig, adapter_layers
from variants.peft_twin import PeftTwin, twin_of
from variants.registry import register

Tensors = dict[str, torch.Tensor]
EPS = 1e-5  # added to r0 in the scale, as peft and the authors' loralib do
NAMES = ("lora_A", "lora_E", "lora_B")


@dataclass
class AdaLoRAConfig(VariantConfig):
    name: str = "adalora"
    # AdaLoRA repo, NLU/scripts/run_debertav3_sst2.sh (DeBERTa-v3-base): 8e-4; MNLI and CoLA 5e-4, MRPC 1e-3.
    lr: float = 8e-4
    init_r: int = 12
    target_r: int = 8  # average rank per adapted matrix at the end
    # Step counts of the schedule: a value in (0, 1) is that fraction of T (rounded), 0 or a whole number
    # >= 1 is a number of steps. Fractions by default, so one setting fits a 2-step and a 20,000-step run.
    tinit: float = 0.1  # warm-up at full rank (the paper's GLUE runs: about 10% of T)
    tfinal: float = 0.4  # final phase with the rank pattern fixed (paper: 40-60% of T); tinit + tfinal < T
    deltaT: float = 0.01  # between two masks during the budget decrease (at least 1 step)
    beta1: float = 0.85
    beta2: float = 0.85
    orth_reg_weight: float = 0.5
    total_step: int | None = None  # T of the schedule; None: the run's number of optimizer steps
    alpha: float = 16.0  # the authors' GLUE scripts (lora_alpha 16)
    dropout: float = 0.0


def validate(c: AdaLoRAConfig) -> None:
    """Raise on options no schedule can use (the step count is checked when it is known)."""
    if c.init_r < 1:
        raise ValueError(f"init_r={c.init_r} must be >= 1")
    if not 1 <= c.target_r <= c.init_r:
        raise ValueError(f"target_r={c.target_r} must be in 1..init_r={c.init_r}")
    for name in ("tinit", "tfinal", "deltaT"):
        value = getattr(c, name)
        if value < 0 or (value >= 1 and not float(value).is_integer()) or (name == "deltaT" and value == 0):
            raise ValueError(
                f"{name}={value} must be a fraction of the run's steps in (0, 1) or a whole number of steps"
                + (" >= 1" if name == "deltaT" else " >= 0")
            )
    for name in ("beta1", "beta2"):
        if not 0 < getattr(c, name) < 1:
            raise ValueError(f"{name}={getattr(c, name)} must be in (0, 1)")
    if c.orth_reg_weight < 0:
        raise ValueError(f"orth_reg_weight={c.orth_reg_weight} must be >= 0")
    if not (math.isfinite(c.alpha) and c.alpha > 0):
        raise ValueError(f"alpha={c.alpha} must be a finite number > 0 (it scales the update: alpha / r)")
    if c.total_step is not None:
        schedule(c, c.total_step)


@dataclass(frozen=True)
class Schedule:
    """The schedule in steps of a run of ``total`` optimizer steps."""

    total: int
    tinit: int
    tfinal: int
    delta: int


def in_steps(value: float, total: int) -> int:
    """A value in (0, 1) is that fraction of ``total`` (rounded); 0 or a whole number is steps."""
    return round(value * total) if 0 < value < 1 else int(value)


def schedule(c: AdaLoRAConfig, total: int) -> Schedule:
    """The config's schedule for ``total`` steps; raises when it leaves no budget phase."""
    delta = max(1, in_steps(c.deltaT, total))
    s = Schedule(total, in_steps(c.tinit, total), in_steps(c.tfinal, total), delta)
    if not fits(c, total):
        raise ValueError(
            f"AdaLoRA needs tinit + tfinal < total steps to leave a budget phase; got tinit={s.tinit} + "
            f"tfinal={s.tfinal} >= total_steps={total}: lower variant.tinit / variant.tfinal or train longer"
        )
    return s


def fits(c: AdaLoRAConfig, total: int) -> bool:
    """Whether the config's schedule leaves a budget phase in ``total`` steps."""
    return in_steps(c.tinit, total) + in_steps(c.tfinal, total) < total


def budget_at(t: int, s: Schedule, b0: int, b_target: int) -> tuple[int, bool]:
    """The rank budget at 0-based step t and whether the middle phase masks at t."""
    if t <= s.tinit:
        return b0, False
    if t >= s.total - s.tfinal:
        return b_target, True
    left = 1 - (t - s.tinit) / (s.total - s.tfinal - s.tinit)
    return int((b0 - b_target) * (left**3) + b_target), t % s.delta == 0


def triplet_scores(score_a: torch.Tensor, score_e: torch.Tensor, score_b: torch.Tensor) -> torch.Tensor:
    """Score of each rank i: S(E_i) + (row mean of S(A) + column mean of S(B)); shape (r0,)."""
    return score_e.view(-1) + (score_a.mean(dim=1) + score_b.mean(dim=0))


class SVDLinear(AdapterLayer):
    def __init__(self, base_layer: nn.Linear, r: int, alpha: float, dropout: float):
        super().__init__(base_layer)
        dev = base_layer.weight.device
        self.r = r
        self.scaling = alpha / (r + EPS)
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, dtype=torch.float32, device=dev))
        self.lora_E = nn.Parameter(torch.zeros(r, 1, dtype=torch.float32, device=dev))
        self.lora_B = nn.Parameter(torch.empty(self.out_features, r, dtype=torch.float32, device=dev))
        nn.init.normal_(self.lora_A, std=0.02)
        nn.init.normal_(self.lora_B, std=0.02)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.register_buffer("kept", torch.ones(r, dtype=torch.bool, device=dev), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        a, b = (self.lora_A * self.lora_E).to(x.dtype), self.lora_B.to(x.dtype)
        return out + F.linear(F.linear(self.dropout(x), a), b) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return self.lora_B @ (self.lora_A * self.lora_E) * self.scaling

    def adapter_tensors(self) -> Tensors:
        return {"lora_A": self.lora_A, "lora_E": self.lora_E, "lora_B": self.lora_B}

    def orth_penalties(self) -> tuple[torch.Tensor, torch.Tensor]:
        """||A A^T - I||_F and ||B^T B - I||_F, in fp32 even under autocast (I - A A^T is near zero)."""
        a, b = self.lora_A, self.lora_B
        eye = torch.eye(self.r, device=a.device, dtype=a.dtype)
        with torch.autocast(a.device.type, enabled=False):
            return torch.linalg.matrix_norm(a @ a.T - eye), torch.linalg.matrix_norm(b.T @ b - eye)

    @torch.no_grad()
    def apply_mask(self) -> None:
        self.lora_E.masked_fill_(~self.kept.unsqueeze(1), 0.0)

    def pruned_tensors(self) -> Tensors:
        k = self.kept
        return {"lora_A": self.lora_A[k], "lora_E": self.lora_E[k], "lora_B": self.lora_B[:, k]}

    def unpruned(self, name: str, sd: Tensors) -> tuple[Tensors, torch.Tensor]:
        """Saved (maybe pruned) tensors placed in the first k of r0 slots, and the kept mask."""
        a, e, b = (sd[f"{PEFT_PREFIX}{name}.{n}"] for n in NAMES)
        k = a.shape[0]
        n_in, n_out = self.in_features, self.out_features
        if k > self.r or [tuple(t.shape) for t in (a, e, b)] != [(k, n_in), (k, 1), (n_out, k)]:
            raise ValueError(
                f"{name}: saved AdaLoRA shapes A {tuple(a.shape)}, E {tuple(e.shape)}, B {tuple(b.shape)} "
                f"do not fit init_r={self.r}: want A (k, {n_in}), E (k, 1), B ({n_out}, k) with k <= {self.r}"
            )
        full = {n: torch.zeros_like(t) for n, t in self.adapter_tensors().items()}
        full["lora_A"][:k], full["lora_E"][:k], full["lora_B"][:, :k] = a, e, b
        return {f"{PEFT_PREFIX}{name}.{n}": t for n, t in full.items()}, torch.arange(self.r) < k


def adapter_params(layers: dict[str, SVDLinear]) -> list[torch.Tensor]:
    """A, E, B of every layer, in order: the order of the importance EMAs."""
    return [t for layer in layers.values() for t in (layer.lora_A, layer.lora_E, layer.lora_B)]


@register
class AdaLoRA(Variant):
    name = "adalora"
    Config = AdaLoRAConfig
    peft_type = "ADALORA"
    key_hparams: ClassVar[tuple[str, ...]] = ("init_r", "target_r")
    # A schedule that fits the kit's few steps: no warm-up, one final step.
    check_options: ClassVar[dict[str, Any]] = {"options": {"tinit": 0, "tfinal": 1}}
    config: AdaLoRAConfig

    def __init__(self, config: AdaLoRAConfig | None = None):
        super().__init__(config)
        validate(self.config)
        self.model: nn.Module | None = None  # the model apply() adapted
        self.schedule: Schedule | None = None  # in steps, set by the first on_step_end
        self.budget: int | None = None  # rank budget after the last step
        self._ema_ipt: list[torch.Tensor] | None = None  # per adapter tensor, in order A, E, B of each layer
        self._ema_unc: list[torch.Tensor] | None = None

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        """Adapt ``model`` and remember it: ``training_state`` and ``load_training_state``, which the
        checkpoint calls without a model, read its layers (``adapter_layers``)."""
        self.model = super().apply(model, targets)
        return model

    def make_layer(self, name: str, linear: nn.Linear) -> SVDLinear:
        c = self.config
        return SVDLinear(linear, c.init_r, c.alpha, c.dropout)

    def _layers(self) -> dict[str, SVDLinear]:
        """The SVD layers of the model apply() adapted."""
        if self.model is None:
            raise RuntimeError("AdaLoRA: call apply(model, targets) first; the variant has no adapted model")
        return adapter_layers(self.model)

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        if self.config.orth_reg_weight == 0:
            return None
        norms = [n for layer in adapter_layers(model).values() for n in layer.orth_penalties()]
        return self.config.orth_reg_weight * torch.stack(norms).mean()

    # -- importance and budget ---------------------------------------------------------------
    def on_step_end(self, model: nn.Module, step: int, total_steps: int) -> None:
        c = self.config
        layers = adapter_layers(model)
        if not layers:
            raise RuntimeError("AdaLoRA.on_step_end before apply(): the model has no adapted layers")
        s = self.schedule = schedule(c, c.total_step if c.total_step is not None else total_steps)
        t, final = step - 1, s.total - s.tfinal  # t: peft's global_step
        b0 = c.init_r * len(layers)
        budget, mask_now = budget_at(t, s, b0, c.target_r * len(layers))
        if t < final:
            self._update_importance(layers)
            if mask_now:
                self._mask_to_budget(layers, b0 - budget)
        elif t == final:
            self._mask_to_budget(layers, b0 - budget)
            self._ema_ipt = self._ema_unc = None  # the pattern is fixed from here on
        else:
            for layer in layers.values():
                layer.apply_mask()
        self.budget = budget

    @torch.no_grad()
    def _update_importance(self, layers: dict[str, SVDLinear]) -> None:
        """One EMA step of sensitivity and uncertainty for every adapter entry, all layers at once."""
        params = adapter_params(layers)
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            raise RuntimeError("AdaLoRA.on_step_end needs the adapter gradients: call it before zero_grad()")
        if self._ema_ipt is None:
            self._ema_ipt = [torch.zeros_like(p) for p in params]
            self._ema_unc = [torch.zeros_like(p) for p in params]
        b1, b2 = self.config.beta1, self.config.beta2
        ipt = torch._foreach_mul(params, grads)
        torch._foreach_abs_(ipt)
        torch._foreach_mul_(self._ema_ipt, b1)
        torch._foreach_add_(self._ema_ipt, torch._foreach_mul(ipt, 1 - b1))
        gap = torch._foreach_sub(ipt, self._ema_ipt)
        torch._foreach_abs_(gap)
        torch._foreach_mul_(self._ema_unc, b2)
        torch._foreach_add_(self._ema_unc, torch._foreach_mul(gap, 1 - b2))

    def importance(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(Ibar, Ubar) per adapter tensor, keyed '<module>.lora_A' etc. (empty once the pattern is fixed)."""
        if self._ema_ipt is None:
            return {}
        names = [f"{name}.{n}" for name in self._layers() for n in NAMES]
        return dict(zip(names, zip(self._ema_ipt, self._ema_unc, strict=True), strict=True))

    @torch.no_grad()
    def _mask_to_budget(self, layers: dict[str, SVDLinear], n_pruned: int) -> None:
        """Zero the E entries of the n_pruned lowest-scoring triplets (ties at the threshold go too)."""
        s = torch._foreach_mul(self._ema_ipt, self._ema_unc)
        scores = [triplet_scores(*s[i : i + 3]) for i in range(0, len(s), 3)]
        flat = torch.cat(scores)
        threshold = torch.kthvalue(flat, n_pruned).values if n_pruned > 0 else float("-inf")
        for layer, score in zip(layers.values(), scores, strict=True):
            layer.kept = ~(score <= threshold)
            layer.apply_mask()

    def training_state(self) -> dict[str, Any]:
        """The kept ranks, the budget and the importance EMAs (None once the pattern is fixed)."""
        return {
            "kept": {name: layer.kept for name, layer in self._layers().items()},
            "budget": self.budget,
            "ema_ipt": self._ema_ipt,
            "ema_unc": self._ema_unc,
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        layers = self._layers()
        for name, layer in layers.items():
            layer.kept = state["kept"][name].to(layer.kept.device)
        self.budget = state["budget"]
        params = adapter_params(layers)

        def on_device(emas: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            return None if emas is None else [t.to(p.device) for t, p in zip(emas, params, strict=True)]

        self._ema_ipt, self._ema_unc = on_device(state["ema_ipt"]), on_device(state["ema_unc"])

    # -- results and saving ------------------------------------------------------------------
    def summary(self, model: nn.Module) -> dict[str, Any]:
        pattern = {name: layer.kept.tolist() for name, layer in adapter_layers(model).items()}
        ranks = {name: sum(kept) for name, kept in pattern.items()}
        return {
            "rank_pattern": pattern,
            "final_ranks": ranks,
            "total_rank": sum(ranks.values()),
            "budget": self.budget,
            "target_budget": self.config.target_r * len(pattern),
        }

    def adapter_state_dict(self, model: nn.Module) -> Tensors:
        """peft's saved form: A, E, B keep only the ranks in the rank pattern."""
        sd = super().adapter_state_dict(model)
        for name, layer in adapter_layers(model).items():
            for key, t in layer.pruned_tensors().items():
                sd[f"{PEFT_PREFIX}{name}.{key}"] = t.detach()
        return sd

    def load_adapter_state_dict(self, model: nn.Module, sd: Tensors) -> None:
        """Load a full or pruned adapter: the k saved ranks of a layer fill its first k slots, the rest stay
        masked (the order of SVD triplets does not change dW, so outputs and a re-save are unchanged)."""
        layers = adapter_layers(model)
        full, kept = dict(sd), {}
        for name, layer in layers.items():
            if all(f"{PEFT_PREFIX}{name}.{n}" in sd for n in NAMES):
                padded, kept[name] = layer.unpruned(name, sd)
                full.update(padded)
        super().load_adapter_state_dict(model, full)  # raises on missing or unexpected keys
        for name, mask in kept.items():
            layers[name].kept = mask.to(layers[name].kept.device)

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        pattern = {f"{name}.lora_E": layer.kept.tolist() for name, layer in adapter_layers(model).items()}
        # peft validates total_step even for inference: never trained, write the shortest valid schedule.
        s = self.schedule or schedule(c, c.total_step or next(t for t in count(1) if fits(c, t)))
        return {
            "init_r": c.init_r,
            "target_r": c.target_r,
            "rank_pattern": pattern,
            "total_step": s.total,
            "tinit": s.tinit,
            "tfinal": s.tfinal,
            "deltaT": s.delta,
            "beta1": c.beta1,
            "beta2": c.beta2,
            "orth_reg_weight": c.orth_reg_weight,
            "lora_alpha": c.alpha,
            "lora_dropout": c.dropout,
            "init_lora_weights": True,
            "bias": "none",
            "fan_in_fan_out": False,
        }


@twin_of(AdaLoRA)
class AdaLoRATwin(PeftTwin):
    """peft's AdaLoRA for bench speed: its forward adds the orthogonality term, and update_and_allocate
    follows each optimizer step."""

    @classmethod
    def benchmark_options(cls, total_steps: int) -> dict[str, Any]:
        """No warm-up or final phase: every step updates importance and masks (the costliest phase)."""
        return {"tinit": 0, "tfinal": 0, "total_step": total_steps}

    def on_step_end(self, peft_model: nn.Module, step: int, total_steps: int) -> None:
        peft_model.base_model.update_and_allocate(step - 1)  # peft's global_step is 0-based
