"""The variant registry: built-ins found by name, a clear error for an unknown name or option, and no
two variants under one name."""

from __future__ import annotations

import pytest

import variants
from variants import registry
from variants.lora import LoRA


def test_the_built_ins_are_registered():
    assert {"adalora", "dora", "full", "head", "lora", "loraplus", "qlora", "vera"} <= set(
        registry.available()
    )
    assert registry.get("lora") is LoRA


def test_an_unknown_name_lists_the_available_ones():
    with pytest.raises(KeyError, match=r"unknown variant 'lorra'; available: adalora, bitfit, dora, .*lora"):
        registry.get("lorra")


def test_build_passes_options_and_refuses_unknown_ones():
    assert variants.build("lora", {"r": 4}).config.r == 4
    with pytest.raises(TypeError, match=r"variant 'lora' has no option\(s\) \['rr'\]; its options: \["):
        variants.build("lora", {"rr": 4})


def test_a_second_class_under_a_taken_name_is_refused():
    class Other(LoRA):
        name = "lora"

    with pytest.raises(ValueError, match="variant name 'lora' from .*Other collides with the registered"):
        registry.register(Other)
    assert registry.get("lora") is LoRA


def test_a_name_must_be_an_identifier():
    class Bad(LoRA):
        name = "my-lora"

    with pytest.raises(
        ValueError, match="needs a class attribute `name` that is an identifier, got 'my-lora'"
    ):
        registry.register(Bad)
