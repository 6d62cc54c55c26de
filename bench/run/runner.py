"""One run, start to end: its spec (``bench.run.spec``), then its phases in order (``bench.run.phases``).

``run(cfg, run_dir)`` returns an ``Outcome``: the metrics written to metrics.json, or, when resume finds
the config hash completed, that run's metrics and why this one was skipped. Every run appends its row to
the runs CSV and its lines to the results index (``bench.results.index``: started, ended, or skipped by
resume); ``logger=...`` adds sinks (``bench.results.sinks``). A run resumes from its checkpoint when an
earlier run of its config hash was killed (``bench.run.checkpoint``); the checkpoint is deleted once the
run has ended.

Nothing is written before the checks have passed (``bench.run.checks``): a folder that holds another
run, or a config error, starts no run, and its traceback goes to ``<results>/errors/``
(``bench.results.run_folder.error_log``). A run that started and fails, in training or in a sink, is
recorded as failed with its traceback in its folder's ``error.txt``. Either way the exception carries a
note saying where its traceback is (``where``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from bench.results.run_folder import error_log
from bench.results.sinks import Sink, make_sinks
from bench.run import checkpoint, checks, distributed, phases
from bench.run.memory import PeakMemory
from bench.run.phase_times import PhaseTimes
from bench.run.spec import RunSpec


@dataclass(frozen=True)
class Outcome:
    """What ``run`` did. ``metrics``: the run's metrics.json; when resume skipped the run, that of the
    run that completed its config hash, and ``skipped`` says so."""

    metrics: dict[str, Any]
    skipped: str | None = None  # "config <hash> already completed in <folder> (force=true reruns it)"


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA out of memory, Python's MemoryError, or a RuntimeError of the CPU / MPS allocator."""
    if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(e)
    return isinstance(e, RuntimeError) and ("DefaultCPUAllocator" in message or "out of memory" in message)


NO_RUN = "no run started"  # the note on an error before the run started
TRACEBACK_IN = "traceback in"  # the note naming the file that holds the traceback
OOM_HINT = (
    "the run does not fit in memory: try a smaller train.batch_size with a larger train.grad_accum (the "
    "same effective batch), train.gradient_checkpointing=true, a smaller model.max_length, or variant=qlora"
)


def run(cfg: DictConfig, run_dir: str | Path, sweep_dir: str | None = None) -> Outcome:
    """Train one variant on one task; a run that starts always leaves metrics.json (status completed,
    diverged, failed, oom or interrupted: Ctrl-C). When distributed, every rank trains and only rank 0
    writes."""
    w = distributed.world()
    finished = False
    try:
        times = PhaseTimes()
        outcome = _run(RunSpec.of(cfg, run_dir, sweep_dir), w, times)
        finished = True
        return outcome
    finally:
        distributed.leave(finished)


def _run(spec: RunSpec, w: distributed.World, times: PhaseTimes) -> Outcome:
    """The outputs checked (a folder holding another run refused), the resume lookup and the checks: an
    error until then starts no run. Then the run's phases (``_phases``), the folder locked while they
    run."""
    try:
        if w.main:
            checks.check_outputs(spec)
        done = phases.look_up(spec)
        sinks = make_sinks(spec.config) if w.main else []
        if done is not None:
            why = f"config {spec.config_hash} already completed in {done.path} (force=true reruns it)"
            return Outcome(phases.skip(spec, done, sinks, w), skipped=why)
        checked = checks.check(spec, w)  # nothing has loaded yet
    except Exception as e:
        keep_traceback(e, w, error_log(spec.results, spec.folder.path), started=False)
        raise
    with spec.folder.running() if w.main else contextlib.nullcontext():
        metrics = _phases(spec, checked, w, times, sinks)
    if w.main and not spec.train.keep_checkpoint:  # the run has ended (completed or diverged)
        checkpoint.delete(spec.checkpoints)
    return Outcome(metrics)


def _phases(
    spec: RunSpec, checked: checks.Checked, w: distributed.World, times: PhaseTimes, sinks: list[Sink]
) -> dict[str, Any]:
    """Start, train, record: whatever happens once the run started, ``phases.record`` writes its results
    (a sink that fails makes the run failed). Returns its metrics."""
    metrics = phases.start(spec, w)
    try:
        _train(spec, checked, w, times, sinks, metrics)
    except Exception as e:
        metrics["status"] = "oom" if is_out_of_memory(e) else "failed"
        metrics["error"] = f"{type(e).__name__}: {e}"
        if metrics["status"] == "oom":
            metrics["error"] += f" ({OOM_HINT})"
        keep_traceback(e, w, spec.folder.error_path)
        raise
    except KeyboardInterrupt:  # Ctrl-C: not a failure of the config; the same command runs it again
        metrics["status"], metrics["error"] = "interrupted", "KeyboardInterrupt: stopped by the user"
        raise
    finally:
        metrics["timestamp"] = dt.datetime.now().isoformat(timespec="seconds")
        metrics["phase_time_s"] = times.as_dict()
        try:
            phases.record(spec, metrics, sinks, w)
        except Exception as e:
            keep_traceback(e, w, spec.folder.error_path)
            raise
    return metrics


def keep_traceback(e: BaseException, w: distributed.World, path: Path, started: bool = True) -> None:
    """Rank 0 writes ``e``'s traceback to ``path``; a note on ``e`` says where it is (unless it could not
    be written) and, unless ``started``, that no run started. Other ranks write nothing."""
    notes = [] if started else [NO_RUN]
    if w.main:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(traceback.format_exception(e)))
            notes.append(f"{TRACEBACK_IN} {path}")
        except OSError:  # an unwritable results folder: HYDRA_FULL_ERROR=1 prints it
            pass
    if notes:
        e.add_note("; ".join(notes))


def where(e: BaseException) -> str | None:
    """What ``run`` noted on ``e`` (``keep_traceback``): whether a run started and where the traceback
    is; None when it noted nothing."""
    ours = [n for n in getattr(e, "__notes__", []) if n.startswith((NO_RUN, TRACEBACK_IN))]
    return ours[-1] if ours else None


def _train(
    spec: RunSpec,
    checked: checks.Checked,
    w: distributed.World,
    times: PhaseTimes,
    sinks: list[Sink],
    metrics: dict[str, Any],
) -> None:
    """Build, fit and record the outputs; what each phase measures goes into ``metrics`` as it comes, so
    that a run that fails keeps what it had measured."""
    device = distributed.join(w, checked.device)
    phases.seed_everything(spec.seed)
    memory = PeakMemory(device)
    data = phases.load_data(spec, times)
    metrics["chance"] = data.chance
    model = phases.load_model(spec, checked, device, times)
    metrics.update(model.sizes)
    loaders = phases.make_loaders(spec, data, model, w, times)
    out = phases.fit(spec, model, loaders, sinks, memory, times)
    adapter_bytes = phases.record_outputs(spec, out, model, w)
    metrics.update(phases.results(out, model, memory, adapter_bytes, w))
