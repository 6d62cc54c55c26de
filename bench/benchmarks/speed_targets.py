"""The project's speed targets, and bench.benchmarks.speed's summary of the ratios measured against them.

Every ratio is of median step times measured side by side in one run: ``v ours/peft`` is our step of
variant v over peft's, ``a/b`` our step of a over ours of b. A target is an upper bound: met when the
measured ratio is at most the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The speed targets, by device type (torch.device.type); a device without an entry has no target.
# The CPU targets are set on the minilm shape, the CUDA ones on roberta_base (TARGET_SHAPES).
TARGETS: dict[str, dict[str, float]] = {
    "ours/peft": {"cpu": 0.8},  # every adapter variant against peft's, unless it has its own entry
    "lora ours/peft": {"cuda": 0.5},
    "dora/lora": {"cpu": 1.03, "cuda": 1.15},
    "vera/lora": {"cpu": 1.10, "cuda": 1.05},
    "qlora/lora": {"cpu": 1.10, "cuda": 1.3},
    "adalora/lora": {"cuda": 1.2},
    "lora/full": {"cuda": 0.75},
}
TARGET_SHAPES = {"cpu": "minilm", "cuda": "roberta_base"}
VS_PEFT = "ours/peft"  # a variant's: "lora ours/peft"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Ratio:
    """One measured ratio against its target."""

    name: str  # "lora ours/peft", "dora/lora"
    value: float | None  # None: not measured
    target: float | None  # None: no target on this device
    note: str = ""  # why it was not measured, or why it has no target

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.target is None:
            return "no target"
        return "met" if self.value <= self.target else "missed"

    def as_dict(self) -> dict[str, Any]:
        value = None if self.value is None else round(self.value, 4)
        return {
            "ratio": self.name,
            "value": value,
            "target": self.target,
            "verdict": self.verdict,
            "note": self.note,
        }


def target(name: str, device_type: str) -> float | None:
    """The target of ratio ``name`` on ``device_type`` (a variant's ours/peft falls back to every one's)."""
    own = TARGETS.get(name, {}).get(device_type)
    if own is None and name.endswith(VS_PEFT):
        return TARGETS[VS_PEFT].get(device_type)
    return own


def ratios(rows: list[dict[str, Any]], adapters: list[str], device_type: str) -> list[Ratio]:
    """ours/peft for each of ``adapters``, then every cross ratio of TARGETS, from bench.benchmarks.speed's
    rows
    (``ours_ms``, ``peft_ms``: "" when peft's was not timed, with the reason in ``peft_note``)."""
    by = {row["variant"]: row for row in rows}

    def ratio(name: str, value: float | None, why: str = "") -> Ratio:
        bound = target(name, device_type)
        note = why or ("" if bound is not None or value is None else f"none set on {device_type}")
        return Ratio(name, value, bound, note)

    found = []
    for name in adapters:
        row = by.get(name)
        if row is None or row["peft_ms"] == "":
            found.append(ratio(f"{name} {VS_PEFT}", None, row["peft_note"] if row else NOT_RUN))
        else:
            found.append(ratio(f"{name} {VS_PEFT}", row["ours_ms"] / row["peft_ms"]))
    for name in TARGETS:
        if name.endswith(VS_PEFT):
            continue
        num, den = name.split("/")
        missing = [v for v in (num, den) if v not in by]
        if missing:
            found.append(ratio(name, None, f"{', '.join(missing)} {NOT_RUN}"))
        else:
            found.append(ratio(name, by[num]["ours_ms"] / by[den]["ours_ms"]))
    return found


def print_summary(found: list[Ratio], device_type: str, shape: str) -> None:
    set_on = TARGET_SHAPES.get(device_type)
    where = f"set on {set_on}" if set_on else f"none set for {device_type}"
    print(f"\nspeed targets (the project's speed issue; {device_type} targets {where}), this run: {shape}")
    if set_on and set_on != shape:
        print(f"  this run's shape is not {set_on}: the verdicts are indicative only")
    width = max([20, *(len(r.name) + 1 for r in found)])  # a long variant name widens the column
    print(f"{'ratio':<{width}}{'measured':>10}{'target':>10}  verdict")
    for r in found:
        value = "-" if r.value is None else f"{r.value:.3f}"
        bound = "-" if r.target is None else f"<= {r.target:g}"
        note = f": {r.note}" if r.note else ""
        print(f"{r.name:<{width}}{value:>10}{bound:>10}  {r.verdict}{note}")
