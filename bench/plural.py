"""Counts in messages: ``plural(1, "run")`` is "1 run", ``plural(2_000, "run")`` is "2,000 runs"."""

from __future__ import annotations


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``n`` with thousands separators and the noun, singular for exactly 1 (``plural_form``: irregular)."""
    return f"{n:,} {noun if n == 1 else plural_form or noun + 's'}"
