"""variants.peft_twin: a variant's peft twin is found from its class (registered in the method's own file,
shared with its subclasses), a twin defined outside bench speed is what it times, and the Variant
contract carries none of it."""

from __future__ import annotations

import copy

import pytest
import torch
from tqdm.auto import tqdm

import variants
from bench.benchmarks import speed
from bench.inputs.models import model_config, resolve_targets
from variants import peft_twin
from variants.adalora import AdaLoRATwin
from variants.base import Variant
from variants.lora import LoRA
from variants.loraplus import LoRAPlus, LoRAPlusTwin
from variants.peft_twin import NO_PEFT_METHOD, PeftTwin, twin, twin_class, twin_of
from variants.qlora import QLoRATwin

CPU = torch.device("cpu")
SPEED_MEMBERS = ("peft_unavailable", "peft_base", "peft_optimizer", "peft_on_step_end", "benchmark_options")


@pytest.fixture
def own_registry(monkeypatch):
    """Twins registered by the test stay in the test."""
    monkeypatch.setattr(peft_twin, "_TWINS", dict(peft_twin._TWINS))


def test_each_built_in_variant_has_its_twin():
    expected = {
        "lora": PeftTwin, "dora": PeftTwin, "vera": PeftTwin, "adalora": AdaLoRATwin,
        "loraplus": LoRAPlusTwin, "qlora": QLoRATwin, "full": PeftTwin, "head": PeftTwin,
    }  # fmt: skip
    assert {name: twin_class(variants.get(name)) for name in expected} == expected
    assert twin(variants.get("full")()).unavailable(CPU) == NO_PEFT_METHOD
    assert speed.variant_options("adalora", 7, model_config("tiny")) == {
        "tinit": 0,
        "tfinal": 0,
        "total_step": 7,
    }


def test_the_variant_contract_carries_no_benchmark_member():
    classes = [Variant, *(variants.get(name) for name in ("lora", "adalora", "loraplus", "qlora"))]
    assert [(c.__name__, m) for c in classes for m in SPEED_MEMBERS if hasattr(c, m)] == []


def test_a_subclass_shares_its_parents_twin_until_it_registers_its_own(own_registry):
    class Faster(LoRAPlus):
        name = "faster_loraplus"

    assert twin_class(Faster) is LoRAPlusTwin

    @twin_of(Faster)
    class FasterTwin(LoRAPlusTwin):
        pass

    assert twin_class(Faster) is FasterTwin and twin_class(LoRAPlus) is LoRAPlusTwin


def test_a_twin_defined_beside_its_method_is_what_bench_speed_runs(own_registry):
    """A plugin's method and twin, none of it known to bench.benchmarks.speed: its peft run takes the
    twin's optimizer and calls the twin after each step."""

    class Plugin(LoRA):
        name = "plugin_lora"

    steps = []

    @twin_of(Plugin)
    class PluginTwin(PeftTwin):
        def optimizer(self, peft_model, lr, weight_decay):
            return torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=lr)

        def on_step_end(self, peft_model, step, total_steps):
            steps.append((step, total_steps))

    shape = model_config("tiny")
    base = speed.base_model(shape, 8, speed.SEED)
    variant = Plugin()
    ours = variant.apply(copy.deepcopy(base), resolve_targets(shape, "attention"))
    run = speed.peft_run(variant, ours, base, CPU)
    assert isinstance(run.optimizer, torch.optim.SGD) and isinstance(run.hooks, PluginTwin)
    assert run.label == "plugin_lora/peft"
    batch = speed.make_batch(shape, 2, 8, speed.SEED, CPU)
    speed.time_runs([run], batch, 1, 1, CPU, tqdm(disable=True))
    assert steps == [(1, 2), (2, 2)]


def test_twin_of_names_what_it_refuses():
    with pytest.raises(TypeError, match="twin_of takes a Variant subclass, got 'lora'"):
        twin_of("lora")
    with pytest.raises(TypeError, match="the twin of LoRA must subclass PeftTwin, got <class 'object'>"):
        twin_of(LoRA)(object)
