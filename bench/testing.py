"""The variant contract test-kit: one call checks that a variant (built-in or plugin) behaves.

    from bench.testing import check_variant
    check_variant("myvariant")                      # or check_variant(MyVariant, {"r": 4})

On a tiny random BERT (seconds, offline) it checks: the output at initialisation equals the base
model's; after a few training steps only trainable parameters changed (and some did); merged forward
equals unmerged forward; merging twice equals merging once; unmerge restores every weight; the saved
adapter (peft's file format) loads into a fresh model and reproduces the logits; ``param_groups``
partitions the trainable parameters; the reported trainable-parameter count equals the count saved
in the adapter file.
Each failure raises AssertionError naming the check and the numbers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

import variants
from bench.models import ModelConfig, load_tokenizer, tiny_model
from bench.results import save_adapter
from variants.base import Targets, Variant

TINY = ModelConfig(name="tiny", source="tiny")
SENTENCES = ["a gripping, funny film.", "dull and far too long", "i loved it!", "not worth the ticket"]


def _batch() -> dict[str, torch.Tensor]:
    return dict(load_tokenizer(TINY)(SENTENCES, padding=True, return_tensors="pt"))


def _build(cls: type[Variant], options: dict[str, Any], targets: Targets, seed: int = 0):
    variant = cls(cls.Config(**{"name": cls.name, **options}))
    model = tiny_model(TINY, num_labels=2, seed=seed)
    torch.manual_seed(seed)  # adapter initialisation
    variant.apply(model, targets)
    return variant, model.eval()


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def _close(a: torch.Tensor, b: torch.Tensor, what: str, atol: float, rtol: float = 1e-5) -> None:
    err = (a - b).abs().max().item()
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"{what}: max abs difference {err:.3g} > atol {atol:g}"


def _train(model, variant: Variant, batch, steps: int, lr: float) -> None:
    labels = torch.tensor([1, 0, 1, 0])
    optimizer = torch.optim.AdamW(variant.param_groups(model, lr, 0.0))
    model.train()
    for step in range(1, steps + 1):
        loss = model(**batch, labels=labels).loss
        extra = variant.extra_loss(model)
        (loss if extra is None else loss + extra).backward()
        optimizer.step()
        variant.on_step_end(model, step, steps)
        optimizer.zero_grad()
    model.eval()


def check_variant(
    variant: str | type[Variant],
    options: dict[str, Any] | None = None,
    targets: Targets | None = None,
    init_atol: float = 1e-6,
    atol: float = 1e-5,
    steps: int = 3,
    lr: float = 1e-2,
) -> None:
    """Run the whole contract on a tiny model; raises AssertionError on the first broken check.

    ``options`` are config values for the variant (its defaults otherwise); ``init_atol`` is how far the
    output at initialisation may be from the base model's (0 in exact arithmetic for additive adapters;
    larger for a quantized base).
    """
    cls = variants.get(variant) if isinstance(variant, str) else variant
    options = dict(options or {})
    targets = targets or Targets(modules=["query", "value"], head=["classifier"])
    assert issubclass(cls.Config, variants.VariantConfig), (
        f"{cls.__name__}.Config must subclass VariantConfig"
    )
    batch = _batch()

    base_logits = _logits(tiny_model(TINY, num_labels=2, seed=0).eval(), batch)
    v, model = _build(cls, options, targets)
    _close(_logits(model, batch), base_logits, "output at initialisation vs the base model", init_atol)

    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "the variant left no trainable parameter"
    grouped = [p for g in v.param_groups(model, 1e-3, 0.01) for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}), "param_groups lists a parameter twice"
    assert {id(p) for p in grouped} == {id(p) for p in trainable.values()}, (
        "param_groups must hold exactly the trainable parameters"
    )

    # The count the runner reports (trainable parameters after apply) is what the adapter saves before
    # training changes anything (AdaLoRA then saves fewer: only the ranks it keeps). Saved tensors that
    # are frozen in the model (VeRA's shared projections) are not trainable parameters.
    n_trainable = sum(p.numel() for p in trainable.values())
    frozen = {t.data_ptr() for t in model.buffers()} | {
        p.data_ptr() for p in model.parameters() if not p.requires_grad
    }
    n_saved = sum(t.numel() for t in v.adapter_state_dict(model).values() if t.data_ptr() not in frozen)
    assert n_trainable == n_saved, (
        f"reported trainable params {n_trainable} != params in the saved adapter {n_saved}"
    )

    before = {k: t.clone() for k, t in model.state_dict().items()}
    _train(model, v, batch, steps, lr)
    after = model.state_dict()
    frozen_changed = [
        k for k in before if not _is_trainable(k, trainable) and not torch.equal(before[k], after[k])
    ]
    assert not frozen_changed, f"frozen tensors changed in training: {frozen_changed[:5]}"
    assert any(not torch.equal(before[k], after[k]) for k in before if _is_trainable(k, trainable)), (
        "no trainable parameter changed after training"
    )

    trained = _logits(model, batch)
    weights = {k: t.clone() for k, t in model.state_dict().items()}
    v.merge(model)
    merged_once = _logits(model, batch)
    _close(merged_once, trained, "merged forward vs unmerged forward", atol)
    v.merge(model)
    assert torch.equal(_logits(model, batch), merged_once), "merging twice differs from merging once"
    v.unmerge(model)
    restored = model.state_dict()
    changed = [k for k in weights if not torch.equal(weights[k], restored[k])]
    assert not changed, f"unmerge did not restore: {changed[:5]}"
    _close(_logits(model, batch), trained, "forward after unmerge", 0.0, 0.0)

    sd = v.adapter_state_dict(model)
    with tempfile.TemporaryDirectory() as tmp:
        save_adapter(Path(tmp), sd, v.adapter_config(model, "tiny-bert"))
        loaded = load_file(str(Path(tmp) / "adapter_model.safetensors"))
    fresh_v, fresh = _build(cls, options, targets, seed=0)
    fresh_v.load_adapter_state_dict(fresh, loaded)
    for k, t in fresh_v.adapter_state_dict(fresh).items():
        assert torch.equal(t, loaded[k]), f"adapter tensor {k} did not round-trip"
    _close(_logits(fresh, batch), trained, "logits after save -> load into a fresh model", atol)


def _is_trainable(state_key: str, trainable: dict[str, torch.nn.Parameter]) -> bool:
    return state_key in trainable
