"""End-to-end test.py speed (reading, network, writing) against the network alone.

    python -m benchmarks.infer_speed                       # 3 DAVIS-16 videos at 512x512
    python -m benchmarks.infer_speed --test_size 256 256 --max_frames 9

Network-only: the clips of each video are read into memory first, then only the forward
passes are timed (warm model, synchronised on CUDA). End-to-end: the same videos through
test.py's streaming loop (DataLoader workers, network, post-processing, PNG writing),
timed from the first clip requested to the last mask on disk. The network-only pass runs
before and after the end-to-end one and its two rates are averaged, which brackets a
machine whose load drifts. The goal is
end-to-end >= 90% of network-only frames/s. A randomly initialised MTNet stands in for
trained weights unless ``--test_model`` is given (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.common import DATA_ROOT
from dataset.registry import resolve_benchmark
from dataset.test_videos import PairedVideo, VideoClips, pair_video
from inference import MTNetPredictor
from inference.config import TestConfig
from inference.runner import VideoJob, run_jobs
from inference.session import open_session
from model import MTNet
from model.weights import save_model_file
from util.distributed import resolve_device
from util.image import read_rgb_array
from util.memory import retain_freed_memory

VIDEOS = ["car-shadow", "motocross-jump", "scooter-black"]  # the shortest: 40, 40, 43 frames


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(DATA_ROOT), help="holds DAVIS16/val/{frame,flow}")
    p.add_argument("--videos", nargs="+", default=VIDEOS)
    p.add_argument("--test_size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--test_length", type=int, default=9)
    p.add_argument("--max_frames", type=int, default=None, help="first N frames of each video")
    p.add_argument("--test_model", default=None, help="weights (default: random init)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--num_workers", type=int, default=None, help="default: test.py's")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p.parse_args()


def network_only(
    predictor: MTNetPredictor, videos: list[PairedVideo], cfg: TestConfig
) -> tuple[int, float]:
    """Frames and seconds of forward passes over clips already in memory."""
    frames, seconds = 0, 0.0
    with torch.inference_mode():
        for video in tqdm(videos, desc="network only", unit="video"):
            clips = list(VideoClips(video, cfg.test_length, cfg.test_size))
            for clip in clips:
                seconds += predictor.forward(clip.imgs, clip.flows)[1]
                frames += len(clip.names)
    return frames, seconds


def end_to_end(predictor: MTNetPredictor, videos: list[PairedVideo], cfg: TestConfig, out: Path):
    """Frames, wall seconds and the network's share of them through test.py's loop."""
    jobs = [VideoJob(video, out / video.name) for video in videos]
    start = time.perf_counter()
    total = sum(len(video.frames) for video in videos)
    with tqdm(total=total, desc="end to end", unit="frame") as bar:
        stats = run_jobs(jobs, predictor, cfg, bar)  # returns once every PNG is written
    return stats.frames, time.perf_counter() - start, stats.network_s


def python_api(predictor: MTNetPredictor, videos: list[PairedVideo]) -> tuple[int, float]:
    """Frames and wall seconds of ``MTNetPredictor.segment`` over each video's frames and
    flows, read from their files into arrays as a user's code would (reading counted)."""
    frames, start = 0, time.perf_counter()
    for video in tqdm(videos, desc="python api", unit="video"):
        images = (read_rgb_array(p) for p in video.frames)
        flows = (read_rgb_array(p) for p in video.flows)
        frames += sum(1 for _ in predictor.segment(images, flows, video=video.name))
    return frames, time.perf_counter() - start


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    retain_freed_memory()  # as test.py does
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    bench = resolve_benchmark("DAVIS16", args.root)
    videos = [pair_video(bench.video(name), drop_tail=False) for name in args.videos]
    if args.max_frames:
        videos = [
            replace(v, frames=v.frames[: args.max_frames], flows=v.flows[: args.max_frames])
            for v in videos
        ]
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.test_model or str(Path(tmp) / "random.pth")
        if args.test_model is None:
            save_model_file(weights, MTNet())
        cfg = TestConfig(
            test_model=weights,
            test_size=tuple(args.test_size),
            test_length=args.test_length,
            amp=args.amp,
            num_workers=args.num_workers,
        )
        predictor = open_session(cfg, device).predictor
        warm = VideoClips(videos[0], cfg.test_length, cfg.test_size)[0]
        predictor.forward(warm.imgs, warm.flows)
        before = network_only(predictor, videos, cfg)
        e2e_frames, e2e_s, e2e_net_s = end_to_end(predictor, videos, cfg, Path(tmp) / "out")
        api_frames, api_s = python_api(predictor, videos)
        after = network_only(predictor, videos, cfg)
    net_fps = (before[0] / before[1] + after[0] / after[1]) / 2
    e2e_fps = e2e_frames / e2e_s
    print(
        f"device {_describe(device)}, "
        f"test size {args.test_size[0]}x{args.test_size[1]}, clips of {args.test_length}, "
        f"{len(videos)} videos, {e2e_frames} frames, {args.num_workers} workers"
    )
    print(
        f"network only : {net_fps:8.3f} frames/s (before {before[0] / before[1]:.3f}, "
        f"after {after[0] / after[1]:.3f})"
    )
    print(
        f"end to end   : {e2e_fps:8.3f} frames/s ({e2e_s:.1f} s; network {e2e_net_s:.1f} s of it)"
    )
    print(
        f"python API   : {api_frames / api_s:8.3f} frames/s (MTNetPredictor.segment, {api_s:.1f} s)"
    )
    print(f"end to end / network only: {100 * e2e_fps / net_fps:.1f}%")
    print(f"python API / test.py end to end: {100 * api_frames / api_s / e2e_fps:.1f}%")


if __name__ == "__main__":
    main()
