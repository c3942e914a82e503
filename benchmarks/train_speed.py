"""Seconds per training iteration of MTNet (DESIGN.md §7 step: forward, loss, backward, AdamW).

Random clips of ``--frames`` frames at ``--imsize``, batch ``--batch``; timed over
``--iters`` steps after ``--warmup`` untimed ones. On the CPU: fp32. On CUDA: with and
without AMP (autocast fp16 + GradScaler), synchronising before each clock read.

    python -m benchmarks.train_speed                      # 512x512, batch 1, clip 3
    python -m benchmarks.train_speed --device cuda --iters 20
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import synchronize
from model import MTNet
from training.step import build_optimizer, train_step
from util.distributed import resolve_device
from util.memory import retain_freed_memory


def random_batch(batch: int, frames: int, imsize: int) -> dict[str, torch.Tensor]:
    """Normalised-looking frames and flows ``[B, T, 3, S, S]`` and 0/1 masks ``[B, T, 1, S, S]``."""
    shape = (batch, frames, 3, imsize, imsize)
    masks = (torch.rand(batch, frames, 1, imsize, imsize) > 0.5).float()
    return {"imgs": torch.randn(shape), "flows": torch.randn(shape), "masks": masks}


def seconds_per_iteration(
    model: torch.nn.Module, batch: dict, device: torch.device, amp: bool, warmup: int, iters: int
) -> float:
    """Mean wall time of ``iters`` training steps after ``warmup`` untimed ones."""
    optimizer = build_optimizer(model, 1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    for _ in range(warmup):
        train_step(model, optimizer, scaler, batch, device, amp)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        train_step(model, optimizer, scaler, batch, device, amp)
    synchronize(device)
    return (time.perf_counter() - start) / iters


def main() -> None:
    retain_freed_memory()  # as train.py does
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--imsize", type=int, default=512)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--encoder", default="convnext-tiny")
    args = p.parse_args()

    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = MTNet(args.encoder).to(device).train()
    batch = random_batch(args.batch, args.frames, args.imsize)
    modes = (False, True) if device.type == "cuda" else (False,)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"MTNet {args.encoder} training step, {args.imsize}x{args.imsize}, batch {args.batch}, "
        f"clip {args.frames}, {name} ({torch.get_num_threads()} threads), torch {torch.__version__}"
    )
    for amp in modes:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sec = seconds_per_iteration(model, batch, device, amp, args.warmup, args.iters)
        line = f"  {'AMP fp16' if amp else 'fp32    '}: {sec:.3f} s/it over {args.iters} iterations"
        if device.type == "cuda":
            line += f", peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
        print(line, flush=True)


if __name__ == "__main__":
    main()
