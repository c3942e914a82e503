"""Overlays of test.py's outputs on the frames, for looking at results.

Per frame: the prediction tinted over the frame with its contour drawn (soft VSOD maps
tint in proportion), optionally beside the flow image and the ground truth (when the
dataset has a mask folder for the video). Images go to
``{save_root}/{model_name}/{task}/{dataset}/{video}/{frame}.jpg``; with ``make_video``
also ``{video}.mp4`` (OpenCV, mp4v) and ``{video}.gif`` beside the video's folder.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from dataset.registry import BENCHMARKS, TASKS, Benchmark, resolve_benchmark
from dataset.test_videos import pair_video
from util.cli import ArgumentParser
from util.errors import InputError
from util.fileio import atomic_path, check_no_links, check_output_dir
from util.image import (
    MASK_EXT,
    list_images,
    list_subfolders,
    read_grey,
    read_mask,
    read_rgb_array,
    write_image,
)
from util.layout import DrawnVideo, OutputLayout, mask_path, vis_dir
from util.video import write_video

log = logging.getLogger(__name__)

PRED_COLOUR = (255, 64, 32)  # RGB
GT_COLOUR = (32, 220, 64)


@dataclass
class VisConfig:
    """visualize.py's settings (the release's flag names where it has them)."""

    task_name: str = "UVOS"
    output_dir: str = "./output"
    model_name: str = "MTNet"
    vis_dataset: list[str] = field(default_factory=lambda: ["DAVIS16"])
    root: str = "../data"
    videos: list[str] | None = None
    save_root: str = "./vis"
    with_flow: bool = False
    with_gt: bool = False
    make_video: bool = False
    fps: float = 10.0
    gif_width: int = 480


EXAMPLES = """
python visualize.py --vis_dataset DAVIS16 --root ../data --with_gt --make_video
python visualize.py --output_dir output --vis_dataset DAVIS16 --videos blackswan --with_flow
"""


def build_parser() -> argparse.ArgumentParser:
    d = VisConfig()
    p = ArgumentParser(
        description="Overlay test.py's masks on the video frames.", examples=EXAMPLES
    )
    masks = p.add_argument_group("test.py's masks")
    masks.add_argument("--task_name", default=d.task_name, choices=TASKS, help="test.py's task")
    masks.add_argument(
        "--output_dir", default=d.output_dir, metavar="DIR", help="test.py's --output_dir"
    )
    masks.add_argument(
        "--model_name", default=d.model_name, metavar="NAME", help="test.py's --model_name"
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--vis_dataset",
        nargs="+",
        default=d.vis_dataset,
        metavar="NAME_OR_DIR",
        help=f"benchmark names ({', '.join(BENCHMARKS)}) or dataset folders",
    )
    data.add_argument(
        "--root", default=d.root, metavar="DIR", help="folder of the benchmarks (frames, masks)"
    )
    data.add_argument(
        "--videos", nargs="+", default=d.videos, metavar="NAME", help="only these videos"
    )
    out = p.add_argument_group("pictures")
    out.add_argument("--save_root", default=d.save_root, metavar="DIR", help="where they go")
    out.add_argument("--with_flow", action="store_true", help="show the flow image beside")
    out.add_argument("--with_gt", action="store_true", help="show the ground truth beside")
    out.add_argument("--make_video", action="store_true", help="also an MP4 and a GIF per video")
    out.add_argument("--fps", type=float, default=d.fps, help="frame rate of MP4 and GIF")
    out.add_argument("--gif_width", type=int, default=d.gif_width, help="GIF width in pixels")
    return p


def validate(cfg: VisConfig) -> None:
    """Raise ``InputError`` for a value visualize.py cannot use (before any work)."""
    if cfg.gif_width < 1:
        raise InputError(f"--gif_width {cfg.gif_width}: expected a positive number of pixels")
    if not (math.isfinite(cfg.fps) and cfg.fps > 0):
        raise InputError(f"--fps {cfg.fps}: expected a positive frame rate")
    check_output_dir(cfg.save_root, "--save_root")


def parse_config(argv: list[str] | None = None) -> VisConfig:
    """Command line -> validated ``VisConfig``."""
    cfg = VisConfig(**vars(build_parser().parse_args(argv)))
    validate(cfg)
    return cfg


def overlay(frame: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Tint ``frame`` ``[h, w, 3]`` RGB by ``mask`` ``[h, w]`` (0..255, soft allowed) at
    half strength and draw the contour of ``mask > 127``."""
    if mask.shape != frame.shape[:2]:
        mask = cv2.resize(mask, frame.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    out = frame.copy()
    tinted = mask > 0  # only these pixels change: the blend runs on them alone
    alpha = 0.5 * mask[tinted].astype(np.float32)[:, None] / 255
    blend = frame[tinted] * (1 - alpha) + np.array(colour, np.float32) * alpha
    out[tinted] = blend.astype(np.uint8)
    contours, _ = cv2.findContours(
        (mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    return cv2.drawContours(out, contours, -1, colour, 2)


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    """White text with a black outline in the top-left corner."""
    for colour, thickness in (((0, 0, 0), 4), ((255, 255, 255), 2)):
        cv2.putText(panel, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, thickness)
    return panel


def compose(
    frame: np.ndarray,
    pred: np.ndarray,
    label: str,
    flow: np.ndarray | None = None,
    gt: np.ndarray | None = None,
) -> np.ndarray:
    """Panels side by side: prediction overlay, then the flow and ground truth if given
    (a frame without ground truth, as in sparsely annotated sets, shows a black panel)."""
    panels = [_label(overlay(frame, pred, PRED_COLOUR), label)]
    if flow is not None:
        flow = cv2.resize(flow, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        panels.append(_label(np.ascontiguousarray(flow), "flow"))
    if gt is not None:
        panels.append(_label(overlay(frame, gt, GT_COLOUR), "ground truth"))
    return np.concatenate(panels, axis=1)


@dataclass(frozen=True)
class VisVideo:
    """One video to draw: per frame stem, the frame, flow, prediction and mask files."""

    name: str
    stems: list[str]
    frames: dict[str, Path]
    flows: dict[str, Path]
    preds: dict[str, Path]
    masks: dict[str, Path] | None


def find_videos(bench: Benchmark, pred_root: Path, only: list[str] | None) -> list[VisVideo]:
    """The predicted videos of one dataset, with their frames, flows and masks."""
    if not pred_root.is_dir():
        raise InputError(f"{pred_root}: no predictions; expected test.py's output for {bench.name}")
    names = list_subfolders(pred_root)
    if only is not None:
        names = [n for n in names if n in only]
    videos = [_find_video(bench, pred_root, name) for name in names]
    for video in videos:
        if not video.stems:
            log.warning("%s: no predictions, skipped", pred_root / video.name)
    return [v for v in videos if v.stems]


def _find_video(bench: Benchmark, pred_root: Path, name: str) -> VisVideo:
    paired = pair_video(bench.video(name), drop_tail=False)
    preds = {p.stem: p for p in list_images(pred_root / name, (MASK_EXT,))}
    frames = dict(zip(paired.stems, paired.frames, strict=True))
    missing = [s for s in preds if s not in frames]
    if missing:
        raise InputError(
            f"{mask_path(pred_root / name, missing[0])}: no frame of that name in "
            f"{bench.frame_root / name}"
        )
    mask_dir = bench.mask_root / name
    masks = {p.stem: p for p in list_images(mask_dir, (MASK_EXT,))} if mask_dir.is_dir() else None
    return VisVideo(
        name=name,
        stems=list(preds),
        frames=frames,
        flows=dict(zip(paired.stems, paired.flows, strict=True)),
        preds=preds,
        masks=masks,
    )


def draw(video: VisVideo, stem: str, cfg: VisConfig) -> np.ndarray:
    """The composed picture of one frame."""
    frame = read_rgb_array(video.frames[stem])
    flow = read_rgb_array(video.flows[stem]) if cfg.with_flow else None
    gt = None
    if cfg.with_gt and video.masks is not None:
        path = video.masks.get(stem)
        gt = read_mask(path) if path else np.zeros(frame.shape[:2], np.uint8)
    return compose(frame, read_grey(video.preds[stem]), cfg.model_name, flow, gt)


def visualise_video(video: VisVideo, out_dir: Path, cfg: VisConfig) -> None:
    """Write one video's images (and its MP4 and GIF with ``make_video``)."""
    pictures = ((stem, draw(video, stem, cfg)) for stem in video.stems)
    drawn = DrawnVideo(out_dir, video.name)
    if not cfg.make_video:
        for stem, picture in pictures:
            write_image(drawn.frame(stem), picture)
        return
    first_shape = None
    gif_frames = []

    def video_frames() -> Iterator[np.ndarray]:
        nonlocal first_shape
        for stem, picture in pictures:
            write_image(drawn.frame(stem), picture)
            first_shape = first_shape or picture.shape
            if picture.shape != first_shape:  # a frame of another size: fit the video
                picture = cv2.resize(picture, first_shape[1::-1])
            gif_frames.append(_gif_frame(picture, cfg.gif_width))
            yield picture

    write_video(video_frames(), drawn.mp4, cfg.fps)
    _write_gif(drawn.gif, gif_frames, cfg.fps)


def _gif_frame(picture: np.ndarray, width: int) -> Image.Image:
    height, full_width = picture.shape[:2]
    if full_width > width:  # area averaging: as smooth as PIL's bilinear, and cheaper
        size = (width, round(height * width / full_width))
        picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    # fast octree: PIL's default palette search (median cut) would cost as much as the
    # rest of the frame's overlay together
    return Image.fromarray(picture).quantize(colors=256, method=Image.Quantize.FASTOCTREE)


def _write_gif(path: Path, frames: list[Image.Image], fps: float) -> None:
    with atomic_path(path) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=1000 / fps, loop=0)


def run(cfg: VisConfig) -> int:
    """Draw every selected video of every dataset; returns the number of images."""
    count = 0
    for dataset in cfg.vis_dataset:
        bench = resolve_benchmark(dataset, cfg.root)
        pred_root = OutputLayout.of(cfg.output_dir, cfg.model_name, cfg.task_name).dataset_dir(
            bench.name
        )
        out_dir = vis_dir(cfg.save_root, cfg.model_name, cfg.task_name, bench.name)
        check_no_links(cfg.save_root, [out_dir], "--save_root")
        videos = find_videos(bench, pred_root, cfg.videos)
        outputs = [path for v in videos for path in DrawnVideo(out_dir, v.name).paths]
        check_no_links(cfg.save_root, outputs, "--save_root")
        for video in tqdm(videos, desc=bench.name, unit="video"):
            visualise_video(video, out_dir, cfg)
            count += len(video.stems)
        log.info("%s: images in %s", bench.name, out_dir)
    return count
