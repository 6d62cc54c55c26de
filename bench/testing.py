"""The variant contract test-kit: named checks that a variant (built-in or plugin) behaves.

    from bench.testing import check_variant, run_check, CHECKS
    check_variant("myvariant")                      # every check; or check_variant(MyVariant, {"r": 4})
    run_check("myvariant", "merge_equals_unmerged") # one check by name (a parametrised test per check)

Each check builds a tiny random BERT (seconds, offline) whose biases and LayerNorm parameters are
randomised (at their zero / one init a bias bug would go unseen), adapts it on the variant's own targets
(``Config.targets`` resolved against the tiny model's presets), and trains it with
``bench.run.loop.train_step``. Beyond what a method must not do (change frozen weights, change the output
at init, merge inexactly), two checks see that it works: after a few steps every trainable tensor has a
nonzero gradient and has moved (a dead adapter, whose forward ignores what it trains, fails), and, where
the variant names a ``peft_type`` and peft is installed, ``peft.PeftModel.from_pretrained`` loads the
saved adapter without a complaint and gives our logits.
A check that does not apply to a variant is skipped by what the variant declares, never by its name:
the merge checks when it has nothing to merge (``Variant.mergeable`` False), the output at init when its
``check_options`` set ``init_atol`` to None (prompt tuning starts away from the base), peft's loader
without a ``peft_type`` or without peft. The variant class's ``check_options`` supply its options and
tolerances; explicit arguments win. Each failure raises AssertionError naming the check and the numbers.
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
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
from variants.base import Targets, Variant, adapter_layers, is_norm

TINY = model_config("tiny")
SENTENCES = ["a gripping, funny film.", "dull and far too long", "i loved it!", "not worth the ticket"]
LABELS = [1, 0, 1, 0]
PEFT_BASES = ("original", "adapted")
# What peft says when it cannot take an adapter as saved: config fields it does not know (it drops them),
# tensors its model has and the file lacks (they keep peft's initialisation).
PEFT_COMPLAINTS = ("Unexpected keyword arguments", "missing adapter keys")


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
    # output at init vs the base model (0 in exact arithmetic for additive updates); None: not checked
    init_atol: float | None = 1e-6
    atol: float = 1e-5  # merged vs unmerged, reloaded vs trained, peft's logits vs ours
    steps: int = 3
    lr: float = 1e-2
    perturb_base: bool = True  # False: the tiny model's zero biases and unit norms, as initialised
    # The base peft loads the adapter onto: the original model, or one whose adapted layers hold the
    # weights our layers compute with (``base_weight()``: QLoRA's dequantized NF4).
    peft_base: str = "original"

    def __post_init__(self) -> None:
        assert issubclass(self.cls.Config, variants.VariantConfig), (
            f"{self.cls.__name__}.Config must subclass VariantConfig"
        )
        assert self.peft_base in PEFT_BASES, f"peft_base {self.peft_base!r}: choose one of {PEFT_BASES}"
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

    def base_for_peft(self, ours: nn.Module) -> nn.Module:
        """The base peft's loader gets (``peft_base``), for a trained model ``ours``."""
        base = self.base()
        if self.peft_base == "adapted":
            with torch.no_grad():
                for name, layer in adapter_layers(ours).items():
                    base.get_submodule(name).weight.copy_(layer.base_weight())
        return base

    def logits(self, model: nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return model(**self.batch).logits

    def hidden(self, model: nn.Module) -> torch.Tensor:
        """The last hidden state: O(1), so it shows an adapter's effect more than the tiny logits do."""
        with torch.no_grad():
            return model(**self.batch, output_hidden_states=True).hidden_states[-1]


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


def every_trainable_tensor_learns(s: Subject) -> None:
    """No dead adapter: after the training steps, one more backward (in eval mode, so that no dropout of a
    rank or a module hides a tensor the forward uses) gives every trainable tensor a nonzero gradient, and
    every one has moved since initialisation (a forward that ignores what the method trains leaves it
    without a gradient, however well the head learns)."""
    _, start = s.build()
    before = {n: p.detach().clone() for n, p in _trainable(start).items()}
    variant, model = s.trained()
    trainable = _trainable(model)
    assert set(trainable) == set(before), "the trainable parameters differ between two builds"
    model.eval()
    loss = model(**s.batch, labels=torch.tensor(LABELS)).loss
    extra = variant.extra_loss(model)
    (loss if extra is None else loss + extra).backward()
    no_grad = [n for n, p in trainable.items() if p.grad is None or not bool(p.grad.any())]
    assert not no_grad, (
        f"{len(no_grad)} trainable tensors get no gradient after {s.steps} steps (does the forward use "
        f"them?): {no_grad[:5]}"
    )
    still = [n for n, p in trainable.items() if torch.equal(p.detach(), before[n])]
    assert not still, f"{len(still)} trainable tensors never moved in {s.steps} steps: {still[:5]}"


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


def peft_loads_the_saved_adapter(s: Subject) -> None:
    """peft's own loader takes the saved adapter as it is (no unknown config field, no tensor missing, the
    same tensor names) and its model gives our logits."""
    from peft import PeftModel, get_peft_model_state_dict

    variant, model = s.trained()
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp))
        save_adapter(
            folder.adapter_path, variant.adapter_state_dict(model), variant.adapter_config(model, "tiny")
        )
        saved = set(load_file(str(folder.adapter_weights_path)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            theirs = PeftModel.from_pretrained(
                s.base_for_peft(model), str(folder.adapter_path), use_safetensors=True
            ).eval()
    complaints = [str(w.message) for w in caught if any(c in str(w.message) for c in PEFT_COMPLAINTS)]
    assert not complaints, f"peft's loader complains about the saved adapter: {complaints[0][:400]}"
    loaded = set(get_peft_model_state_dict(theirs, save_embedding_layers=False))  # no look-up of the base
    assert loaded == saved, (
        f"peft's model holds other adapter tensors than the file: only peft's {sorted(loaded - saved)[:5]}, "
        f"only the file's {sorted(saved - loaded)[:5]}"
    )
    _close(s.logits(theirs), s.logits(model), "peft's PeftModel.from_pretrained logits vs ours", s.atol)
    _close(s.hidden(theirs), s.hidden(model), "peft's last hidden state vs ours", s.atol)


CHECKS: dict[str, Callable[[Subject], None]] = {
    check.__name__: check
    for check in (
        output_at_init_equals_base,
        param_groups_partition_trainable,
        trainable_count_equals_saved,
        training_changes_only_trainable,
        every_trainable_tensor_learns,
        merge_equals_unmerged,
        merge_twice_equals_once,
        unmerge_restores_weights,
        save_load_round_trip,
        peft_loads_the_saved_adapter,
    )
}
MERGE_CHECKS = ("merge_equals_unmerged", "merge_twice_equals_once", "unmerge_restores_weights")


def skip_reason(check: str, s: Subject) -> str | None:
    """Why ``check`` does not apply to the subject's variant, by what it declares; None when it does."""
    name = s.cls.__name__
    if check in MERGE_CHECKS and not s.cls.mergeable:
        return f"{name} has nothing to merge (mergeable = False)"
    if check == "output_at_init_equals_base" and s.init_atol is None:
        return f"{name} starts away from the base model (init_atol None)"
    if check == "peft_loads_the_saved_adapter":
        if s.cls.peft_type is None:
            return f"{name} saves no peft adapter (peft_type None)"
        if importlib.util.find_spec("peft") is None:
            return "peft is not installed"
    return None


def subject(variant: str | type[Variant], options: dict[str, Any] | None = None, **settings) -> Subject:
    """The Subject of ``variant``: its class's ``check_options``, overridden by the arguments given."""
    cls = variants.get(variant) if isinstance(variant, str) else variant
    merged = {**cls.check_options, **settings}
    merged["options"] = {**cls.check_options.get("options", {}), **(options or {})}
    return Subject(cls, **merged)


def run_check(
    variant: str | type[Variant], check: str, options: dict[str, Any] | None = None, **settings
) -> str | None:
    """Run one named check (a key of CHECKS); raises AssertionError when it fails. Returns None when it
    ran, or why it does not apply to this variant (``skip_reason``; a test may pytest.skip with it)."""
    if check not in CHECKS:
        raise KeyError(f"unknown check {check!r}; checks: {', '.join(CHECKS)}")
    s = subject(variant, options, **settings)
    reason = skip_reason(check, s)
    if reason is None:
        CHECKS[check](s)
    return reason


def check_variant(variant: str | type[Variant], options: dict[str, Any] | None = None, **settings) -> None:
    """Run every check that applies (``skip_reason``) in order; raises AssertionError on the first broken
    one.

    ``options`` are config values for the variant (its defaults otherwise); ``settings`` are Subject
    fields: targets, init_atol, atol, steps, lr, perturb_base, peft_base.
    """
    s = subject(variant, options, **settings)
    for name, check in CHECKS.items():
        if skip_reason(name, s) is None:
            check(s)
