"""Eval-mode speed and peak memory of MTNet at the paper's input size.

Prints frames per second and peak memory for clips of 3 and 9 frames at 512x512 on the
CPU, and on the GPU when one is present. Each setting runs in a fresh subprocess so that
its peak resident memory is its own.

    python -m benchmarks.model_speed [--size 512 512] [--clips 3 9] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

from benchmarks.common import REPO, count_flops, matmul_gflops, timed
from inference.runtime.precision import cuda_tf32, tf32_mode
from model import MTNet
from util.cpu import cpu_description
from util.memory import retain_freed_memory


def measure(device: str, t: int, h: int, w: int, repeats: int, channels_last: bool) -> dict:
    """Best-of-``repeats`` eval forward time for one clip ``[1, t, 3, h, w]``."""
    dev = torch.device(device)
    net = MTNet().eval().to(dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    imgs = torch.randn(1, t, 3, h, w, device=dev)
    flows = torch.randn(1, t, 3, h, w, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode(), tf32_mode(cuda_tf32("fp32", dev)):  # fp32 as test.py runs it
        net(imgs, flows)  # warm-up: allocator, oneDNN/cuDNN plans
        best = min(timed(net, imgs, flows) for _ in range(repeats))
    if dev.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gflop = count_flops(net, imgs, flows) / 1e9
    return {
        "device": device,
        "T": t,
        "seconds": best,
        "fps": t / best,
        "peak_mib": peak_mib,
        "gflop": gflop,
        "gflops": gflop / best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    parser.add_argument("--clips", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument(
        "--glibc_default", action="store_true", help="keep glibc's default malloc settings"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "device:T", run in a subprocess
    args = parser.parse_args()
    if not args.glibc_default:
        retain_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = args.size
    if args.one:
        device, t = args.one.split(":")
        print(json.dumps(measure(device, int(t), h, w, args.repeats, args.channels_last)))
        return
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    malloc = "glibc default malloc" if args.glibc_default else "retain_freed_memory"
    print(
        f"MTNet eval, {h}x{w}, threads={torch.get_num_threads()}, {malloc}, torch {torch.__version__}"
    )
    print(f"CPU: {cpu_description()}")
    cpu_gflops = matmul_gflops(torch.float32, torch.device("cpu"))
    print(
        f"headroom: a 2048^3 fp32 matrix product runs at {cpu_gflops:.0f} GFLOP/s on the same threads"
    )
    for device in devices:
        for t in args.clips:
            cmd = [sys.executable, "-m", "benchmarks.model_speed", "--one", f"{device}:{t}"]
            cmd += ["--size", str(h), str(w)]
            cmd += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
            cmd += ["--channels_last"] if args.channels_last else []
            cmd += ["--glibc_default"] if args.glibc_default else []
            done = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
            r = json.loads(done.stdout)
            print(
                f"{r['device']:5s} clip {r['T']}: {r['seconds']:.2f} s/clip  "
                f"{r['fps']:.3f} frames/s  peak {'GPU' if device == 'cuda' else 'RSS'} "
                f"{r['peak_mib']:.0f} MiB  {r['gflop'] / r['T']:.1f} GFLOP/frame, "
                f"{r['gflops']:.0f} GFLOP/s"
            )


if __name__ == "__main__":
    main()
