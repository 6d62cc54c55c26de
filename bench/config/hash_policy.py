"""Which settings enter the config hash, stated at the setting itself (field metadata of the root schema
or a section's).

- ``not_hashed(default)``: never hashed; it does not change what a run computes (``train.progress``).
- ``hashed_if_set(default)``: a setting added after results were committed. It is hashed only when it
  differs from its default, so every earlier run keeps its hash and stays resumable (a committed
  comparison does not rerun because a later release added an option whose default changes nothing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

HASH = "hash"
NEVER = "never"
IF_SET = "if_set"


def not_hashed(default: Any) -> Any:
    return dataclasses.field(default=default, metadata={HASH: NEVER})


def hashed_if_set(default: Any) -> Any:
    return dataclasses.field(default=default, metadata={HASH: IF_SET})


def unhashed(section: dict[str, Any], schema: type) -> dict[str, Any]:
    """``section`` (a resolved config section) minus its ``schema``'s fields that are not hashed: the
    ``not_hashed`` ones, and the ``hashed_if_set`` ones that hold their default."""
    drop = set()
    for f in dataclasses.fields(schema):
        policy = f.metadata.get(HASH)
        if policy == NEVER or (policy == IF_SET and section.get(f.name, f.default) == f.default):
            drop.add(f.name)
    return {k: v for k, v in section.items() if k not in drop}
