"""AdaLoRA: the pruned saved adapter round-trips, strict loading, config validation, the schedule in steps.
(Forward and orthogonality loss, importance / budget / mask step by step and the pruned adapter loaded by
peft, against peft: tests/reference/test_peft_parity.py.)"""

import pytest
import torch
from helpers.training import train_a_few_steps

import variants
from variants.adalora import Schedule, fits, schedule
from variants.base import adapter_layers

NAMES = ("lora_A", "lora_E", "lora_B")
SCHEDULE = {"init_r": 12, "target_r": 8, "tinit": 2, "tfinal": 3}  # a 12-step run: 3 warm-up, 3 fixed steps


def ours(tiny_bert, targets, **options):
    model = tiny_bert()
    variant = variants.build("adalora", options)
    variant.apply(model, targets)
    return model, variant


def test_pruned_adapter_round_trips(tiny_bert, tiny_batch, attention_targets):
    """Saved like peft: A, E, B cut to the kept ranks, the rank pattern in the config; it loads back into a
    fresh model with the same outputs, ranks and saved tensors."""
    model, variant = ours(tiny_bert, attention_targets, **SCHEDULE)
    train_a_few_steps(model, variant, tiny_batch, steps=12)
    ranks = variant.summary(model)["final_ranks"]
    assert sum(ranks.values()) == 32 and max(ranks.values()) < 12
    config = variant.adapter_config(model, "tiny-bert")
    assert config["peft_type"] == "ADALORA" and config["total_step"] == 12
    sd = variant.adapter_state_dict(model)
    layers = adapter_layers(model)
    for name, k in ranks.items():
        assert config["rank_pattern"][f"{name}.lora_E"] == layers[name].kept.tolist()
        a, e, b = (sd[f"base_model.model.{name}.{n}"] for n in NAMES)
        assert a.shape == (k, 32) and e.shape == (k, 1) and b.shape == (32, k)
    assert {"base_model.model.classifier.weight", "base_model.model.classifier.bias"} < set(sd)

    with torch.no_grad():
        mine = model(**tiny_batch).logits
    again, variant2 = ours(tiny_bert, attention_targets, **SCHEDULE)
    variant2.load_adapter_state_dict(again, sd)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(**tiny_batch).logits, mine, rtol=1e-5, atol=1e-6)
    assert variant2.summary(again)["final_ranks"] == ranks
    resaved = variant2.adapter_state_dict(again)
    assert set(resaved) == set(sd) and all(torch.equal(resaved[k], sd[k]) for k in sd)


def test_load_rejects_wrong_shapes(tiny_bert, attention_targets):
    model, variant = ours(tiny_bert, attention_targets)
    sd = variant.adapter_state_dict(model)
    key = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A"
    sd[key] = torch.zeros(13, 32)
    with pytest.raises(ValueError, match=r"query: saved AdaLoRA shapes A \(13, 32\).*init_r=12"):
        variant.load_adapter_state_dict(model, sd)
    del sd[key]
    with pytest.raises(KeyError, match="missing"):
        variant.load_adapter_state_dict(model, sd)


def test_config_validation_names_the_bad_values(tiny_bert, tiny_batch, attention_targets):
    with pytest.raises(ValueError, match=r"target_r=10 must be in 1\.\.init_r=6"):
        variants.build("adalora", {"init_r": 6, "target_r": 10})
    with pytest.raises(ValueError, match=r"tinit=5 \+ tfinal=5 >= total_steps=10"):
        variants.build("adalora", {"tinit": 5, "tfinal": 5, "total_step": 10})
    with pytest.raises(ValueError, match=r"beta1=1.0 must be in \(0, 1\)"):
        variants.build("adalora", {"beta1": 1.0})
    model, variant = ours(tiny_bert, attention_targets, tinit=20, tfinal=60)  # absolute steps
    with pytest.raises(ValueError, match=r"tinit=20 \+ tfinal=60 >= total_steps=3"):
        train_a_few_steps(model, variant, tiny_batch, steps=3)
    for bad in ({"tinit": -1}, {"tfinal": 2.5}, {"deltaT": 0}):
        with pytest.raises(ValueError, match=r"must be a fraction of the run.s steps in \(0, 1\)"):
            variants.build("adalora", bad)


def test_default_schedule_is_relative_to_the_run():
    """tinit, tfinal and deltaT default to fractions of T: valid from a 2-step run to a long one."""
    c = variants.build("adalora").config
    assert schedule(c, 2) == Schedule(total=2, tinit=0, tfinal=1, delta=1)
    assert schedule(c, 126) == Schedule(total=126, tinit=13, tfinal=50, delta=1)
    assert schedule(c, 20_000) == Schedule(total=20_000, tinit=2_000, tfinal=8_000, delta=200)
    assert all(fits(c, t) for t in range(1, 500))
    absolute = variants.build("adalora", {"tinit": 20, "tfinal": 60, "deltaT": 1}).config
    assert schedule(absolute, 126) == Schedule(total=126, tinit=20, tfinal=60, delta=1)


def test_on_step_end_needs_gradients(tiny_bert, tiny_batch, attention_targets):
    model, variant = ours(tiny_bert, attention_targets, **SCHEDULE)
    with pytest.raises(RuntimeError, match="before zero_grad"):
        variant.on_step_end(model, 1, 12)
