"""Video files with OpenCV: decode a video into a folder of frames, encode frames to a
video (MP4 with ``mp4v``, or WebM with VP9, which browsers play).

Frames in memory are RGB ``uint8`` arrays of shape ``[H, W, 3]`` (OpenCV's BGR stays inside
this module). Extracted frames are named ``00000.jpg``, ``00001.jpg``, ... as in DAVIS16,
after their index in the video (``.png``, lossless, when asked).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from util.errors import InputError
from util.fileio import atomic_path
from util.image import write_image

log = logging.getLogger(__name__)

FRAME_STEM = "{:05d}"
# the codec of each container write_video writes; browsers play VP9 in WebM, not mp4v (for
# WebM, OpenCV warns that the tag is "not supported": WebM stores none, the stream is VP9)
VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP90"}
DEFAULT_FPS = 25.0  # the rate assumed for a container that stores none


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


def frame_path(out_dir: str | os.PathLike, index: int, suffix: str) -> Path:
    """Where frame ``index`` (0-based, in the video's order) of a decoded video goes, as a
    ``suffix`` (``".png"``, ``".jpg"``) file."""
    return Path(out_dir) / f"{FRAME_STEM.format(index)}{suffix}"


def iter_frames(video_path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Every frame of a video, decoded in order, as RGB ``[H, W, 3]`` uint8 arrays.

    Raises :class:`VideoError` when the file is missing or cannot be opened (a file that
    opens but holds no frame yields nothing).
    """
    capture = _open(Path(video_path))
    try:
        ok, bgr = capture.read()
        while ok:
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            ok, bgr = capture.read()
    finally:
        capture.release()


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
    video_path = Path(video_path)
    capture = _open(video_path)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    capture.release()
    paths: list[Path] = []
    with tqdm(total=total, desc=video_path.name, unit="frame", disable=not progress) as bar:
        for rgb in iter_frames(video_path):
            paths.append(write_image(frame_path(out_dir, len(paths), suffix), rgb))
            bar.update()
    if not paths:
        raise VideoError(f"no frame could be decoded from {video_path}")
    log.info("%s: %d frames -> %s", video_path, len(paths), out_dir)
    return paths


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says of itself: frame size (of its first decoded frame), rate and
    count (the count as the container states it; 0 when it does not)."""

    width: int
    height: int
    fps: float
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def probe_video(video_path: str | os.PathLike) -> VideoInfo:
    """The size, rate and frame count of a video file, decoding its first frame only.

    Raises :class:`VideoError` when the file is missing, cannot be opened, or yields no
    frame (a file OpenCV opens need not be a video).
    """
    video_path = Path(video_path)
    capture = _open(video_path)
    try:
        ok, first = capture.read()
        fps = capture.get(cv2.CAP_PROP_FPS)
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if not ok:
        raise VideoError(f"no frame could be decoded from {video_path}")
    height, width = first.shape[:2]
    return VideoInfo(width, height, fps if fps > 0 else DEFAULT_FPS, max(frames, 0))


def count_frames(video_path: str | os.PathLike) -> int:
    """The number of frames of a video file, counted by reading them all: exact, where the
    count a container states (:attr:`VideoInfo.frames`) may be an estimate or missing."""
    capture = _open(Path(video_path))
    try:
        count = 0
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def video_fps(video_path: str | os.PathLike) -> float:
    """Frame rate stored in a video file, or ``DEFAULT_FPS`` when the container has none."""
    return probe_video(video_path).fps


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> Path:
    """Encode RGB frames ``[H, W, 3]`` ``uint8`` (all of one size) as a video: an MP4
    (``mp4v``) or a WebM (VP9), after ``path``'s suffix (``VIDEO_CODECS``).

    Frames are pulled one at a time (a generator's frames need not all fit in memory). The
    file appears at ``path`` only once it is complete. Raises :class:`VideoError` on no
    frames, mixed sizes, another suffix, or an encoder that does not open.
    """
    path = Path(path)
    codec = VIDEO_CODECS.get(path.suffix.lower())
    if codec is None:
        raise VideoError(f"{path}: expected a video name ending in {', '.join(VIDEO_CODECS)}")
    with atomic_path(path) as tmp:
        writer: cv2.VideoWriter | None = None
        size: tuple[int, int] | None = None
        try:
            for frame in frames:
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    fourcc = cv2.VideoWriter_fourcc(*codec)
                    writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), size)
                    if not writer.isOpened():
                        raise VideoError(f"cannot open a {codec} encoder for {path}")
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
