"""Comparing a variant with Hugging Face peft (a test reference only) on identical weights.

Two ways: (1) a peft model built on an identical base with our trained tensors loaded into it
(``peft_twin``), and (2) our adapter saved to disk and loaded with ``peft.PeftModel.from_pretrained``
(``peft_from_disk``). Used by the peft parity matrix (tests/reference/test_peft_parity.py) and the
variants' own tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file
from transformers import AutoModelForSequenceClassification

from helpers.training import train_a_few_steps
from variants import build
from variants.base import PEFT_PREFIX, adapter_layers

RTOL, ATOL = 1e-5, 1e-6


def save_adapter_for_test(variant, model, out_dir: Path, base_path: str) -> Path:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` the way peft lays them out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in variant.adapter_state_dict(model).items()}
    save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = variant.adapter_config(model, base_path)
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return out_dir


def peft_key(name: str) -> str:
    """A peft parameter name in the on-disk form our adapter_state_dict uses (adapter name dropped)."""
    name = name.replace(".modules_to_save.default.", ".").replace(".default", "")
    return name.replace("lora_magnitude_vector.weight", "lora_magnitude_vector")


def live_by_key(model) -> dict[str, torch.Tensor]:
    """Our trained tensors themselves under peft's keys: every adapter layer's tensors plus the head."""
    live = {
        f"{PEFT_PREFIX}{name}.{key}": t
        for name, layer in adapter_layers(model).items()
        for key, t in layer.adapter_tensors().items()
    }
    return live | {PEFT_PREFIX + n: p for n, p in model.named_parameters() if n.startswith("classifier.")}


def named_groups(param_groups, tensors: dict[str, torch.Tensor]) -> list[tuple[frozenset[str], float, float]]:
    """Optimizer groups as (the keys of their tensors in ``tensors``, lr, weight decay)."""
    names = {id(t): key for key, t in tensors.items()}
    return [(frozenset(names[id(p)] for p in g["params"]), g["lr"], g["weight_decay"]) for g in param_groups]


def peft_twin(base, peft_config, variant, model):
    """Way (1): a peft model on ``base`` (an identical copy of ours) holding our trained tensors."""
    twin = get_peft_model(base, peft_config)
    ours = variant.adapter_state_dict(model)
    result = set_peft_model_state_dict(twin, ours)
    # peft copies a prompt-learning adapter's prompt_embeddings itself, then still reports the key
    assert not set(result.unexpected_keys) - {"prompt_embeddings"}, result.unexpected_keys
    theirs = get_peft_model_state_dict(twin)
    assert set(theirs) == set(ours), sorted(set(theirs) ^ set(ours))
    for k in ours:
        torch.testing.assert_close(theirs[k], ours[k], rtol=0, atol=0)
    return twin.eval()


def peft_from_disk(tmp_path: Path, base, variant, model):
    """Way (2): base and our adapter saved to disk, loaded with ``PeftModel.from_pretrained``."""
    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    base.save_pretrained(base_dir)
    save_adapter_for_test(variant, model, adapter_dir, str(base_dir))
    loaded = AutoModelForSequenceClassification.from_pretrained(base_dir)
    return PeftModel.from_pretrained(loaded, adapter_dir).eval()


def outputs(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the last hidden state (O(1), so more sensitive to the adapters than the tiny logits)."""
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return out.logits, out.hidden_states[-1]


def assert_same_outputs(ours, theirs, rtol: float = RTOL, atol: float = ATOL) -> None:
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(b, a, rtol=rtol, atol=atol)


def train_mode_outputs(models, batch, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each model's outputs in train mode from the same RNG state (so the same dropout masks)."""
    results = []
    for m in models:
        torch.manual_seed(seed)
        results.append(outputs(m.train(), batch))
    return results


def trained(tiny_bert, batch, targets, name: str, steps: int = 3, **options):
    """Variant ``name`` with ``options`` applied to a fresh tiny BERT and trained ``steps`` steps."""
    variant = build(name, options)
    model = variant.apply(tiny_bert(), targets)
    return variant, train_a_few_steps(model, variant, batch, steps=steps)


def assert_matches_peft(
    tmp_path, base, batch, variant, model, peft_config, rtol: float = RTOL, atol: float = ATOL
):
    """Both ways give our outputs; ``base()`` makes a fresh copy of the base model peft starts from."""
    ours = outputs(model, batch)
    hidden = outputs(base(), batch)[1]  # an input-level method puts positions in front: compare the input's
    assert (ours[1][:, -hidden.shape[1] :] - hidden).abs().max() > 1e3 * atol  # adapters matter far beyond it
    assert_same_outputs(ours, outputs(peft_twin(base(), peft_config, variant, model), batch), rtol, atol)
    assert_same_outputs(ours, outputs(peft_from_disk(tmp_path, base(), variant, model), batch), rtol, atol)


def lora_config(targets, **kwargs) -> LoraConfig:
    return LoraConfig(
        task_type="SEQ_CLS", target_modules=targets.modules, modules_to_save=["classifier"], **kwargs
    )
