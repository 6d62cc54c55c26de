"""What holds a run's training memory, measured by tensor over one optimizer step, the same way on every
device (``memory_breakdown_mb`` in metrics.json; MB = 2**20 bytes):

frozen_weights     parameters that do not train, and buffers (QLoRA's NF4 codes as packed)
trainable_weights  parameters that train
gradients          the trainable parameters' gradients, as backward leaves them
optimizer_state    the optimizer's state tensors (AdamW: two moments per trainable weight)
activations        the peak of what forward and backward hold besides these: saved activations,
                   temporaries, the gradients of activations, autocast's copies of the weights
peak               the peak of all of them together over the step (the optimizer's update included)

Each storage counts once (tied weights, views). The step measured is MEASURED_STEP (the optimizer state
exists by then; a shorter run: its last step), watched by a ``TorchDispatchMode`` that sees every tensor
an operation returns and a weak reference that sees it freed: it reads no random number and changes no
value, so a run trains the same with or without it (a compiled model is not measured: see
``MemoryBreakdown``). What the allocator caches and what a library holds outside torch's tensors are left
out (``bench.run.memory`` measures the process's peak).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bench.results.columns import MEMORY_PARTS

MEASURED_STEP = 2


def storage_bytes(tensors: Iterable[Tensor]) -> dict[int, int]:
    """The bytes of each storage the tensors use, keyed by its address (each storage once)."""
    out = {}
    for t in tensors:
        st = t.untyped_storage()
        if st.nbytes():
            out[st.data_ptr()] = st.nbytes()
    return out


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [v for state in optimizer.state.values() for v in state.values() if isinstance(v, Tensor)]


def gradients(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]


class _Watch(TorchDispatchMode):
    """Every storage that an operation returns and that was not held before (``held``: addresses), in
    the order they appear (``events``: +serial) and are freed (-serial - 1)."""

    def __init__(self, held: set[int]):
        super().__init__()
        self.held = held
        self.serial_of: dict[int, int] = {}  # id of a live storage -> its serial
        self.sizes: list[int] = []
        self.refs: list[weakref.ref] = []
        self.events: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor):
                self._see(t.untyped_storage())
        return out

    def _see(self, st: torch.UntypedStorage) -> None:
        key = id(st)
        if key in self.serial_of or not st.nbytes() or st.data_ptr() in self.held:
            return
        serial = len(self.sizes)
        self.serial_of[key] = serial
        self.sizes.append(st.nbytes())
        self.events.append(serial)
        self.refs.append(weakref.ref(st, lambda _, k=key, s=serial: self._freed(k, s)))

    def _freed(self, key: int, serial: int) -> None:
        self.serial_of.pop(key, None)
        self.events.append(-serial - 1)

    def serials(self, tensors: Iterable[Tensor]) -> set[int]:
        """The serials of the watched storages the tensors use."""
        keys = (id(t.untyped_storage()) for t in tensors)
        return {self.serial_of[k] for k in keys if k in self.serial_of}

    def peak(self, events: list[int], left_out: set[int]) -> int:
        """The peak of the bytes alive over ``events``, counting no storage of ``left_out``."""
        live = top = 0
        for e in events:
            serial = e if e >= 0 else -e - 1
            if serial not in left_out:
                live += self.sizes[serial] if e >= 0 else -self.sizes[serial]
                top = max(top, live)
        return top


class MemoryBreakdown:
    """Wrap each optimizer step in ``around(step)``; ``bytes`` (each of MEMORY_PARTS) and ``mb()`` are the
    breakdown once the measured step ran (None before, or when that step diverged). A ``compiled`` model
    is not measured: a dispatch mode sends torch.compile back to eager (the step would not compute what
    the others do), and a compiled graph allocates its buffers where no dispatch mode sees them."""

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, total_steps: int, compiled: bool = False
    ):
        self.model, self.optimizer = model, optimizer
        self.step = None if compiled else min(MEASURED_STEP, total_steps)
        self.bytes: dict[str, int] | None = None

    def mb(self) -> dict[str, float] | None:
        """The breakdown in MB (2**20 bytes), to 0.1."""
        return None if self.bytes is None else {k: round(self.bytes[k] / 2**20, 1) for k in MEMORY_PARTS}

    @contextlib.contextmanager
    def around(self, step: int) -> Iterator[None]:
        if step != self.step:
            yield
            return
        params = list(self.model.parameters())
        trainable = storage_bytes(p for p in params if p.requires_grad)
        frozen = storage_bytes([*(p for p in params if not p.requires_grad), *self.model.buffers()])
        frozen = {k: v for k, v in frozen.items() if k not in trainable}
        before = frozen | trainable | storage_bytes(optimizer_tensors(self.optimizer))
        before |= storage_bytes(gradients(self.optimizer))
        watch = _Watch(set(before))
        grads: dict[str, object] = {}

        def at_update(optimizer, args, kwargs) -> None:  # backward is done: the gradients are all there
            grads["bytes"] = storage_bytes(gradients(optimizer))
            grads["serials"] = watch.serials(gradients(optimizer))
            grads["events"] = len(watch.events)

        hook = self.optimizer.register_step_pre_hook(at_update)
        try:
            with watch:
                yield
        finally:
            hook.remove()
        if not grads:  # the step stopped before its update (a non-finite loss)
            return
        state = optimizer_tensors(self.optimizer)
        held_apart = grads["serials"] | watch.serials(state)
        self.bytes = {
            "frozen_weights": sum(frozen.values()),
            "trainable_weights": sum(trainable.values()),
            "gradients": sum(grads["bytes"].values()),
            "optimizer_state": sum(storage_bytes(state).values()),
            "activations": watch.peak(watch.events[: grads["events"]], held_apart),
            "peak": sum(before.values()) + watch.peak(watch.events, set()),
        }
