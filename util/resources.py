"""Will a clip fit in memory? The one estimate of what the network needs, checked before work.

The network's peak memory grows with the pixels of a clip (test size x clip length), not
with a video's length (clips are streamed), so the estimate is a base plus a cost per pixel
per frame. ``BYTES_PER_PIXEL_FRAME`` (1 KiB) is a round figure at or above what one fp32
forward pass holds at its peak per pixel per frame on the CPU, with glibc keeping freed
memory as the scripts do; ``CPU_BASE_BYTES`` (1 GiB) covers a process that has imported
torch, the weights and the clip readers. On CUDA the same cost per pixel is used (on the
safe side for bf16 and fp16, whose activations take half), plus ``CUDA_BASE_BYTES``
(0.5 GiB), against the device's free memory. The measured peaks the estimate is set
against are in docs/PERFORMANCE.md ("The network and test.py on a CPU", the
``benchmarks.model_speed`` rows).

A run is refused when the estimate exceeds 90% of the memory available to the process
(``MARGIN``): on the CPU the smaller of the system's available memory (``MemAvailable``)
and what the process's cgroup limit leaves (v2 ``memory.max``, v1
``memory.limit_in_bytes``), plus what the process already holds.
"""

from __future__ import annotations

import logging
import os
import resource
from dataclasses import dataclass
from pathlib import Path

import torch

from .cpu import usable_cpus
from .errors import InputError

log = logging.getLogger(__name__)

GIB = 1 << 30
BYTES_PER_PIXEL_FRAME = 1024
CPU_BASE_BYTES = GIB
CUDA_BASE_BYTES = GIB // 2
MARGIN = 0.9  # refuse what needs more than 90% of the available memory
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")
NO_CHECK_HINT = "--no_memory_check"
_said: set[str] = set()  # cap messages already logged by this process


@dataclass(frozen=True)
class MemoryRoom:
    """Bytes a run may use, and where the figure comes from (for messages)."""

    bytes: int
    source: str


def clip_memory_bytes(
    test_size: tuple[int, int], clip_length: int, device: torch.device | str = "cpu"
) -> int:
    """The estimated peak memory of the network on clips of ``clip_length`` frames of
    ``test_size`` = (H, W) (see the module docstring)."""
    height, width = test_size
    base = CUDA_BASE_BYTES if torch.device(device).type == "cuda" else CPU_BASE_BYTES
    return base + BYTES_PER_PIXEL_FRAME * height * width * clip_length


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _own_cgroup(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """This process's cgroup paths: (v2 unified, v1 memory controller)."""
    unified = memory = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            unified = parts[2]
        elif "memory" in parts[1].split(","):
            memory = parts[2]
    return unified, memory


def cgroup_room(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> int | None:
    """What the process's cgroup memory limit leaves (limit - usage), or ``None`` without a
    limit. Looks in the process's own cgroup and at the root (inside a container)."""
    unified, memory = _own_cgroup(proc_cgroup)
    candidates = []
    for rel in (unified, "/"):
        if rel is not None:
            folder = root / rel.lstrip("/")
            candidates.append((folder / "memory.max", folder / "memory.current"))
    for rel in (memory, "/"):
        if rel is not None:
            folder = root / "memory" / rel.lstrip("/")
            candidates.append((folder / "memory.limit_in_bytes", folder / "memory.usage_in_bytes"))
    for limit_path, usage_path in candidates:
        limit, usage = _read_int(limit_path), _read_int(usage_path)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1: huge = none
            return max(0, limit - usage)
    return None


def mem_available(meminfo: Path = MEMINFO) -> int | None:
    """The system's ``MemAvailable`` in bytes, or ``None`` where it cannot be read."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _own_rss() -> int:
    """What this process holds now (its resident memory), in bytes."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def available_memory(device: torch.device | str = "cpu") -> MemoryRoom | None:
    """The memory a run on ``device`` may use, or ``None`` where it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return MemoryRoom(free, f"free memory of {device}")
    room = [(v, s) for v, s in ((mem_available(), "MemAvailable"), (cgroup_room(), "cgroup"))]
    room = [(v, s) for v, s in room if v is not None]
    if not room:
        return None
    value, source = min(room)
    what = "the system's available memory" if source == "MemAvailable" else "the cgroup limit"
    # torchrun's processes on this machine start alike and share that memory
    shares = _local_processes()
    if shares > 1:
        what = f"a 1/{shares} share (torchrun's processes here) of {what}"
    return MemoryRoom(value // shares + _own_rss(), f"{what} and this process's own")


def _local_processes() -> int:
    """How many processes torchrun started on this machine (``LOCAL_WORLD_SIZE``), else 1."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def check_clip_memory(
    test_size: tuple[int, int],
    clip_length: int,
    device: torch.device | str = "cpu",
    flags: str = "--test_size or --test_length",
    override: str | None = NO_CHECK_HINT,
) -> None:
    """Raise ``InputError`` before any work when clips of ``clip_length`` frames of
    ``test_size`` cannot fit: the estimate (:func:`clip_memory_bytes`) above ``MARGIN`` of
    :func:`available_memory`. ``flags`` and ``override`` name, in the message, the settings
    to lower and the way to skip the check (``None``: none is offered)."""
    room = available_memory(device)
    needed = clip_memory_bytes(test_size, clip_length, device)
    if room is None or needed <= MARGIN * room.bytes:
        return
    height, width = test_size
    raise InputError(
        f"clips of {clip_length} frames at {height}x{width} need about {needed / GIB:.1f} GiB, "
        f"more than {MARGIN:.0%} of the {room.bytes / GIB:.1f} GiB available ({room.source}); "
        f"lower {flags}" + (f", or skip this check with {override}" if override else "")
    )


def cap_workers(requested: int, tasks: int, flag: str | None = "--num_workers") -> int:
    """Reading processes worth starting: at most one per task (clip) and per core.

    A process beyond those would only hold memory (a DataLoader worker is a copy of the
    process). The cap of a number the user gave (``flag``; ``None``: a default, capped
    quietly) is logged once per process.
    """
    cores = usable_cpus()
    capped = max(0, min(requested, tasks, cores))
    if capped < requested:
        message = (
            f"{flag} {requested}: {capped} reading processes ({tasks} clips to read, {cores} cores)"
        )
        if flag is not None and message not in _said:
            _said.add(message)
            log.info(message)
    return capped
