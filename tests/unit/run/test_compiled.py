"""torch.compile behind one switch (bench.run.compiled): when each mode compiles, and a bad mode named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.run.compiled import COMPILE_MODES, compiled, wanted


def test_auto_compiles_on_cuda_only_on_always_off_never():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [wanted(mode, cpu) for mode in COMPILE_MODES] == [False, True, False]
    assert [wanted(mode, cuda) for mode in COMPILE_MODES] == [True, True, False]
    with pytest.raises(ValueError, match="compile='yes' is not valid: choose one of auto, on, off"):
        wanted("yes", cpu)


def test_a_model_not_compiled_is_returned_unchanged():
    model = nn.Linear(2, 2)
    assert compiled(model, "off", torch.device("cpu")) is model
    assert compiled(model, "auto", torch.device("cpu")) is model
    assert not hasattr(model, "_compiled_call_impl") or model._compiled_call_impl is None
