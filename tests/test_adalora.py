"""AdaLoRA against peft (a test reference only): forward and orthogonality loss, importance / budget / mask
step by step, the pruned saved adapter (loads in peft and back into ours), and config validation."""

import json

import pytest
import torch
import torch.nn.functional as F
from helpers.training import train_a_few_steps
from safetensors.torch import load_file, save_file

import variants
from variants.adalora import Schedule, fits, schedule
from variants.base import adapter_layers

peft = pytest.importorskip("peft")
from peft import AdaLoraConfig, PeftModel, get_peft_model  # noqa: E402

NAMES = ("lora_A", "lora_E", "lora_B")
SCHEDULE = {"init_r": 12, "target_r": 8, "tinit": 2, "tfinal": 3}  # a 12-step run: 3 warm-up, 3 fixed steps


def ours(tiny_bert, targets, **options):
    model = tiny_bert()
    variant = variants.build("adalora", options)
    variant.apply(model, targets)
    return model, variant


def peft_twin(tiny_bert, variant, total_step: int):
    """peft's AdaLoRA on an identical base with the same options (the schedule in steps, as peft takes it)."""
    c = variant.config
    steps = schedule(c, total_step)
    config = AdaLoraConfig(
        task_type="SEQ_CLS",
        init_r=c.init_r,
        target_r=c.target_r,
        tinit=steps.tinit,
        tfinal=steps.tfinal,
        deltaT=steps.delta,
        beta1=c.beta1,
        beta2=c.beta2,
        orth_reg_weight=c.orth_reg_weight,
        total_step=total_step,
        lora_alpha=c.alpha,
        lora_dropout=c.dropout,
        target_modules=["query", "value"],
        modules_to_save=["classifier"],
    )
    return get_peft_model(tiny_bert(), config)


def peft_name(name: str) -> str:
    """Our trainable parameter name -> the peft model's (adapter 'default', head under modules_to_save)."""
    module, _, leaf = name.rpartition(".")
    if leaf in NAMES:
        return f"base_model.model.{name}.default"
    return f"base_model.model.{module}.modules_to_save.default.{leaf}"


def paired_params(model, peft_model) -> list[tuple[torch.nn.Parameter, torch.nn.Parameter]]:
    theirs = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    mine = {peft_name(n): p for n, p in model.named_parameters() if p.requires_grad}
    assert set(mine) == set(theirs)
    return [(mine[n], theirs[n]) for n in sorted(mine)]


@torch.no_grad()
def copy_into(model, peft_model) -> None:
    for mine, theirs in paired_params(model, peft_model):
        theirs.copy_(mine)


def save_adapter_for_test(variant, model, out_dir, base_path) -> None:
    """Write our adapter in peft's on-disk format (safetensors + adapter_config.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sd = {k: v.contiguous() for k, v in variant.adapter_state_dict(model).items()}
    save_file(sd, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = variant.adapter_config(model, str(base_path))
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))


def labels_for(batch, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randint(0, 2, (batch["input_ids"].shape[0],))


def test_forward_and_orthogonality_loss_match_peft(tiny_bert, tiny_batch, attention_targets):
    model, variant = ours(tiny_bert, attention_targets, **SCHEDULE)
    train_a_few_steps(model, variant, tiny_batch, steps=6)
    es = [layer.lora_E for layer in adapter_layers(model).values()]
    assert all(e.abs().sum() > 0 for e in es) and any((e == 0).any() for e in es)  # trained and pruned
    with torch.no_grad():
        for e in es:
            e.mul_(100)  # a few steps leave dW ~1e-3 of W: make the update dominate the comparison
    pm = peft_twin(tiny_bert, variant, total_step=6)
    copy_into(model, pm)
    pm.eval()
    for name, layer in adapter_layers(model).items():
        theirs = pm.base_model.model.get_submodule(name).get_delta_weight("default")
        torch.testing.assert_close(layer.delta_weight(), theirs, rtol=1e-5, atol=1e-7)
    labels = labels_for(tiny_batch)
    with torch.no_grad():
        base = tiny_bert()(**tiny_batch).logits
        mine = model(**tiny_batch).logits
        out = pm(**tiny_batch, labels=labels)
        orth = variant.extra_loss(model)
    assert (mine - base).abs().max() > 0.1 * base.abs().max()
    torch.testing.assert_close(out.logits, mine, rtol=1e-5, atol=1e-6)
    peft_orth = out.loss - F.cross_entropy(out.logits, labels)  # peft adds the penalty inside forward
    assert orth > 0.1
    torch.testing.assert_close(orth, peft_orth, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("delta_t", [1, 2])
def test_importance_budget_and_mask_match_peft_in_lockstep(tiny_bert, tiny_batch, attention_targets, delta_t):
    total = 12
    model, variant = ours(tiny_bert, attention_targets, deltaT=delta_t, **SCHEDULE)
    pm = peft_twin(tiny_bert, variant, total_step=total)
    copy_into(model, pm)  # identical start, then identical gradients each step
    pairs = paired_params(model, pm)
    opt_mine = torch.optim.AdamW([p for p, _ in pairs], lr=1e-2)
    opt_peft = torch.optim.AdamW([q for _, q in pairs], lr=1e-2)
    allocator = pm.base_model.rankallocator
    labels = labels_for(tiny_batch)
    model.train()
    budgets = []
    for step in range(1, total + 1):
        loss = model(**tiny_batch, labels=labels).loss + variant.extra_loss(model)
        loss.backward()
        for p, q in pairs:
            q.grad = p.grad.clone()
        opt_mine.step()
        opt_peft.step()
        variant.on_step_end(model, step, total)
        pm.base_model.update_and_allocate(step - 1)  # peft's 0-based global_step
        budgets.append(variant.budget)
        assert variant.budget == allocator.budget_schedule(step - 1)[0]
        importance = variant.importance()
        assert set(importance) == {k.removesuffix(".default") for k in allocator.exp_avg_ipt}
        for name, (ipt, unc) in importance.items():
            torch.testing.assert_close(ipt, allocator.exp_avg_ipt[f"{name}.default"], rtol=0, atol=0)
            torch.testing.assert_close(unc, allocator.exp_avg_unc[f"{name}.default"], rtol=0, atol=0)
        for p, q in pairs:
            torch.testing.assert_close(p, q, rtol=0, atol=0)  # so the same E entries are zeroed
        pattern = pm.peft_config["default"].rank_pattern
        if pattern is not None:
            kept = {name: layer.kept.tolist() for name, layer in adapter_layers(model).items()}
            assert kept == {k.removesuffix(".lora_E.default"): v for k, v in pattern.items()}
        opt_mine.zero_grad()
        opt_peft.zero_grad()
    assert budgets == [48, 48, 48, 42, 37, 34, 33, 32, 32, 32, 32, 32]  # b0 = 12 * 4, bT = 8 * 4, cubic
    summary = variant.summary(model)
    assert summary["total_rank"] == 32 and summary["budget"] == 32
    assert len(set(summary["final_ranks"].values())) > 1  # ranks moved between layers


# peft 0.21 warns on its own AdaLoRA rank_pattern keys too (LoRA's per-module rank check); harmless.
@pytest.mark.filterwarnings("ignore:The following rank_pattern keys:RuntimeWarning")
def test_pruned_adapter_loads_in_peft_and_round_trips(tiny_bert, tiny_batch, attention_targets, tmp_path):
    model, variant = ours(tiny_bert, attention_targets, **SCHEDULE)
    train_a_few_steps(model, variant, tiny_batch, steps=12)
    ranks = variant.summary(model)["final_ranks"]
    assert sum(ranks.values()) == 32 and max(ranks.values()) < 12
    tiny_bert().save_pretrained(tmp_path / "base")
    save_adapter_for_test(variant, model, tmp_path / "adapter", tmp_path / "base")

    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "ADALORA" and config["total_step"] == 12
    sd = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    for name, k in ranks.items():
        assert config["rank_pattern"][f"{name}.lora_E"] == adapter_layers(model)[name].kept.tolist()
        a, e, b = (sd[f"base_model.model.{name}.{n}"] for n in NAMES)
        assert a.shape == (k, 32) and e.shape == (k, 1) and b.shape == (32, k)
    assert {"base_model.model.classifier.weight", "base_model.model.classifier.bias"} < set(sd)

    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tmp_path / "base")
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        mine = model(**tiny_batch).logits
        torch.testing.assert_close(loaded(**tiny_batch).logits, mine, rtol=1e-5, atol=1e-6)
    query = "bert.encoder.layer.0.attention.self.query"
    assert loaded.base_model.model.get_submodule(query).lora_E["default"].shape == (ranks[query], 1)

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
