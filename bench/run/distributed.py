"""Data-parallel runs: one process per device under torchrun, or a submitit job with several tasks.

    torchrun --nproc_per_node=2 -m bench train variant=lora task=sst2
    python -m bench train -m hydra/launcher=slurm_ddp hydra.launcher.gpus_per_node=4

torchrun names the processes in the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); in a
submitit job with several tasks, ``world()`` exports them from submitit's job environment. With one
process nothing here does anything. With several, every rank trains on its slice of each batch of the
single-process order (so the data and the global batch are the same), DistributedDataParallel averages
the gradients, the evaluation predictions are gathered from all ranks before any metric is computed,
and only rank 0 writes the run folder, the runs CSV and W&B. Backends: NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes."""
        return self.rank == 0


ONE_PROCESS = World()


def world() -> World:
    """This process's place, from torchrun's variables, else a multi-task submitit job's; one process
    when neither names several."""
    if "WORLD_SIZE" not in os.environ and os.environ.get("SUBMITIT_FOLDER"):
        import submitit

        if submitit.JobEnvironment().num_tasks > 1:
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    env = os.environ
    return World(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def join(w: World, device: torch.device) -> torch.device:
    """Join the process group (once per process) and return this rank's device: ``cuda:<local rank>``
    on CUDA, else ``device``."""
    if w.size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", w.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """Rank 0, or the only process."""
    return not is_distributed() or dist.get_rank() == 0


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model the training step calls: DDP around it when distributed, else the model itself."""
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP (what variants hook into), or the model itself."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def shard(indices: list[int], w: World) -> list[int]:
    """Rank ``w.rank``'s contiguous slice of one batch (slices differ in size by at most one)."""
    return np.array_split(np.asarray(indices, dtype=np.int64), w.size)[w.rank].tolist()


def global_mean(loss: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the batch's mean loss over every rank, this rank's gradient weight): the weight makes DDP's
    average of the ranks' gradients the gradient of the whole batch's mean, however unequal the slices."""
    stats = torch.stack([loss.detach().float() * n, torch.tensor(float(n), device=loss.device)])
    dist.all_reduce(stats)
    return stats[0] / stats[1], n * dist.get_world_size() / stats[1]


def total(n: int) -> int:
    """``n`` summed over the ranks (the samples trained on)."""
    if not is_distributed():
        return n
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor(n, dtype=torch.int64, device=on)
    dist.all_reduce(t)
    return int(t)


def gather(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Every rank's arrays concatenated, in rank order (the evaluation predictions)."""
    if not is_distributed():
        return arrays
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, arrays)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(arrays)))


def leave(finished: bool) -> None:
    """Leave the process group; after a ``finished`` run, once every rank is done (rank 0 writes last)."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
