"""Whether two runs of one configuration on two devices agree: their metrics, train losses and logits.

Used by ``bench.benchmarks.gpu_check`` to hold a CUDA run (bf16 autocast, fused AdamW, compiled or not)
against the same run on the CPU (fp32). Compared, with the tolerances of ``TOLERANCE``:

    metric          every ``best`` and ``final`` metric (dev and test): the largest absolute difference
    train_loss      each epoch's mean train loss (history.jsonl): the largest absolute difference
    logit_relative  every logit of predictions.csv (the examples both runs predicted): the largest
                    absolute difference over the largest absolute logit of the reference run

and, not held to a tolerance, the share of the examples both runs predict the same class for.
"""

from __future__ import annotations

from typing import Any

from bench.results.run_folder import RunFolder

# bf16 autocast against fp32: on a CPU emulation of the tiny run, the logits moved by about 2% of their
# scale and the losses by under 0.001, and no prediction changed.
TOLERANCE = {"metric": 0.05, "train_loss": 0.01, "logit_relative": 0.1}


def metric_diff(reference: dict[str, Any], other: dict[str, Any]) -> float:
    """The largest absolute difference of the ``best`` and ``final`` metrics the two runs share."""
    diffs = [
        abs(reference[part][k] - other[part][k])
        for part in ("best", "final")
        for k in reference.get(part) or {}
        if k in (other.get(part) or {})
    ]
    if not diffs:
        raise ValueError("the two runs share no best or final metric")
    return max(diffs)


def train_loss_diff(reference: list[dict[str, Any]], other: list[dict[str, Any]]) -> float:
    """The largest absolute difference of the epochs' train losses (history rows that have one)."""
    a = [row["train_loss"] for row in reference if "train_loss" in row]
    b = [row["train_loss"] for row in other if "train_loss" in row]
    if not a or len(a) != len(b):
        raise ValueError(f"the runs' histories hold {len(a)} and {len(b)} train losses; they must match")
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def logits(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[float]]:
    """predictions.csv's logits by (split, idx)."""
    return {
        (row["split"], row["idx"]): [float(v) for k, v in row.items() if k.startswith("logit_")]
        for row in rows
    }


def logit_agreement(reference: list[dict[str, str]], other: list[dict[str, str]]) -> dict[str, float]:
    """Over the examples both runs predicted: the largest logit difference, relative to the reference's
    largest logit, and the share predicted the same class."""
    a, b = logits(reference), logits(other)
    shared = [key for key in a if key in b]
    if not shared:
        raise ValueError("the runs' predictions share no example")
    diff = max(abs(x - y) for key in shared for x, y in zip(a[key], b[key], strict=True))
    scale = max(abs(x) for key in shared for x in a[key]) or 1.0
    same = sum(_argmax(a[key]) == _argmax(b[key]) for key in shared)
    return {
        "examples": len(shared),
        "logit_max_diff": diff,
        "logit_scale": scale,
        "logit_relative": diff / scale,
        "same_prediction": same / len(shared),
    }


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def agreement(
    reference: RunFolder, other: RunFolder, tolerance: dict[str, float] = TOLERANCE
) -> dict[str, Any]:
    """How ``other`` agrees with ``reference`` (both completed runs of one configuration): each measure,
    the tolerance, the measures outside it, and ``passed``."""
    ref, oth = reference.metrics(), other.metrics()
    not_completed = {f"{name} run": m.get("status") for name, m in (("reference", ref), ("other", oth))}
    not_completed = {k: v for k, v in not_completed.items() if v != "completed"}
    if not_completed:
        return {"passed": False, "reason": f"not completed: {not_completed}"}
    found = {
        "metric": metric_diff(ref, oth),
        "train_loss": train_loss_diff(reference.history(), other.history()),
        **logit_agreement(reference.predictions(), other.predictions()),
    }
    outside = [k for k, bound in tolerance.items() if found[k] > bound]
    return {
        "passed": not outside,
        "outside_tolerance": outside,
        "tolerance": dict(tolerance),
        **{k: round(v, 6) if isinstance(v, float) else v for k, v in found.items()},
        "devices": [ref.get("device"), oth.get("device")],
    }
