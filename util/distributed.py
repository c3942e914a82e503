"""torch.distributed setup shared by train.py and test.py.

Under ``torchrun`` the environment holds RANK, WORLD_SIZE and LOCAL_RANK; a plain
``python script.py`` run is a single process with rank 0. The backend is NCCL when the
chosen device is CUDA and gloo otherwise (CPU runs, tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import InputError, setting


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """Map a ``--device`` value (``auto``, ``cpu``, ``cuda``, ``cuda:N``) to a device.

    ``auto`` picks CUDA when available. A plain ``cuda`` under torchrun means the GPU of
    this process's local rank. Asking for CUDA without one is a ``ValueError``.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"{setting('device', name)}: CUDA is not available on this machine")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name != "cpu":
        raise ValueError(f"{setting('device', name)}: expected auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun; otherwise a single process.

    Returns the rank, world size and the device this process should use.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def raise_on_every_rank(error: Exception | None, device: torch.device) -> None:
    """Every rank calls this; if any rank has an error, every rank raises one, so that no
    rank is left waiting in a collective: a rank with an error raises it as it is, the
    others an ``InputError`` with the message of the lowest such rank.

    One all-reduce of a flag when no rank has an error.
    """
    if not (dist.is_available() and dist.is_initialized()):
        if error is not None:
            raise error
        return
    flag = torch.tensor([0.0 if error is None else 1.0], device=device)
    dist.all_reduce(flag)
    if not flag.item():
        return
    messages: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(messages, None if error is None else str(error))
    if error is not None:
        raise error  # a rank that found the error raises it with its own type
    raise InputError(next(m for m in messages if m is not None))


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
