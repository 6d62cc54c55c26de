"""Our LoRA against Hugging Face peft (a test reference only) on identical weights.

Two ways: (1) a peft model built on an identical base with our trained tensors loaded into it, and
(2) our adapter saved to disk and loaded with ``peft.PeftModel.from_pretrained``. The helpers here are
shared with the DoRA, VeRA and LoRA+ reference tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import train_a_few_steps
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file
from transformers import AutoModelForSequenceClassification

from variants import build
from variants.base import PEFT_PREFIX, adapter_layers
from variants.lora import LoRALinear

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


def peft_twin(base, peft_config, variant, model):
    """Way (1): a peft model on ``base`` (an identical copy of ours) holding our trained tensors."""
    twin = get_peft_model(base, peft_config)
    ours = variant.adapter_state_dict(model)
    result = set_peft_model_state_dict(twin, ours)
    assert not result.unexpected_keys, result.unexpected_keys
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


def assert_same_outputs(ours, theirs) -> None:
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(b, a, rtol=RTOL, atol=ATOL)


def train_mode_outputs(models, batch, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each model's outputs in train mode from the same RNG state (so the same dropout masks)."""
    results = []
    for m in models:
        torch.manual_seed(seed)
        results.append(outputs(m.train(), batch))
    return results


def trained(tiny_bert, batch, targets, name: str, **options):
    variant = build(name, options)
    model = variant.apply(tiny_bert(), targets)
    return variant, train_a_few_steps(model, variant, batch)


def assert_matches_peft(tmp_path, tiny_bert, batch, variant, model, peft_config):
    ours = outputs(model, batch)
    base = outputs(tiny_bert(), batch)
    assert (ours[1] - base[1]).abs().max() > 1e3 * ATOL  # the adapters matter far beyond the tolerance
    assert_same_outputs(ours, outputs(peft_twin(tiny_bert(), peft_config, variant, model), batch))
    assert_same_outputs(ours, outputs(peft_from_disk(tmp_path, tiny_bert(), variant, model), batch))


def lora_config(targets, **kwargs) -> LoraConfig:
    return LoraConfig(
        task_type="SEQ_CLS", target_modules=targets.modules, modules_to_save=["classifier"], **kwargs
    )


CASES = {
    "default": ({"r": 4, "alpha": 8.0}, {"r": 4, "lora_alpha": 8}),
    "rslora": ({"r": 4, "alpha": 8.0, "use_rslora": True}, {"r": 4, "lora_alpha": 8, "use_rslora": True}),
    "gaussian": (
        {"r": 4, "alpha": 4.0, "init": "gaussian"},
        {"r": 4, "lora_alpha": 4, "init_lora_weights": "gaussian"},
    ),
    "dropout": ({"r": 8, "alpha": 16.0, "dropout": 0.1}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1}),
}


@pytest.mark.parametrize("case", CASES)
def test_lora_logits_equal_peft(case, tmp_path, tiny_bert, tiny_batch, attention_targets):
    ours, theirs = CASES[case]
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "lora", **ours)
    assert_matches_peft(
        tmp_path, tiny_bert, tiny_batch, variant, model, lora_config(attention_targets, **theirs)
    )


def test_lora_dropout_in_training_equals_peft(tiny_bert, tiny_batch, attention_targets):
    """Same seed, same dropout masks: the train-mode outputs agree, so dropout sits where peft puts it."""
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "lora", r=4, alpha=8.0, dropout=0.3)
    twin = peft_twin(
        tiny_bert(), lora_config(attention_targets, r=4, lora_alpha=8, lora_dropout=0.3), variant, model
    )
    assert_same_outputs(*train_mode_outputs([model, twin], tiny_batch, seed=7))


def test_lora_scaling_rslora():
    linear = torch.nn.Linear(64, 64)
    assert LoRALinear(linear, 16, 8.0, 0.0, False, "kaiming").scaling == pytest.approx(0.5)
    assert LoRALinear(linear, 16, 8.0, 0.0, True, "kaiming").scaling == pytest.approx(2.0)


def test_lora_init_distributions():
    """kaiming-uniform(a=sqrt 5): A in +-1/sqrt(in); gaussian: A ~ N(0, 1/r); B = 0 either way."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(512, 256)
    kaiming = LoRALinear(linear, 16, 16.0, 0.0, False, "kaiming")
    bound = 1 / math.sqrt(512)
    assert kaiming.lora_A.abs().max() <= bound
    assert kaiming.lora_A.abs().max() > 0.99 * bound
    assert kaiming.lora_A.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    gaussian = LoRALinear(linear, 16, 16.0, 0.0, False, "gaussian")
    assert gaussian.lora_A.std().item() == pytest.approx(1 / 16, rel=0.03)
    assert gaussian.lora_A.mean().abs().item() < 0.003
    assert not kaiming.lora_B.any() and not gaussian.lora_B.any()


def test_lora_merge_equals_peft_merge(tiny_bert, tiny_batch, attention_targets):
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "lora", r=4, alpha=8.0)
    twin = peft_twin(tiny_bert(), lora_config(attention_targets, r=4, lora_alpha=8), variant, model)
    variant.merge(model)
    merged = twin.merge_and_unload()
    for name in ("query", "value"):
        ours = model.bert.encoder.layer[1].attention.self.get_submodule(name).base_layer.weight
        theirs = merged.bert.encoder.layer[1].attention.self.get_submodule(name).weight
        torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=ATOL)
