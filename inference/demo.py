"""The web demo's request pipeline (``app.py``): an uploaded video in, an overlay video and a
zip of masks out, with limits, progress by stage and a way to stop.

    segmenter = DemoSegmenter.load(test_model=None, device="cpu")  # the network, built once
    with tempfile.TemporaryDirectory() as work:
        result = segmenter.run("clip.mp4", DemoSettings(size=256), work, report=print)
        result.overlay, result.masks_zip, result.summary

One request:

1. the video is probed and checked against ``DemoLimits`` (one-line ``InputError`` naming
   the upload by its own name, never by a server path);
2. **decoding**: the frames of the range, thinned to the frame-rate cap, are decoded into
   ``{work}/frame/`` as ``test.py --video`` decodes them (``util.video``), named after
   their index in the video;
3. **flow** and **network**, clip by clip: ``MTNetPredictor.segment`` computes the flows
   between consecutive kept frames and runs the network; each mask is written as
   ``{work}/masks/{frame}.png`` as test.py writes it;
4. the overlay (masks tinted over the frames, ``inference.visualize.compose``) is encoded
   as it comes as a VP9 WebM (browsers play it; no conversion needed), and the masks are
   zipped.

Without a range or a cap the masks equal ``test.py --video``'s for the same video, weights,
task, size and precision: the same decoded frames, the same flows, the same predictor.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dataset.registry import TASKS
from model.variants import SIZE_MULTIPLE, check_test_size
from util.choices import PRECISIONS
from util.errors import InputError
from util.fileio import atomic_path
from util.flow import FlowSettings, resolve_device
from util.image import read_rgb_array, write_image
from util.layout import mask_path
from util.resources import check_clip_memory
from util.video import VideoError, VideoInfo, frame_path, iter_frames, write_video
from util.video import probe_video as probe_video_file

from .config import TestConfig, default_test_model
from .predictor import MTNetPredictor
from .runtime import check_runtime, describe_line
from .session import build_model, read_test_model
from .video_input import FRAME_SUFFIX
from .visualize import compose

log = logging.getLogger(__name__)

CLIP_LENGTH = 9  # test.py's --test_length (the paper's test clips)
OVERLAY_SIDE = 640  # the overlay video's longest side at most: VP9 encoding time grows with it


class DemoCancelled(Exception):
    """The request was stopped by its user."""


@dataclass(frozen=True)
class DemoLimits:
    """What one request may ask for: the upload's size, the video's duration, and its
    frames' shortest and longest side."""

    max_upload_mb: float = 200.0
    max_seconds: float = 60.0
    max_side: int = 1920
    min_side: int = 32

    def validate(self) -> None:
        """``InputError`` for a limit that is not positive (flag names of app.py)."""
        for flag, value in (
            ("--max_upload_mb", self.max_upload_mb),
            ("--max_seconds", self.max_seconds),
            ("--max_side", self.max_side),
        ):
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{flag} {value}: expected a positive number")
        if self.max_side < self.min_side:
            raise InputError(f"--max_side {self.max_side}: expected at least {self.min_side}")


@dataclass(frozen=True)
class DemoSettings:
    """One request's settings.

    size: the network's input, ``size x size`` (a multiple of 64). first_frame, last_frame:
    the range of frame indices (0-based, ``last_frame`` included; ``None``: to the end).
    max_fps: keep at most this many frames per second of video (``None`` or 0: every frame).
    """

    task: str = "UVOS"
    size: int = 256
    precision: str = "fp32"
    first_frame: int = 0
    last_frame: int | None = None
    max_fps: float | None = 6.0

    def validate(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"task {self.task!r}: expected one of {', '.join(TASKS)}")
        check_test_size(self.size, self.size, "size")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r}: expected one of {PRECISIONS}")
        if self.first_frame < 0 or (self.last_frame is not None and self.last_frame < 0):
            raise InputError("frame range: expected frame numbers of 0 or more")
        if self.last_frame is not None and self.last_frame < self.first_frame:
            raise InputError(
                f"frame range {self.first_frame}-{self.last_frame}: the last frame comes "
                "before the first"
            )
        if self.max_fps is not None and not (math.isfinite(self.max_fps) and self.max_fps >= 0):
            raise InputError(f"frame-rate cap {self.max_fps}: expected 0 (none) or more")


@dataclass(frozen=True)
class Update:
    """Progress of a request: the stage (``"decoding"``, ``"flow"``, ``"network"``,
    ``"overlay"``), frames done of ``total`` in it, and a line for people."""

    stage: str
    done: int
    total: int
    text: str


@dataclass(frozen=True)
class Pace:
    """How fast a finished request went: seconds per kept frame, for frames of
    ``width`` x ``height`` at the network size ``size``."""

    seconds_per_frame: float
    width: int
    height: int
    size: int

    def estimate(self, frames: int) -> str:
        """The expected time of ``frames`` frames at this pace, as a phrase."""
        return (
            f"about {frames * self.seconds_per_frame:.0f} s at the last request's pace "
            f"({self.seconds_per_frame:.2f} s a frame for {self.width}x{self.height} at "
            f"size {self.size})"
        )


@dataclass(frozen=True)
class DemoResult:
    """A finished request: the overlay video (WebM), the zip of masks, the kept frames'
    indices, the seconds from start to finish, and the summary line."""

    overlay: Path
    masks_zip: Path
    frames: list[int]
    seconds: float
    summary: str


def probe_video(path: str | os.PathLike, name: str) -> VideoInfo:
    """The size, rate and frame count of a video file; ``InputError`` naming the upload
    ``name`` when OpenCV cannot open it or decode its first frame (not a video)."""
    try:
        return probe_video_file(path)
    except VideoError:
        raise InputError(
            f"{name}: not a video that can be decoded; expected a video file"
        ) from None


def check_limits(info: VideoInfo, limits: DemoLimits, name: str) -> None:
    """``InputError`` (one line, naming the upload) for a frame too small or too large or a
    video longer than the limits."""
    short, long = sorted((info.width, info.height))
    if short < limits.min_side:
        raise InputError(
            f"{name}: frames of {info.width}x{info.height}; expected at least "
            f"{limits.min_side} pixels a side"
        )
    if long > limits.max_side:
        raise InputError(
            f"{name}: frames of {info.width}x{info.height}; this server takes at most "
            f"{limits.max_side} pixels a side"
        )
    if info.seconds > limits.max_seconds:
        raise InputError(
            f"{name}: {info.seconds:.1f} s of video; this server takes at most "
            f"{limits.max_seconds:g} s (cut it, or choose a frame range of a shorter video)"
        )


def frame_step(fps: float, max_fps: float | None) -> float:
    """Source frames per kept frame: 1, or ``fps / max_fps`` under a lower cap."""
    return fps / max_fps if max_fps and fps > max_fps else 1.0


def kept_frames(settings: DemoSettings, info: VideoInfo, count: int) -> list[int]:
    """Indices of the frames a request segments, of a video of ``count`` frames: the range,
    every ``frame_step``-th frame (rounded to the nearest)."""
    last = count - 1 if settings.last_frame is None else min(settings.last_frame, count - 1)
    step = frame_step(info.fps, settings.max_fps)
    kept, k = [], 0
    while (index := settings.first_frame + round(k * step)) <= last:
        kept.append(index)
        k += 1
    return kept


def precisions_here(device: torch.device) -> list[str]:
    """The precisions the torch runtime runs on ``device`` without extra files (test.py's
    own check, ``check_runtime``)."""
    modes = []
    for precision in PRECISIONS:
        try:
            check_runtime("torch", precision, device)
        except InputError:
            continue
        modes.append(precision)
    return modes


def overlay_size(width: int, height: int, side: int = OVERLAY_SIDE) -> tuple[int, int]:
    """The overlay video's (width, height): the frame's, scaled down to ``side`` pixels at
    most, both even (VP9's 4:2:0 chroma)."""
    scale = min(1.0, side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class DemoSegmenter:
    """The network of a demo server, built once, and the request pipeline around it.

    Args:
        model: MTNet in eval mode on ``device``.
        weights: what the weights are, for summaries: a file's name and SHA-256 prefix, or
            ``"untrained"``.
        device: where the network and RAFT flow run.
        limits: what a request may ask for.
        flow: how flows are made (test.py's default, DIS).
    """

    def __init__(
        self,
        model: nn.Module,
        weights: str,
        device: torch.device,
        limits: DemoLimits | None = None,
        flow: FlowSettings | None = None,
    ):
        self.model = model
        self.weights = weights
        self.device = device
        self.limits = limits or DemoLimits()
        self.flow = flow or FlowSettings()
        self.untrained = weights == "untrained"
        self.precisions = precisions_here(device)
        self._predictors: dict[tuple[str, int, str], MTNetPredictor] = {}
        self.last_pace: Pace | None = None  # of the last finished request
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        test_model: str | os.PathLike | None,
        device: torch.device | str = "cpu",
        limits: DemoLimits | None = None,
    ) -> DemoSegmenter:
        """The network of ``test_model``, else test.py's default weights file when present,
        else test.py's untrained network (``weights`` then ``"untrained"``)."""
        device = resolve_device(device)
        path = test_model if test_model is not None else default_test_model(video=True)
        if path is None:  # test.py's untrained network, with its warning
            model = build_model(TestConfig(test_model=None), device)
            return cls(model, "untrained", device, limits)
        cfg = TestConfig(test_model=str(path))  # the variant read off the file
        weights = read_test_model(cfg)  # a missing file says where weights come from
        model = build_model(cfg, device, weights)
        return cls(model, f"{Path(path).name} (sha256 {weights.sha256[:12]})", device, limits)

    def predictor(self, settings: DemoSettings) -> MTNetPredictor:
        """The predictor of a task, size and precision (made once, then reused)."""
        if settings.precision not in self.precisions:
            raise InputError(
                f"precision {settings.precision}: runs here as one of {', '.join(self.precisions)}"
            )
        key = (settings.task, settings.size, settings.precision)
        with self._lock:
            if key not in self._predictors:
                self._predictors[key] = MTNetPredictor(
                    self.model,
                    settings.task,
                    (settings.size, settings.size),
                    CLIP_LENGTH,
                    device=self.device,
                    precision=settings.precision,
                    flow=self.flow,
                )
                log.info("network: %s", describe_line(self._predictors[key].describe()))
            return self._predictors[key]

    def run(
        self,
        video: str | os.PathLike,
        settings: DemoSettings,
        work: str | os.PathLike,
        *,
        name: str | None = None,
        report: Callable[[Update], None] | None = None,
    ) -> DemoResult:
        """One request: ``video`` (a server-side file) segmented into ``work`` (an empty
        folder of this request's own, which the caller removes afterwards).

        ``name``: how messages call the video (default: its file name). ``report`` gets
        an ``Update`` after every frame of every stage; raising from it (e.g.
        ``DemoCancelled``) stops the request there. Raises ``InputError`` (one line) for a
        video or settings this server does not take.
        """
        start = time.perf_counter()
        work, name = Path(work), name or Path(video).name
        report = report or (lambda update: None)
        settings.validate()
        check_clip_memory(
            (settings.size, settings.size), CLIP_LENGTH, self.device, "the size", None
        )
        predictor = self.predictor(settings)
        info = probe_video(video, name)
        check_limits(info, self.limits, name)
        frames = self._decode(video, info, settings, work / "frame", name, report)
        overlay, masks = work / "overlay.webm", work / "masks"
        step = frame_step(info.fps, settings.max_fps)
        size = overlay_size(info.width, info.height)
        pictures = self._segment(predictor, frames, masks, size, report)
        write_video(pictures, overlay, info.fps / step)
        masks_zip = zip_masks(masks, [p.stem for p in frames], work / "masks.zip")
        seconds = time.perf_counter() - start
        kept = [int(p.stem) for p in frames]
        self.last_pace = Pace(seconds / len(kept), info.width, info.height, settings.size)
        summary = self.summary(settings, kept, step, seconds)
        log.info("%s: %s", name, summary)
        return DemoResult(overlay, masks_zip, kept, seconds, summary)

    def summary(self, settings: DemoSettings, kept: list[int], step: float, seconds: float) -> str:
        """The line under a result: frames, time, rate, settings, weights."""
        every = f", every {step:.3g} frames" if step > 1 else ""
        return (
            f"{len(kept)} frames ({kept[0]}-{kept[-1]}{every}) in {seconds:.1f} s, "
            f"{len(kept) / seconds:.2f} frames/s; {settings.task}, {settings.size}x"
            f"{settings.size}, {settings.precision}, flow {self.flow.method}, clips of "
            f"{CLIP_LENGTH}, {self.device.type}; weights: {self.weights}"
        )

    def _decode(
        self,
        video: str | os.PathLike,
        info: VideoInfo,
        settings: DemoSettings,
        out_dir: Path,
        name: str,
        report: Callable[[Update], None],
    ) -> list[Path]:
        """The kept frames, decoded into ``out_dir`` as test.py --video decodes them."""
        count = info.frames or math.ceil(self.limits.max_seconds * info.fps)
        wanted = kept_frames(settings, info, count)
        if len(wanted) < 2:
            raise InputError(
                f"{name}: {len(wanted)} frame in the range {settings.first_frame}-"
                f"{settings.last_frame if settings.last_frame is not None else count - 1}; "
                "expected two or more (motion)"
            )
        todo, written = set(wanted), []
        most = math.floor(self.limits.max_seconds * info.fps) + 1  # a container that lied
        for index, rgb in enumerate(iter_frames(video)):
            if index >= most:
                raise InputError(f"{name}: longer than {self.limits.max_seconds:g} s of video")
            if rgb.shape[:2] != (info.height, info.width):
                raise InputError(
                    f"{name}: frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, not "
                    f"{info.width}x{info.height}; expected frames of one size"
                )
            if index in todo:
                written.append(write_image(frame_path(out_dir, index, FRAME_SUFFIX), rgb))
            report(Update("decoding", len(written), len(wanted), f"decoding: frame {index}"))
            if index >= wanted[-1]:
                break
        if len(written) < 2:
            raise InputError(f"{name}: {len(written)} frame decoded; expected two or more")
        return written

    def _segment(
        self,
        predictor: MTNetPredictor,
        frames: list[Path],
        masks: Path,
        size: tuple[int, int],
        report: Callable[[Update], None],
    ) -> Iterator[np.ndarray]:
        """Flow and network clip by clip; writes each mask and yields its overlay picture
        (``size``), frame by frame."""
        total, pulled = len(frames), deque()
        label = "MTNet (untrained)" if self.untrained else "MTNet"
        start = time.perf_counter()

        def frames_for_network() -> Iterator[np.ndarray]:
            for i, path in enumerate(frames):
                frame = read_rgb_array(path)
                pulled.append(frame)
                report(Update("flow", i + 1, total, f"optical flow: frame {i + 1}/{total}"))
                yield frame

        results = predictor.segment(frames_for_network(), video=frames[0].parent.name)
        for done, (path, mask) in enumerate(zip(frames, results, strict=True), 1):
            write_image(mask_path(masks, path.stem), mask)
            frame = cv2.resize(pulled.popleft(), size, interpolation=cv2.INTER_AREA)
            yield compose(frame, mask, label)
            rate = done / (time.perf_counter() - start)
            text = (
                f"network: {done}/{total} frames, {rate:.2f} frames/s, "
                f"about {(total - done) / rate:.0f} s left"
            )
            report(Update("network", done, total, text))


def zip_masks(masks: Path, stems: list[str], path: Path) -> Path:
    """The masks ``{stem}.png`` of ``masks`` in one zip (stored: PNGs are compressed)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for stem in stems:
            source = mask_path(masks, stem)
            archive.write(source, source.name)
    return path


def size_choices(largest: int = 512) -> list[int]:
    """Network input sizes offered: the multiples of 64 up to ``largest``."""
    return list(range(SIZE_MULTIPLE, largest + 1, SIZE_MULTIPLE))
