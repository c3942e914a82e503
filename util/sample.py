"""The bundled sample clip, generated procedurally: no third-party footage.

A textured disc moves along a smooth path, turning slowly, over a textured background while the
camera pans; every frame comes from a seeded random generator, so the clip is the same on every
run. ``python -m util.sample`` writes

- ``asset/sample/sample.mp4``: the clip (OpenCV ``mp4v``), and
- ``asset/sample/gt/sample/00000.png``, ...: the disc's ground-truth masks (0/255), one per
  frame, named like the frames that :func:`util.video.extract_frames` takes out of the clip.
  ``gt/<video>/<frame>.png`` is the layout the evaluation scripts read, so
  ``test_scripts/test_for_davis.py --gt_path asset/sample/gt`` scores ``make demo``'s masks.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from util.cli import ArgumentParser
from util.fileio import atomic_path
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


def _disc_centre(t: int, num_frames: int, size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) of the disc in frame ``t``: left to right, bobbing up and down."""
    height, width = size
    phase = t / max(1, num_frames - 1)
    return width * (0.2 + 0.6 * phase), height * (0.5 + 0.2 * np.sin(2 * np.pi * phase))


def make_clip(
    num_frames: int = NUM_FRAMES, size: tuple[int, int] = SIZE, seed: int = SEED
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The sample clip: RGB frames ``[H, W, 3]`` uint8 and masks ``[H, W]`` uint8 (0/255).

    ``size`` is (height, width); the same ``seed`` gives the same clip.
    """
    height, width = size
    rng = np.random.default_rng(seed)
    pan = int(np.ceil(PAN_PER_FRAME * num_frames)) + 1
    background = noise_texture((height, width + pan), rng) * np.array([0.5, 0.8, 0.7])
    radius = round(0.15 * height)
    sprite, sprite_alpha = _disc_sprite(radius, rng)
    frames, masks = [], []
    for t in range(num_frames):
        shift = np.float32([[1, 0, -PAN_PER_FRAME * t], [0, 1, 0]])
        view = cv2.warpAffine(background.astype(np.float32), shift, (width, height))
        x, y = _disc_centre(t, num_frames, size)
        turn = cv2.getRotationMatrix2D((radius, radius), 4.0 * t, 1.0)
        turn[:, 2] += (x - radius, y - radius)
        rgb = cv2.warpAffine(sprite, turn, (width, height))
        alpha = cv2.warpAffine(sprite_alpha, turn, (width, height))[..., None]
        frame = view * (1 - alpha) + rgb * alpha
        frames.append(np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8))
        masks.append(np.where(alpha[..., 0] >= 0.5, 255, 0).astype(np.uint8))
    return frames, masks


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m util.sample [--out DIR]``: (re)generate the bundled sample."""
    parser = ArgumentParser(prog="python -m util.sample", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="default: asset/sample")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_sample(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
