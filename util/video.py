"""Video files with OpenCV: decode a video into a folder of frames, encode frames to mp4.

Frames in memory are RGB ``uint8`` arrays of shape ``[H, W, 3]`` (OpenCV's BGR stays inside
this module). Extracted frames are named ``00000.jpg``, ``00001.jpg``, ... as in DAVIS16
(``.png``, lossless, when asked).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from util.errors import InputError
from util.fileio import atomic_path
from util.image import write_image

log = logging.getLogger(__name__)

FRAME_STEM = "{:05d}"


class VideoError(InputError):
    """A video that cannot be opened, decoded or written."""


def _open(video_path: Path) -> cv2.VideoCapture:
    """Open ``video_path`` for reading, or raise :class:`VideoError`."""
    if not video_path.is_file():
        raise VideoError(f"video file not found: {video_path}")
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        raise VideoError(f"cannot open video {video_path} (not a video OpenCV can decode?)")
    return capture


def extract_frames(
    video_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    progress: bool = True,
    suffix: str = ".jpg",
) -> list[Path]:
    """Decode every frame of a video into ``out_dir/00000.jpg``, ``00001.jpg``, ...
    (``suffix`` ``".png"``: lossless, the decoded pixels exactly).

    Files already in ``out_dir`` with those names are overwritten; other files are left alone.
    Returns the written paths in frame order. Raises :class:`VideoError` when the file is
    missing, cannot be opened, or yields no frame.
    """
    video_path, out_dir = Path(video_path), Path(out_dir)
    capture = _open(video_path)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    paths: list[Path] = []
    with tqdm(total=total, desc=video_path.name, unit="frame", disable=not progress) as bar:
        try:
            ok, bgr = capture.read()
            while ok:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                paths.append(write_image(out_dir / f"{FRAME_STEM.format(len(paths))}{suffix}", rgb))
                bar.update()
                ok, bgr = capture.read()
        finally:
            capture.release()
    if not paths:
        raise VideoError(f"no frame could be decoded from {video_path}")
    log.info("%s: %d frames -> %s", video_path, len(paths), out_dir)
    return paths


def video_fps(video_path: str | os.PathLike, default: float = 25.0) -> float:
    """Frame rate stored in a video file, or ``default`` when the container has none."""
    capture = _open(Path(video_path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return fps if fps > 0 else default


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> Path:
    """Encode RGB frames ``[H, W, 3]`` ``uint8`` (all of one size) as an mp4 (``mp4v``).

    The file appears at ``path`` only once it is complete. Raises :class:`VideoError` on no
    frames, mixed sizes, or an encoder that does not open.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        writer: cv2.VideoWriter | None = None
        size: tuple[int, int] | None = None
        try:
            for frame in frames:
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), size)
                    if not writer.isOpened():
                        raise VideoError(f"cannot open an mp4v encoder for {path}")
                if (frame.shape[1], frame.shape[0]) != size:
                    got = f"{frame.shape[1]}x{frame.shape[0]}"
                    raise VideoError(
                        f"frames of mixed sizes for {path}: {size[0]}x{size[1]}, {got}"
                    )
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise VideoError(f"no frames to write to {path}")
    return path
