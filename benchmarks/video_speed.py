"""test.py --video end to end (decode, DIS flow, network, writing) against network only.

A shared DAVIS-16 video (all its frames by default) is encoded as an 854x480 MP4, then, per
mode and round, segmented by ``test.py --video`` twice: cold (a fresh output folder: frames
decoded and flows computed) and warm (the same folder again: frames and flows reused, masks
made anew). End to end is the frames over the wall time of the whole run (network built,
masks and overlay video written). Network only is the forward passes alone over the same
clips, read beforehand, by a predictor built as the run builds its own, in the same round.

Before the rounds, each mode's kernels are set up once in the process (one untimed clip of
each length): a new process pays this once, and it is printed apart, so that the rounds
compare like with like. Figures are medians over ``--rounds``; each round's are printed
too (two CPU cores shared with other machines vary by some 10% from clip to clip).

    python -m benchmarks.video_speed [--video blackswan] [--frames 0] [--modes bf16 fp32]
                                     [--rounds 2]
    python -m benchmarks.video_speed --modes bf16+compile     # any mode of precision_speed

With ``+compile`` every test.py run compiles the network again (a new process would too),
and so does the new predictor of network only: all three figures include it, and the
set-up line shows its size.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from statistics import median

import torch

from benchmarks.common import DAVIS_VAL
from benchmarks.modes import MODES
from dataset.test_videos import Clip, VideoClips
from inference.config import parse_config
from inference.runner import run
from inference.session import open_session
from inference.video_input import VideoInput
from util.cpu import cpu_description
from util.image import list_images, read_rgb_array
from util.memory import retain_freed_memory
from util.video import write_video


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DAVIS_VAL, help="holds frame/<video>/")
    p.add_argument("--video", default="blackswan")
    p.add_argument("--frames", type=int, default=0, help="first N frames (0: all)")
    cpu_modes = [
        name
        for name, mode in MODES.items()
        if mode.runs_on(torch.device("cpu")) and not mode.calibrated
    ]
    p.add_argument("--modes", nargs="+", default=["fp32", "bf16"], choices=cpu_modes)
    p.add_argument("--test_size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--rounds", type=int, default=2, help="cold, warm, network only, repeated")
    return p.parse_args()


def make_clip(args: argparse.Namespace, path: Path) -> int:
    """The video's first frames as an MP4 at their own size (854x480 for DAVIS)."""
    frames = list_images(args.data / "frame" / args.video)
    frames = frames[: args.frames] if args.frames else frames
    write_video((read_rgb_array(p) for p in frames), path, fps=25)
    return len(frames)


def test_argv(clip: Path, out: Path, mode: str, size: tuple[int, int]) -> list[str]:
    """test.py's arguments for one run in ``mode`` (a name of ``benchmarks.modes.MODES``)."""
    argv = ["--video", str(clip), "--output_dir", str(out), *MODES[mode].test_args()]
    return argv + ["--test_size", str(size[0]), str(size[1]), "--device", "cpu"]


def one_run(argv: list[str]) -> tuple[float, float]:
    """(end-to-end frames/s, frames/s of the run's own forward time) of one test.py --video
    run."""
    start = time.perf_counter()
    stats = run(parse_config(argv))
    wall = time.perf_counter() - start
    return stats.frames / wall, stats.fps


def read_clips(argv: list[str]) -> list[Clip]:
    """The clips of the run's video, frames and flows from its work folder (made if
    missing)."""
    cfg = parse_config(argv)
    video = VideoInput.resolve(cfg.video, cfg.layout().work_root).prepare(cfg.flow_settings())
    return list(VideoClips(video, cfg.test_length, cfg.test_size))


def network_only(argv: list[str], clips: list[Clip]) -> float:
    """Frames/s of the forward passes alone over ``clips``, by a predictor built for
    ``argv`` as test.py builds its own."""
    cfg = parse_config(argv)
    predictor = open_session(cfg, torch.device(cfg.device)).predictor
    seconds = sum(predictor.forward(clip.imgs, clip.flows)[1] for clip in clips)
    return sum(len(clip.names) for clip in clips) / seconds


def set_up_kernels(argv: list[str], clips: list[Clip]) -> tuple[float, float]:
    """Seconds of one forward pass per distinct clip length: the first in this process,
    and the same passes again."""
    cfg = parse_config(argv)
    predictor = open_session(cfg, torch.device(cfg.device)).predictor
    firsts = {len(clip.names): clip for clip in clips}.values()
    first, again = (
        sum(predictor.forward(clip.imgs, clip.flows)[1] for clip in firsts) for _ in range(2)
    )
    return first, again


def one_round(argv: list[str]) -> dict[str, float]:
    """frames/s: ``cold`` and ``warm`` end to end, ``network`` only, and the runs' own
    forward rates ``cold_forward`` and ``warm_forward``."""
    cold, cold_forward = one_run(argv)
    warm, warm_forward = one_run(argv)
    network = network_only(argv, read_clips(argv))
    return {
        "cold": cold,
        "warm": warm,
        "network": network,
        "cold_forward": cold_forward,
        "warm_forward": warm_forward,
    }


def report(mode: str, label: str, r: dict[str, float]) -> None:
    net = r["network"]
    print(
        f"{mode:18s} {label:7s} network only {net:6.3f} frames/s; end to end: "
        f"cold {r['cold']:6.3f} ({100 * r['cold'] / net:5.1f}%), "
        f"warm {r['warm']:6.3f} ({100 * r['warm'] / net:5.1f}%); forward inside the runs "
        f"cold {r['cold_forward']:6.3f}, warm {r['warm_forward']:6.3f}",
        flush=True,
    )


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
        size = tuple(args.test_size)
        for mode in args.modes:
            setup = test_argv(clip, Path(tmp) / f"setup_{mode}", mode, size)
            first, again = set_up_kernels(setup, read_clips(setup))
            print(
                f"{mode:18s} one clip of each length: {first:.1f} s the first time in the "
                f"process, {again:.1f} s again (set-up paid once per process: "
                f"{first - again:.1f} s, not in the rounds)",
                flush=True,
            )
            rounds = []
            for i in range(args.rounds):
                argv = test_argv(clip, Path(tmp) / f"out_{mode}_{i}", mode, size)
                rounds.append(one_round(argv))
                report(mode, f"round {i + 1}", rounds[-1])
            report(mode, "median", {k: median(r[k] for r in rounds) for k in rounds[0]})


if __name__ == "__main__":
    main()
