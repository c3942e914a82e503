"""Peak memory of test.py on a long video against a short one (streaming check).

    python -m benchmarks.infer_memory                      # 2,000 vs 50 frames at 128x128
    python -m benchmarks.infer_memory --frames 500 50

Each length is a synthetic video (JPEG frames, one flow fewer) in a temporary folder,
run through test.py's code in a fresh process with a randomly initialised MTNet; the
process reports its own peak RSS and the largest of its DataLoader workers'. The
goal: the long video's peak within 10% of the short one's.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import REPO


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[2000, 50], help="video lengths")
    p.add_argument("--test_size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    p.add_argument("--frame_size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads in the run")
    p.add_argument("--measure", nargs=2, metavar=("DATASET", "WEIGHTS"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_video(folder: Path, frames: int, size: tuple[int, int]) -> Path:
    """``folder/{frame,flow}/long/``: ``frames`` JPEG frames and one flow fewer."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    samples = []
    for k in range(4):  # a few distinct images, copied (decoding cost is what matters)
        path = folder / f"sample{k}.jpg"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        samples.append(path)
    for kind, count in (("frame", frames), ("flow", frames - 1)):
        out = folder / kind / "long"
        out.mkdir(parents=True)
        for i in range(count):
            shutil.copyfile(samples[i % len(samples)], out / f"{i:05d}.jpg")
    return folder


def measure(dataset: str, weights: str, args: argparse.Namespace) -> dict:
    """In the child process: run test.py's loop and report peak RSS in MiB."""
    import torch

    from inference.config import TestConfig
    from inference.runner import run
    from util.memory import retain_freed_memory

    retain_freed_memory()  # as test.py does
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as out:
        cfg = TestConfig(
            test_model=weights,
            test_dataset=[dataset],
            output_dir=out,
            device="cpu",
            test_size=tuple(args.test_size),
            num_workers=args.num_workers,
        )
        stats = run(cfg)
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"frames": stats.frames, "main_mib": self_kib / 1024, "worker_mib": workers_kib / 1024}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure, args)))
        return
    from model import MTNet
    from model.weights import save_model_file

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "random.pth"
        save_model_file(weights, MTNet())
        for frames in args.frames:
            data = make_video(Path(tmp) / f"LONG{frames}", frames, tuple(args.frame_size))
            cmd = [sys.executable, "-m", "benchmarks.infer_memory", *(argv or sys.argv[1:])]
            cmd += ["--measure", str(data), str(weights)]
            run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
            results[frames] = json.loads(run.stdout.strip().splitlines()[-1])
            shutil.rmtree(data)
    print(
        f"test size {args.test_size[0]}x{args.test_size[1]}, frames {args.frame_size[0]}x{args.frame_size[1]}, {args.num_workers} workers"
    )
    for frames, r in results.items():
        print(
            f"{frames:6d} frames: peak RSS main {r['main_mib']:7.1f} MiB, largest worker {r['worker_mib']:7.1f} MiB"
        )
    longest, shortest = max(results), min(results)
    ratio = results[longest]["main_mib"] / results[shortest]["main_mib"]
    print(f"main process, {longest} vs {shortest} frames: {100 * (ratio - 1):+.1f}%")


if __name__ == "__main__":
    main()
