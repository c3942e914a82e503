"""Tiny synthetic test videos for the inference and visualisation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_random_image(path: Path, rng: np.random.Generator, size: tuple[int, int]) -> None:
    """A smooth random RGB image of ``size`` = (h, w) (JPEG or PNG by suffix)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    freq = rng.uniform(0.05, 0.3, 3)
    img = base + 80 * np.sin(freq * (xx[..., None] + yy[..., None]) + rng.uniform(0, 6, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def make_video(
    root: Path,
    name: str,
    frames: list[str],
    flows: list[str],
    size: tuple[int, int] = (40, 56),
    frame_ext: str = ".jpg",
    flow_ext: str = ".jpg",
    seed: int = 0,
) -> None:
    """``root/{frame,flow}/<name>/`` with the given frame and flow stems."""
    rng = np.random.default_rng(seed)
    (root / "frame" / name).mkdir(parents=True, exist_ok=True)
    for stem in frames:
        write_random_image(root / "frame" / name / f"{stem}{frame_ext}", rng, size)
    (root / "flow" / name).mkdir(parents=True, exist_ok=True)
    for stem in flows:
        write_random_image(root / "flow" / name / f"{stem}{flow_ext}", rng, size)


def stems(n: int) -> list[str]:
    return [f"{i:05d}" for i in range(n)]


def make_dataset(root: Path) -> Path:
    """Dataset ``SYN``: video ``a`` (5 frames, 4 flows: the usual last frame without
    flow, 40x56) and ``b`` (3 frames, 3 flows, 30x50)."""
    make_video(root, "a", stems(5), stems(4), seed=1)
    make_video(root, "b", stems(3), stems(3), size=(30, 50), seed=2)
    return root
