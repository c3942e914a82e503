"""The bundled sample clip, generated procedurally: no third-party footage.

A textured disc moves along a smooth path, turning slowly, over a textured background while the
camera pans; every frame comes from a seeded random generator, so the clip is the same on every
run. ``python -m util.sample`` writes

- ``asset/sample/sample.mp4``: the clip (OpenCV ``mp4v``), and
- ``asset/sample/gt/sample/00000.png``, ...: the disc's ground-truth masks (0/255), one per
  frame, named like the frames that :func:`util.video.extract_frames` takes out of the clip.
  ``gt/<video>/<frame>.png`` is the layout the evaluation scripts read, so
  ``test_scripts/test_for_davis.py --gt_path asset/sample/gt`` scores ``make demo``'s masks.

``python -m util.sample --clips N --out DIR`` instead writes N more clips of the same kind,
each with its own textures and a random path, pan and size (:func:`random_motion`), in the
layout ``python -m dataset.prepare folder`` reads: ``DIR/frames/clip000/00000.png ...`` and
``DIR/masks/clip000/00000.png ...`` (``--mask_every K``: a mask for every K-th frame only).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from util.cli import ArgumentParser
from util.fileio import atomic_path
from util.image import write_image
from util.video import VideoError, write_video

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "asset" / "sample"
NUM_FRAMES = 32
SIZE = (240, 320)  # (height, width)
FPS = 12.0
SEED = 0
PAN_PER_FRAME = 1.5  # background shift in pixels per frame
MASK_NAME = "{:05d}.png"  # as the frames that util.video.extract_frames writes, 00000.jpg ...
GT_SUBDIR = Path("gt") / "sample"  # <gt root>/<video>/<frame>.png, as the scorers read it


def mask_dir(out_dir: str | os.PathLike = SAMPLE_DIR) -> Path:
    """The folder of the sample's ground-truth masks under ``out_dir``."""
    return Path(out_dir) / GT_SUBDIR


def noise_texture(
    shape: tuple[int, int], rng: np.random.Generator, cells: Sequence[int] = (3, 8, 24, 64)
) -> np.ndarray:
    """Colour value noise ``[H, W, 3]`` float32 in [0, 1]: random grids of ``cells`` cells
    across the width, upsampled bicubically and summed with weight 1/sqrt(cells)."""
    height, width = shape
    total = np.zeros((height, width, 3), np.float32)
    for count in cells:
        grid = rng.random((max(2, count * height // width), count, 3), dtype=np.float32)
        total += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / np.sqrt(count)
    low, high = total.min(), total.max()
    return (total - low) / (high - low)


def _disc_sprite(radius: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A warm-coloured textured disc: RGB ``[S, S, 3]`` float32 and alpha ``[S, S]`` (S=2r+1)."""
    size = 2 * radius + 1
    texture = noise_texture((size, size), rng, cells=(2, 6, 16))
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - radius
    stripes = 0.5 + 0.5 * np.sin(xx / 2.5)[..., None]
    rgb = np.clip(
        np.array([0.95, 0.45, 0.15]) * (0.4 + 0.6 * texture) * (0.6 + 0.4 * stripes), 0, 1
    )
    alpha = np.clip(radius - np.hypot(xx, yy) + 0.5, 0, 1)
    return rgb.astype(np.float32), alpha.astype(np.float32)


@dataclass(frozen=True)
class Motion:
    """How the disc and the camera move through a clip, in fractions of the frame size.

    The disc's centre goes from ``start`` (x, y) by ``travel`` (dx, dy) over the clip,
    bobbing up and down by ``bob`` (one sine period); it turns ``spin`` degrees per frame;
    its radius is ``radius`` times the height; the background pans ``pan`` (dx, dy) pixels
    per frame.
    """

    start: tuple[float, float] = (0.2, 0.5)
    travel: tuple[float, float] = (0.6, 0.0)
    bob: float = 0.2
    spin: float = 4.0
    radius: float = 0.15
    pan: tuple[float, float] = (PAN_PER_FRAME, 0.0)


SAMPLE_MOTION = Motion()  # the bundled clip: left to right, bobbing, the camera panning


def random_motion(rng: np.random.Generator) -> Motion:
    """A random path of the sample's kind: the disc crosses a good part of the frame in any
    direction, turning either way, over a background panning any way at up to 2 px/frame."""
    start = rng.uniform(0.2, 0.8, 2)
    end = rng.uniform(0.2, 0.8, 2)
    return Motion(
        start=(float(start[0]), float(start[1])),
        travel=(float(end[0] - start[0]), float(end[1] - start[1])),
        bob=float(rng.uniform(-0.15, 0.15)),
        spin=float(rng.uniform(-6.0, 6.0)),
        radius=float(rng.uniform(0.1, 0.2)),
        pan=(float(rng.uniform(-2.0, 2.0)), float(rng.uniform(-2.0, 2.0))),
    )


def _disc_centre(
    t: int, num_frames: int, size: tuple[int, int], motion: Motion
) -> tuple[float, float]:
    """(x, y) of the disc in frame ``t``."""
    height, width = size
    phase = t / max(1, num_frames - 1)
    (x0, y0), (dx, dy) = motion.start, motion.travel
    return width * (x0 + dx * phase), height * (
        y0 + dy * phase + motion.bob * np.sin(2 * np.pi * phase)
    )


def _pan_margin(step: float, num_frames: int) -> int:
    """Extra background pixels a pan of ``step`` px per frame needs along one axis."""
    return int(np.ceil(abs(step) * num_frames)) + 1 if step else 0


def make_clip(
    num_frames: int = NUM_FRAMES,
    size: tuple[int, int] = SIZE,
    seed: int | Sequence[int] = SEED,
    motion: Motion = SAMPLE_MOTION,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The sample clip: RGB frames ``[H, W, 3]`` uint8 and masks ``[H, W]`` uint8 (0/255).

    ``size`` is (height, width); the same ``seed`` and ``motion`` give the same clip
    (``seed`` draws the textures, ``motion`` the paths).
    """
    height, width = size
    rng = np.random.default_rng(seed)
    pan_x, pan_y = motion.pan
    margin_x, margin_y = _pan_margin(pan_x, num_frames), _pan_margin(pan_y, num_frames)
    background = noise_texture((height + margin_y, width + margin_x), rng) * np.array(
        [0.5, 0.8, 0.7]
    )
    radius = round(motion.radius * height)
    sprite, sprite_alpha = _disc_sprite(radius, rng)
    frames, masks = [], []
    for t in range(num_frames):
        # a negative pan starts at the far side of the background, so the view stays on it
        offset_x = pan_x * t + (margin_x - 1 if pan_x < 0 else 0)
        offset_y = pan_y * t + (margin_y - 1 if pan_y < 0 else 0)
        shift = np.float32([[1, 0, -offset_x], [0, 1, -offset_y]])
        view = cv2.warpAffine(background.astype(np.float32), shift, (width, height))
        x, y = _disc_centre(t, num_frames, size, motion)
        turn = cv2.getRotationMatrix2D((radius, radius), motion.spin * t, 1.0)
        turn[:, 2] += (x - radius, y - radius)
        rgb = cv2.warpAffine(sprite, turn, (width, height))
        alpha = cv2.warpAffine(sprite_alpha, turn, (width, height))[..., None]
        frame = view * (1 - alpha) + rgb * alpha
        frames.append(np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8))
        masks.append(np.where(alpha[..., 0] >= 0.5, 255, 0).astype(np.uint8))
    return frames, masks


def random_clip(
    index: int, num_frames: int = NUM_FRAMES, size: tuple[int, int] = SIZE, seed: int = SEED
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Clip ``index`` of a family of random clips of the sample's kind (frames and masks as
    :func:`make_clip`); the same ``(index, seed)`` gives the same clip, and no index gives
    the bundled sample's textures."""
    motion = random_motion(np.random.default_rng([seed, index, 1]))
    return make_clip(num_frames, size, seed=[seed, index, 2], motion=motion)


def write_sample(
    out_dir: str | os.PathLike = SAMPLE_DIR,
    num_frames: int = NUM_FRAMES,
    size: tuple[int, int] = SIZE,
    fps: float = FPS,
    seed: int = SEED,
) -> Path:
    """Write ``out_dir/sample.mp4`` and ``out_dir/gt/sample/00000.png``, ...; returns the video."""
    out_dir = Path(out_dir)
    frames, masks = make_clip(num_frames, size, seed)
    video = write_video(frames, out_dir / "sample.mp4", fps)
    for index, mask in enumerate(masks):
        path = mask_dir(out_dir) / MASK_NAME.format(index)
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), mask):
                raise VideoError(f"cannot write mask {path}")
    height, width = size
    log.info(
        "%s: %d frames, %dx%d, %g fps; masks in %s",
        video,
        num_frames,
        width,
        height,
        fps,
        mask_dir(out_dir),
    )
    return video


CLIP_NAME = "clip{:03d}"


def write_clips(
    out_dir: str | os.PathLike,
    count: int,
    num_frames: int = NUM_FRAMES,
    size: tuple[int, int] = SIZE,
    seed: int = SEED,
    first: int = 0,
    mask_every: int = 1,
) -> list[str]:
    """Write clips ``first .. first + count - 1`` of :func:`random_clip` as
    ``out_dir/frames/clipNNN/00000.png ...`` (lossless) and ``out_dir/masks/clipNNN/...``
    (0/255, for frames 0, K, 2K, ... with ``mask_every`` K); returns the clip names."""
    out_dir = Path(out_dir)
    names = []
    for index in range(first, first + count):
        name = CLIP_NAME.format(index)
        frames, masks = random_clip(index, num_frames, size, seed)
        for t, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
            write_image(out_dir / "frames" / name / MASK_NAME.format(t), frame)
            if t % mask_every == 0:
                write_image(out_dir / "masks" / name / MASK_NAME.format(t), mask)
        names.append(name)
    log.info("%d clips of %d frames (%dx%d) in %s", count, num_frames, size[1], size[0], out_dir)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m util.sample [--out DIR]``: (re)generate the bundled sample;
    ``--clips N``: write N random clips of its kind instead."""
    parser = ArgumentParser(prog="python -m util.sample", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="default: asset/sample (the bundled sample)")
    parser.add_argument("--clips", type=int, help="write this many random clips to --out")
    parser.add_argument("--first", type=int, default=0, help="index of the first clip")
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help="frames per clip")
    parser.add_argument("--size", type=int, nargs=2, default=SIZE, metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=SEED, help="the family of clips")
    parser.add_argument("--mask_every", type=int, default=1, help="a mask every K frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.clips is None:
        write_sample(args.out or SAMPLE_DIR)
        return 0
    if args.out is None:
        parser.error("--clips needs --out")
    if args.clips < 1 or args.frames < 2 or args.mask_every < 1 or min(args.size) < 16:
        parser.error("expected --clips >= 1, --frames >= 2, --mask_every >= 1, --size >= 16")
    write_clips(
        args.out, args.clips, args.frames, tuple(args.size), args.seed, args.first,
        args.mask_every,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
