"""The notices of the ``peft-bench`` logger, as a terminal outside Hydra shows them."""

from __future__ import annotations

import pytest


def notices(caplog: pytest.LogCaptureFixture) -> str:
    """The peft-bench notices logged since the last call, one ``peft-bench: <message>`` line each."""
    text = "".join(f"peft-bench: {r.getMessage()}\n" for r in caplog.records if r.name == "peft-bench")
    caplog.clear()
    return text
