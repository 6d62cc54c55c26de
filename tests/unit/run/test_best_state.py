"""The best evaluation's trainable state (bench.run.best_state): a copy, swapped in for a block and the
live state put back, through a checkpoint's state dict."""

from __future__ import annotations

import pytest
import torch

from bench.run.best_state import BestState


def params() -> dict[str, torch.Tensor]:
    return {"a": torch.nn.Parameter(torch.zeros(2)), "b": torch.nn.Parameter(torch.ones(3))}


def set_to(live: dict[str, torch.Tensor], value: float) -> None:
    with torch.no_grad():
        for p in live.values():
            p.fill_(value)


def test_the_kept_copy_is_loaded_for_the_block_and_the_live_state_put_back():
    live = params()
    kept = BestState(live)
    set_to(live, 2.0)
    kept.keep(step=7)
    set_to(live, 5.0)  # training goes on: the copy does not follow
    with kept.loaded():
        assert all(torch.equal(p, torch.full_like(p, 2.0)) for p in live.values())
    assert all(torch.equal(p, torch.full_like(p, 5.0)) for p in live.values())
    with pytest.raises(KeyError), kept.loaded():
        raise KeyError("an evaluation that fails")
    assert all(torch.equal(p, torch.full_like(p, 5.0)) for p in live.values())  # put back all the same
    assert kept.step == 7
    assert all(t.device.type == "cpu" and not t.requires_grad for t in kept.values.values())


def test_the_state_dict_round_trips_and_nothing_kept_cannot_be_loaded():
    live = params()
    empty = BestState(live)
    with pytest.raises(RuntimeError, match="no state kept"), empty.loaded():
        pass
    kept = BestState(live)
    set_to(live, 3.0)
    kept.keep(step=4)
    again = BestState(params())
    again.load_state_dict(kept.state_dict())
    assert again.step == 4 and all(torch.equal(again.values[k], kept.values[k]) for k in live)
