"""The variant contract test-kit: named checks that a variant (built-in or plugin) behaves.

    from bench.testing import check_variant, run_check, CHECKS
    check_variant("myvariant")                      # every check; or check_variant(MyVariant, {"r": 4})
    run_check("myvariant", "merge_equals_unmerged") # one check by name (a parametrised test per check)

Each check builds a tiny random BERT (seconds, offline) whose biases and LayerNorm parameters are
randomised (at their zero / one init a bias bug would go unseen), adapts it on the variant's own targets
(``Config.targets`` resolved against the tiny model's presets), and trains it with
``bench.run.loop.train_step``.
The variant class's ``check_options`` supply its options and tolerances; explicit arguments win.
Each failure raises AssertionError naming the check and the numbers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

import variants
from bench.inputs.models import load_tokenizer, model_config, resolve_targets, tiny_model
from bench.results.adapter_files import save_adapter
from bench.results.run_folder import RunFolder
from bench.run.loop import train_step
from variants.base import Targets, Variant, is_norm

TINY = model_config("tiny")
SENTENCES = ["a gripping, funny film.", "dull and far too long", "i loved it!", "not worth the ticket"]
LABELS = [1, 0, 1, 0]


def perturb_biases_and_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random biases and norm parameters (seeded), so that bugs in how a variant treats them show."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                noise = 0.2 * torch.randn(p.shape, generator=generator)
                if is_norm(module) and name == "weight":
                    p.copy_(1 + noise)
                elif name == "bias":
                    p.copy_(noise)
    return model


@dataclass
class Subject:
    """A variant under test and the settings of its checks."""

    cls: type[Variant]
    options: dict[str, Any] = field(default_factory=dict)
    targets: Targets | None = None  # None: the variant's own Config.targets on the tiny model
    init_atol: float = 1e-6  # output at init vs the base model (0 in exact arithmetic for additive updates)
    atol: float = 1e-5  # merged vs unmerged, reloaded vs trained
    steps: int = 3
    lr: float = 1e-2
    perturb_base: bool = True  # False: the tiny model's zero biases and unit norms, as initialised

    def __post_init__(self) -> None:
        assert issubclass(self.cls.Config, variants.VariantConfig), (
            f"{self.cls.__name__}.Config must subclass VariantConfig"
        )
        if self.targets is None:
            config = self.cls.Config(**{"name": self.cls.name, **self.options})
            self.targets = resolve_targets(TINY, config.targets)
        self.batch = dict(load_tokenizer(TINY)(SENTENCES, padding=True, return_tensors="pt"))

    def base(self, seed: int = 0) -> nn.Module:
        model = tiny_model(TINY, num_labels=2, seed=seed)
        return (perturb_biases_and_norms(model, seed) if self.perturb_base else model).eval()

    def build(self, seed: int = 0) -> tuple[Variant, nn.Module]:
        variant = self.cls(self.cls.Config(**{"name": self.cls.name, **self.options}))
        model = self.base(seed)
        torch.manual_seed(seed)  # adapter initialisation
        variant.apply(model, self.targets)
        return variant, model.eval()

    def trained(self) -> tuple[Variant, nn.Module]:
        """A built variant after ``steps`` AdamW steps of the project's train_step (no decay, no clip)."""
        variant, model = self.build()
        optimizer = torch.optim.AdamW(variant.param_groups(model, self.lr, 0.0))
        batch = {**self.batch, "labels": torch.tensor(LABELS)}
        model.train()
        for step in range(1, self.steps + 1):
            train_step(model, variant, optimizer, [batch], step, self.steps, torch.device("cpu"))
        return variant, model.eval()

    def logits(self, model: nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return model(**self.batch).logits


def _close(a: torch.Tensor, b: torch.Tensor, what: str, atol: float, rtol: float = 1e-5) -> None:
    err = (a - b).abs().max().item()
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"{what}: max abs difference {err:.3g} > atol {atol:g}"


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


# -- the checks ------------------------------------------------------------------------------------
def output_at_init_equals_base(s: Subject) -> None:
    _, model = s.build()
    _close(s.logits(model), s.logits(s.base()), "output at initialisation vs the base model", s.init_atol)


def param_groups_partition_trainable(s: Subject) -> None:
    variant, model = s.build()
    trainable = _trainable(model)
    assert trainable, "the variant left no trainable parameter"
    grouped = [p for g in variant.param_groups(model, 1e-3, 0.01) for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}), "param_groups lists a parameter twice"
    assert {id(p) for p in grouped} == {id(p) for p in trainable.values()}, (
        "param_groups must hold exactly the trainable parameters"
    )


def trainable_count_equals_saved(s: Subject) -> None:
    """The count the runner reports (trainable parameters after apply) is what the adapter saves before
    training (AdaLoRA then saves fewer: only the ranks it keeps). Saved tensors that are frozen in the
    model (VeRA's shared projections) are not trainable parameters."""
    variant, model = s.build()
    n_trainable = sum(p.numel() for p in _trainable(model).values())
    frozen = {t.data_ptr() for t in model.buffers()} | {
        p.data_ptr() for p in model.parameters() if not p.requires_grad
    }
    saved = variant.adapter_state_dict(model).values()
    n_saved = sum(t.numel() for t in saved if t.data_ptr() not in frozen)
    assert n_trainable == n_saved, (
        f"reported trainable params {n_trainable} != params in the saved adapter {n_saved}"
    )


def training_changes_only_trainable(s: Subject) -> None:
    _, model = s.build()
    trainable = _trainable(model)
    before = {k: t.clone() for k, t in model.state_dict().items()}
    _, model = s.trained()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen_changed = sorted(changed - set(trainable))
    assert not frozen_changed, f"frozen tensors changed in training: {frozen_changed[:5]}"
    assert changed & set(trainable), "no trainable parameter changed after training"


def merge_equals_unmerged(s: Subject) -> None:
    variant, model = s.trained()
    trained = s.logits(model)
    variant.merge(model)
    _close(s.logits(model), trained, "merged forward vs unmerged forward", s.atol)


def merge_twice_equals_once(s: Subject) -> None:
    variant, model = s.trained()
    variant.merge(model)
    once = s.logits(model)
    variant.merge(model)
    assert torch.equal(s.logits(model), once), "merging twice differs from merging once"


def unmerge_restores_weights(s: Subject) -> None:
    variant, model = s.trained()
    trained = s.logits(model)
    weights = {k: t.clone() for k, t in model.state_dict().items()}
    variant.merge(model)
    variant.unmerge(model)
    restored = model.state_dict()
    changed = [k for k in weights if not torch.equal(weights[k], restored[k])]
    assert not changed, f"unmerge did not restore: {changed[:5]}"
    _close(s.logits(model), trained, "forward after unmerge", 0.0, 0.0)


def save_load_round_trip(s: Subject) -> None:
    variant, model = s.trained()
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp))
        adapter = variant.adapter_config(model, "tiny-bert")
        save_adapter(folder.adapter_path, variant.adapter_state_dict(model), adapter)
        loaded = load_file(str(folder.adapter_weights_path))
    fresh_variant, fresh = s.build()
    fresh_variant.load_adapter_state_dict(fresh, loaded)
    for k, t in fresh_variant.adapter_state_dict(fresh).items():
        assert torch.equal(t, loaded[k]), f"adapter tensor {k} did not round-trip"
    _close(s.logits(fresh), s.logits(model), "logits after save -> load into a fresh model", s.atol)


CHECKS: dict[str, Callable[[Subject], None]] = {
    check.__name__: check
    for check in (
        output_at_init_equals_base,
        param_groups_partition_trainable,
        trainable_count_equals_saved,
        training_changes_only_trainable,
        merge_equals_unmerged,
        merge_twice_equals_once,
        unmerge_restores_weights,
        save_load_round_trip,
    )
}


def subject(variant: str | type[Variant], options: dict[str, Any] | None = None, **settings) -> Subject:
    """The Subject of ``variant``: its class's ``check_options``, overridden by the arguments given."""
    cls = variants.get(variant) if isinstance(variant, str) else variant
    merged = {**cls.check_options, **settings}
    merged["options"] = {**cls.check_options.get("options", {}), **(options or {})}
    return Subject(cls, **merged)


def run_check(variant: str | type[Variant], check: str, options: dict[str, Any] | None = None, **settings):
    """Run one named check (a key of CHECKS); raises AssertionError when it fails."""
    if check not in CHECKS:
        raise KeyError(f"unknown check {check!r}; checks: {', '.join(CHECKS)}")
    CHECKS[check](subject(variant, options, **settings))


def check_variant(variant: str | type[Variant], options: dict[str, Any] | None = None, **settings) -> None:
    """Run every check in order; raises AssertionError on the first broken one.

    ``options`` are config values for the variant (its defaults otherwise); ``settings`` are Subject
    fields: targets, init_atol, atol, steps, lr, perturb_base.
    """
    s = subject(variant, options, **settings)
    for check in CHECKS.values():
        check(s)
