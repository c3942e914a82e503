"""test.py --video end to end (decode, DIS flow, network, writing) against network only.

A shared DAVIS-16 video is encoded as an 854x480 MP4, then segmented by ``test.py --video``
in each mode twice: cold (a fresh output folder: frames decoded and flows computed) and
warm (the same folder again: frames and flows reused, masks made anew). Each run's
network-only rate is its own forward time (``FPS`` of test.py's summary); end to end is its
frames over the wall time of the whole run (overlay video included). Prints the CPU.

    python -m benchmarks.video_speed [--video blackswan] [--frames 27] [--modes fp32 bf16]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from inference.config import parse_config
from inference.runner import run
from util.image import list_images, read_rgb_array
from util.memory import retain_freed_memory
from util.precision import cpu_description
from util.video import write_video

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "DAVIS16" / "val"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SHARED, help="holds frame/<video>/")
    p.add_argument("--video", default="blackswan")
    p.add_argument("--frames", type=int, default=27, help="first N frames (0: all)")
    p.add_argument("--modes", nargs="+", default=["fp32", "bf16"], help="--precision values")
    p.add_argument("--test_size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    return p.parse_args()


def make_clip(args: argparse.Namespace, path: Path) -> int:
    """The video's first frames as an MP4 at their own size (854x480 for DAVIS)."""
    frames = list_images(args.data / "frame" / args.video)
    frames = frames[: args.frames] if args.frames else frames
    write_video((read_rgb_array(p) for p in frames), path, fps=25)
    return len(frames)


def one_run(clip: Path, out: Path, mode: str, size: tuple[int, int]) -> tuple[float, float]:
    """(end-to-end frames/s, network-only frames/s) of one test.py --video run."""
    argv = ["--video", str(clip), "--output_dir", str(out), "--precision", mode]
    argv += ["--test_size", str(size[0]), str(size[1]), "--device", "cpu"]
    start = time.perf_counter()
    stats = run(parse_config(argv))
    wall = time.perf_counter() - start
    return stats.frames / wall, stats.fps


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    retain_freed_memory()  # as test.py does
    print(f"CPU: {cpu_description()}")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / f"{args.video}.mp4"
        n = make_clip(args, clip)
        print(
            f"{args.video}: {n} frames as an MP4, test size {args.test_size[0]}x{args.test_size[1]}"
        )
        for mode in args.modes:
            out = Path(tmp) / f"out_{mode}"
            for state in ("cold", "warm"):
                e2e, net = one_run(clip, out, mode, tuple(args.test_size))
                print(
                    f"{mode:5s} {state}: end to end {e2e:6.3f} frames/s, network only "
                    f"{net:6.3f} frames/s ({100 * e2e / net:5.1f}%)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
