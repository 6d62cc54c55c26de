"""Where a run's wall time goes: seconds per phase, written to metrics.json as ``phase_time_s``.

    load_data    the task's splits (bench.inputs.tasks)          load_model   tokenizer, base model, variant
    tokenize     the splits, once each                    train_steps  the optimizer steps, batching included
    evaluate     every evaluation                         checkpoint   writing checkpoints
    run          the whole run, from its config to metrics.json (the rest: checks, outputs, sinks)
    cpu          the process's CPU time over the run (every thread, user and system)

``python -m bench sweep_overhead`` adds them up over a sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("load_data", "load_model", "tokenize", "train_steps", "evaluate", "checkpoint")


class PhaseTimes:
    """Seconds per phase; ``with times("tokenize"): ...`` adds to a phase."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - start)

    def add(self, phase: str, seconds: float) -> None:
        if phase not in self.seconds:
            raise KeyError(f"unknown phase {phase!r}; the phases are {', '.join(PHASES)}")
        self.seconds[phase] += seconds

    def as_dict(self) -> dict[str, float]:
        """Each phase's seconds, ``run``, the wall time since this object was made, and ``cpu``, the
        process's CPU time since then, rounded to ms."""
        return {k: round(v, 3) for k, v in self.seconds.items()} | {
            "run": round(time.perf_counter() - self.start, 3),
            "cpu": round(time.process_time() - self.cpu_start, 3),
        }
