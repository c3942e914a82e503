"""What the benchmarks share: where the shared data lives, synchronised timing, the
network's FLOP count and a matrix product's rate as the reference of what the device can do.

The benchmarks run from the repository root as ``python -m benchmarks.<name>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # the spec, golden data and data sets beside the repository
DATA_ROOT = SHARED / "data"  # a data root as test.py's --root takes it
DAVIS_VAL = DATA_ROOT / "DAVIS16" / "val"  # {frame,flow,mask}/<video>/


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a clock read follows it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Callable[..., object], *inputs: torch.Tensor) -> float:
    """Seconds of ``run(*inputs)``, the inputs' device synchronised before and after."""
    device = inputs[0].device
    synchronize(device)
    start = time.perf_counter()
    run(*inputs)
    synchronize(device)
    return time.perf_counter() - start


def count_flops(model: nn.Module, imgs: torch.Tensor, flows: torch.Tensor) -> int:
    """FLOPs of one fp32 forward (convolutions, matrix products, attention)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(imgs, flows)
    return counter.get_total_flops()


def matmul_size(device: torch.device) -> int:
    """The side of the square matrix product that measures ``device``'s rate."""
    return 8192 if device.type == "cuda" else 2048


def matmul_gflops(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n x n`` by ``n x n`` product (``matmul_size``) on ``device``
    (the CPU: on the current threads; CUDA: TF32 off, as fp32 inference runs)."""
    # imported here: tests/conftest.py reads this module's paths without the inference package
    from inference.runtime.precision import cuda_tf32, tf32_mode

    n = matmul_size(device)
    a, b = (torch.randn(n, n).to(device, dtype) for _ in range(2))
    with tf32_mode(cuda_tf32("fp32", device)):
        a @ b
        best = min(timed(torch.matmul, a, b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9
