"""Writing prepared videos: what every preparer of :mod:`dataset.prepare` shares.

A video becomes ``<split>/{frame,flow,mask}/<video>/``: its frames copied byte for byte (or
hard-linked), binary masks ``<stem>.png`` (0/255) and one flow image per frame (the flow
t->t+1 named after frame t; the last frame a copy of the preceding flow). The record
``<split>/.prepare/<video>.json`` names the sources and options, so a rerun keeps finished
videos, continues unfinished ones and remakes those whose sources or options changed.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from util.errors import InputError
from util.fileio import atomic_path, check_no_links, read_json, write_json
from util.flow import FlowEstimator, FlowSettings, flow_path, flows_for_frames, list_frames
from util.image import image_size, read_object_ids, write_image

log = logging.getLogger(__name__)

OBJECT_RULES = ("union", "largest", "first")
MARKER_DIR = ".prepare"
RECORD_VERSION = 1
MIN_FRAMES = 2  # a flow needs two frames


@dataclass(frozen=True)
class SourceVideo:
    """One video of a download: its frames and their annotations, in frame order (``None``:
    a frame without annotation, kept with its flow but given no mask)."""

    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path | None, ...]


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that decides the output besides the sources, and how to run."""

    flow: FlowSettings = field(default_factory=FlowSettings)
    device: str = "auto"  # where RAFT runs (does not change the output)
    objects: str = "union"
    link: bool = False
    progress: bool = True
    videos: tuple[str, ...] | None = None


@dataclass
class Summary:
    """What a run did, per split."""

    made: int = 0
    kept: int = 0
    skipped: int = 0
    frames: int = 0


# ---- masks ---------------------------------------------------------------------------


def choose_objects(id_maps: Sequence[np.ndarray], rule: str) -> list[np.ndarray]:
    """Binary masks (bool ``[h, w]``) of one video's annotations by ``rule``.

    ``union``: every object; ``largest``: the object with the most pixels over all the
    maps (ties: the smaller id); ``first``: the smallest object id in the video.
    """
    if rule == "union":
        return [ids > 0 for ids in id_maps]
    counts = np.zeros(256, dtype=np.int64)
    for ids in id_maps:
        counts += np.bincount(ids.ravel(), minlength=256)[:256]
    counts[0] = 0
    present = np.flatnonzero(counts)
    if present.size == 0:
        return [np.zeros(ids.shape, dtype=bool) for ids in id_maps]
    if rule == "first":
        chosen = int(present[0])
    elif rule == "largest":
        chosen = int(np.argmax(counts))  # argmax takes the first (smallest id) of ties
    else:
        raise InputError(f"--objects {rule}: expected one of {', '.join(OBJECT_RULES)}")
    return [ids == chosen for ids in id_maps]


def _check_size(frame: Path, mask: Path, shape: tuple[int, ...]) -> None:
    width, height = image_size(frame)
    if (height, width) != tuple(shape[:2]):
        raise InputError(
            f"{mask}: annotation of {shape[1]}x{shape[0]} px; expected the size of its frame "
            f"{frame} ({width}x{height})"
        )


# ---- writing one video ---------------------------------------------------------------


def copy_file(src: Path, dst: Path, link: bool) -> None:
    """Copy ``src`` to ``dst`` atomically, or hard-link it when ``link`` (copying where the
    file system cannot link)."""
    with atomic_path(dst) as tmp:
        if link:
            tmp.unlink()
            try:
                os.link(src, tmp)
                return
            except OSError as err:
                if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                log.debug("cannot hard-link %s (%s); copying", src, err.strerror)
        shutil.copyfile(src, tmp)


def source_record(video: SourceVideo, options: PrepareOptions, uses_objects: bool) -> dict:
    """What a prepared video was made from: the source files (``<video>/<name>``, size,
    modification time) and the options that change the output."""

    def stat(path: Path) -> list:
        info = path.stat()  # names, not paths: a moved download is still the same
        return [f"{path.parent.name}/{path.name}", info.st_size, info.st_mtime_ns]

    return {
        "version": RECORD_VERSION,
        "frames": [stat(p) for p in video.frames],
        "masks": [stat(p) if p is not None else None for p in video.masks],
        "flow": options.flow.record(),
        "objects": options.objects if uses_objects else None,
    }


def _write_marker(path: Path, status: str, record: dict) -> None:
    write_json(path, {"status": status, "record": record})


def _output_dirs(split_dir: Path, name: str) -> dict[str, Path]:
    return {kind: split_dir / kind / name for kind in ("frame", "flow", "mask")}


def prepare_video(
    video: SourceVideo,
    split_dir: Path,
    options: PrepareOptions,
    estimator: FlowEstimator,
    uses_objects: bool = False,
) -> str:
    """Write one video into ``split_dir/{frame,flow,mask}/<video>/``.

    Returns ``"kept"`` (already done from the same sources and options), ``"made"`` or
    ``"skipped"`` (fewer than two frames). Raises ``InputError`` when the output folders
    hold files this command did not make.
    """
    if len(video.frames) < MIN_FRAMES:
        log.warning(
            "%s: %d annotated frame(s), no flow possible; skipped", video.name, len(video.frames)
        )
        return "skipped"
    dirs = _output_dirs(split_dir, video.name)
    marker = split_dir / MARKER_DIR / f"{video.name}.json"
    record = source_record(video, options, uses_objects)
    previous = read_json(marker) or None
    if previous is not None and previous.get("record") == record:
        if previous.get("status") == "done":
            return "kept"
    elif previous is not None:
        log.info("%s: sources or options changed; making it again", video.name)
        for folder in dirs.values():
            shutil.rmtree(folder, ignore_errors=True)
    else:
        for folder in dirs.values():
            if folder.is_dir() and any(folder.iterdir()):
                raise InputError(
                    f"{folder}: exists and was not made by dataset.prepare; expected no output "
                    "there (choose another --out or remove the folder)"
                )
    _write_marker(marker, "started", record)
    _write_frames_and_masks(video, dirs, options, uses_objects)
    _write_flows(dirs["frame"], dirs["flow"], estimator, options.progress)
    _write_marker(marker, "done", record)
    return "made"


def _write_frames_and_masks(
    video: SourceVideo, dirs: dict[str, Path], options: PrepareOptions, uses_objects: bool
) -> None:
    annotated = [(f, m) for f, m in zip(video.frames, video.masks, strict=True) if m is not None]
    id_maps = [read_object_ids(m, palette_only=uses_objects) for _, m in annotated]
    for (frame, mask), ids in zip(annotated, id_maps, strict=True):
        _check_size(frame, mask, ids.shape)
    for frame in video.frames:
        frame_out = dirs["frame"] / frame.name
        if not (frame_out.is_file() and frame_out.stat().st_size == frame.stat().st_size):
            copy_file(frame, frame_out, options.link)
    binary = choose_objects(id_maps, options.objects if uses_objects else "union")
    for (frame, _), fg in zip(annotated, binary, strict=True):
        mask_out = dirs["mask"] / f"{frame.stem}.png"
        if not mask_out.is_file():
            write_image(mask_out, fg.astype(np.uint8) * 255)


def _write_flows(frame_dir: Path, flow_dir: Path, estimator: FlowEstimator, progress: bool):
    """Flows t->t+1 (:func:`util.flow.flows_for_frames`, existing ones kept), then the last
    frame's: a copy of the preceding flow."""
    frames = list_frames(frame_dir)
    paths = flows_for_frames(frames, flow_dir, estimator, progress)
    copy_file(paths[-1], flow_path(frames[-1], flow_dir), link=False)


# ---- whole data sets -----------------------------------------------------------------


def prepare_videos(
    videos: Sequence[SourceVideo],
    split_dir: Path,
    options: PrepareOptions,
    estimator: FlowEstimator,
    uses_objects: bool = False,
) -> Summary:
    """Prepare ``videos`` (those named by ``options.videos``, if set) into ``split_dir``."""
    if options.videos is not None:
        chosen = set(options.videos)
        videos = [v for v in videos if v.name in chosen]
    summary = Summary()
    desc = f"{split_dir.parent.name}/{split_dir.name}"
    for video in tqdm(videos, desc=desc, unit="video", disable=not options.progress):
        status = prepare_video(video, split_dir, options, estimator, uses_objects)
        setattr(summary, status, getattr(summary, status) + 1)
        if status != "skipped":
            summary.frames += len(video.frames)
    log.info(
        "%s: %d videos made, %d already done, %d skipped; %d frames",
        split_dir, summary.made, summary.kept, summary.skipped, summary.frames,
    )  # fmt: skip
    return summary


def check_outputs(out: str | os.PathLike, split_dir: Path, videos: Sequence[SourceVideo]) -> None:
    """No symbolic link below ``--out`` on the way to the videos' output folders and
    records (``util.fileio.check_no_links``); a folder of frames linked by ``--link`` is
    the command's own and lies below them."""
    check_no_links(out, [p for v in videos for p in video_outputs(split_dir, v.name)], "--out")


def video_outputs(split_dir: Path, name: str) -> list[Path]:
    """What preparing video ``name`` writes in ``split_dir``: its record and its frame,
    flow and mask folders."""
    return [split_dir / MARKER_DIR / f"{name}.json", *_output_dirs(split_dir, name).values()]


def flow_estimator(options: PrepareOptions) -> FlowEstimator:
    """The flow estimator of ``options``, built once for all videos (RAFT loaded once)."""
    if options.flow.method != "raft" and options.flow.raft_weights is not None:
        raise InputError("--raft_weights goes with --flow_method raft")
    return options.flow.estimator(options.device)
