"""The trainable state of the evaluation that selects (the best so far), kept so that the test splits
are evaluated once, at the end of training, on the state the selection picked.

A CPU copy of the trainable parameters: for an adapter its tensors (a few MB), for full fine-tuning every
weight. The frozen weights never change, so these are all that differ between two evaluations. It goes
into each checkpoint (``bench.run.checkpoint``), so a resumed run tests the same state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor


def cpu_copy(params: dict[str, Tensor]) -> dict[str, Tensor]:
    return {name: p.detach().to("cpu", copy=True) for name, p in params.items()}


@torch.no_grad()
def load(params: dict[str, Tensor], values: dict[str, Tensor]) -> None:
    """Copy ``values`` into the live ``params``, in place (on their device)."""
    for name, p in params.items():
        p.copy_(values[name])


class BestState:
    """The copy of ``params`` (the live trainable parameters) taken at the selected evaluation, and its
    step; None of either before the first evaluation."""

    def __init__(self, params: dict[str, Tensor]):
        self.params = params
        self.step: int | None = None
        self.values: dict[str, Tensor] | None = None

    def keep(self, step: int) -> None:
        """The evaluation at ``step`` is the best so far: copy the parameters as they are now."""
        self.step, self.values = step, cpu_copy(self.params)

    @contextlib.contextmanager
    def loaded(self) -> Iterator[None]:
        """The kept state in the model for the block; the live state back after it."""
        if self.values is None:
            raise RuntimeError("no state kept: no evaluation has selected one yet")
        live = cpu_copy(self.params)
        load(self.params, self.values)
        try:
            yield
        finally:
            load(self.params, live)

    def state_dict(self) -> dict[str, Any]:
        """For a checkpoint: the step and the copies (CPU tensors)."""
        return {"step": self.step, "values": self.values}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.values = state["step"], state["values"]
