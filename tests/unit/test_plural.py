"""bench.plural: counts in messages."""

import pytest

from bench.plural import plural


@pytest.mark.parametrize(
    ("n", "noun", "plural_form", "expected"),
    [
        (1, "run", None, "1 run"),
        (0, "run", None, "0 runs"),
        (2, "run", None, "2 runs"),
        (2_000, "run", None, "2,000 runs"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
    ],
)
def test_plural(n, noun, plural_form, expected):
    assert plural(n, noun, plural_form) == expected
