"""Checkpoints: a run killed mid-training (SIGKILL, a preempted job, a crash) resumes from its last one.

Where: ``<paths.results>/checkpoints/<config_hash>/step-<N>/``. The folder is a function of the config
hash, so the same command finds it again whether Hydra puts the rerun in the same run folder (a sweep
with stable subdirs, such as experiment=compare) or in a new, timestamped one (a single run,
``hydra.run.dir``); nothing searches earlier run folders. ``resume=false`` and ``force=true`` start
from scratch (the runner clears the folder).

What: ``tensors.safetensors`` holds every tensor (the trainable parameters, the optimizer's moments,
torch's CPU and CUDA RNG states, the variant's tensors such as AdaLoRA's importance EMAs and rank masks,
the last evaluation's outputs, the best evaluation's trainable state when the test splits wait for the
end: ``bench.run.best_state``) and ``state.json`` everything else (step, epoch and batches done in it,
the sampler's generator at the start of that epoch, the scheduler, Python's and numpy's RNG states, the
history so far) plus the sha256 of the tensors file. Nothing is pickled.

How: a checkpoint is written into ``.tmp-step-<N>/`` and renamed, so a kill during a write leaves no
half checkpoint; the newest ``KEEP`` are kept. Its files get the umask's mode (0644 with the usual 022),
so whoever shares the results folder can resume from it. A checkpoint that does not load (a file cut short or
changed, so its checksum differs; a file missing; tensors that are not this run's) is named in a
warning and removed, and the run resumes from the one before it, or from scratch. When the run ends
(completed or diverged) the runner deletes the folder unless ``train.keep_checkpoint``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bench.log import log
from bench.results.run_folder import follow_umask

TENSORS, STATE = "tensors.safetensors", "state.json"
FORMAT = 1  # of state.json; a checkpoint of another format is not trusted
KEEP = 2  # the newest checkpoints kept: when the last one is unusable, the run resumes from the one before
TENSOR, ARRAY = "$tensor", "$array"  # how state.json points at an entry of tensors.safetensors


@runtime_checkable
class ResumableOrder(Protocol):
    """A sampler whose epoch order can be drawn again after a restart
    (``bench.inputs.batching.EpochOrder``)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class HasTrainingState(Protocol):
    """A variant's state between steps besides the model's parameters (``Variant.training_state``)."""

    def training_state(self) -> dict[str, Any]: ...

    def load_training_state(self, state: dict[str, Any]) -> None: ...


def folder(results_dir: str | Path, cfg_hash: str) -> Path:
    """Where the checkpoints of the run with this config hash live."""
    return Path(results_dir) / "checkpoints" / cfg_hash


def delete(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def saved_steps(root: Path) -> list[Path]:
    """The checkpoint folders under ``root``, oldest first."""
    return sorted(root.glob("step-*")) if root.is_dir() else []


# -- the state of a run ------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python's, numpy's and torch's global RNG states (CUDA's on every device, once CUDA is in use)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def training_state(
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    variant: HasTrainingState,
    order: ResumableOrder | None,
) -> dict[str, Any]:
    """Everything but the loop's own counters: the trainable parameters (live, not copies), the optimizer
    (its per-parameter state as a list, since JSON keys are strings), the scheduler, the variant's state,
    the sampler's and the global RNG states."""
    opt = optimizer.state_dict()
    n_params = sum(len(g["params"]) for g in opt["param_groups"])
    return {
        "params": params,
        "optimizer": {
            "state": [opt["state"].get(i) for i in range(n_params)],
            "param_groups": opt["param_groups"],
        },
        "scheduler": scheduler.state_dict(),
        "variant": variant.training_state(),
        "order": order.state_dict() if order is not None else None,
        "rng": rng_state(),
    }


@torch.no_grad()
def load_training_state(
    state: dict[str, Any],
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    variant: HasTrainingState,
    order: ResumableOrder | None,
) -> None:
    """Restore ``training_state``'s output, but the global RNG states: the loop sets those once it has
    started the checkpoint's epoch again (starting an epoch draws from torch's generator)."""
    for name, p in params.items():
        p.copy_(state["params"][name])
    opt = state["optimizer"]
    optimizer.load_state_dict(
        {
            "state": {i: s for i, s in enumerate(opt["state"]) if s is not None},
            "param_groups": opt["param_groups"],
        }
    )
    scheduler.load_state_dict(state["scheduler"])
    variant.load_training_state(state["variant"])
    if order is not None:
        order.load_state_dict(state["order"])


def fingerprint(params: dict[str, torch.Tensor], **facts: Any) -> dict[str, Any]:
    """What a checkpoint must share with the run that loads it: the trainable parameters' names and
    shapes, and ``facts`` (step count, batches per epoch, whether the test splits wait for the end)."""
    return {"params": {name: list(p.shape) for name, p in params.items()}, **facts}


# -- files -------------------------------------------------------------------------------------


def save(root: Path, step: int, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts and lists of tensors, arrays and JSON values) as the checkpoint of
    ``step``, atomically; keep the newest ``KEEP``. Returns its folder."""
    tensors: dict[str, torch.Tensor] = {}
    rest = _split(state, "", tensors)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / TENSORS))
    follow_umask(tmp / TENSORS)  # safetensors leaves 0600: a teammate sharing the results could not resume
    meta = {"format": FORMAT, "step": step, "sha256": _sha256(tmp / TENSORS), "state": rest}
    (tmp / STATE).write_text(json.dumps(meta))
    for name in (TENSORS, STATE):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(final, ignore_errors=True)  # the same step written again
    os.replace(tmp, final)
    for old in saved_steps(root)[:-KEEP]:
        shutil.rmtree(old)
    for stale in root.glob(".tmp-*"):  # a write that a kill cut short
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_latest(root: Path, expected: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint under ``root`` that loads and whose fingerprint is ``expected``, as (folder,
    state). Each newer one that does not is named in a warning and removed."""
    for path in reversed(saved_steps(root)):
        try:
            state = _load(path)
            if state.get("fingerprint") != expected:
                raise ValueError(
                    f"it is not this run's (fingerprint {state.get('fingerprint')} != {expected})"
                )
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
            log.warning("checkpoint %s is not usable, removed: %s", path, e)
            shutil.rmtree(path, ignore_errors=True)
            continue
        return path, state
    return None


def _load(path: Path) -> dict[str, Any]:
    meta = json.loads((path / STATE).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path / STATE}: format {meta.get('format')!r}, this version reads {FORMAT}")
    digest = _sha256(path / TENSORS)
    if digest != meta["sha256"]:
        raise ValueError(f"{path / TENSORS}: sha256 {digest} differs from the recorded {meta['sha256']}")
    return _join(meta["state"], load_file(str(path / TENSORS)))


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _split(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` for JSON, each tensor or array moved into ``tensors`` and replaced by a reference."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().to("cpu").contiguous()
        return {TENSOR: key}
    if isinstance(value, np.ndarray):
        tensors[key] = torch.from_numpy(np.array(value, order="C"))  # a copy: an array may appear twice
        return {ARRAY: key}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"checkpoint state {key or '/'}: keys must be strings, got {list(value)[:5]}")
        return {k: _split(v, f"{key}/{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    return value


def _join(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``_split`` undone (tuples come back as lists)."""
    if isinstance(value, dict):
        if value.keys() == {TENSOR}:
            return tensors[value[TENSOR]]
        if value.keys() == {ARRAY}:
            return tensors[value[ARRAY]].numpy()
        return {k: _join(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value
