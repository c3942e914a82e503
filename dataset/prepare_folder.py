"""Your own annotated videos -> the training and test layout (``dataset.prepare folder``).

The source folder holds one entry per video under ``frames/`` and its masks under
``masks/``::

    DIR/frames/<video>/<frame>.jpg|png|...   a folder of frames, named in time order, or
    DIR/frames/<video>.mp4                   a video file (any OpenCV reads): its frames
                                             become 00000.png, 00001.png, ... (lossless)
    DIR/masks/<video>/<frame stem>.png       masks: 0/255 or 0/1 grey, or palette PNGs
                                             (every object is foreground)

Masks may exist for only some frames (sparse annotation). Every frame is kept and the flows
join consecutive frames; training draws its clips among the annotated frames, and validation
and scoring use those frames only. ``ROOT/NAME/{train,val}/{frame,flow,mask}/<video>/`` is
written as the other preparers write theirs (resumable, atomic writes; see
:mod:`dataset.prepare`); a video goes wholly to ``train`` or wholly to ``val``. Each split
holds ``annotations.json`` declaring its masks sparse (``util.layout``): the training and
validation readers take a set without it as densely annotated, where a missing mask is an
error. Every input is checked before anything is written.

Decoded frames of video files are kept in ``ROOT/NAME/.decoded/<video>/`` so that a rerun
does not decode again.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from util.errors import InputError
from util.fileio import check_no_links, read_json, write_json
from util.flow import list_frames
from util.image import IMAGE_EXTS, MASK_EXT, image_size, list_images, sort_frames
from util.layout import annotations_path, declare_sparse_masks
from util.video import count_frames, extract_frames, frame_path, probe_video

from .prepared import (
    MARKER_DIR,
    MIN_FRAMES,
    PrepareOptions,
    SourceVideo,
    Summary,
    flow_estimator,
    prepare_videos,
    video_outputs,
)

log = logging.getLogger(__name__)

FOLDER_LAYOUT = (
    "frames/<video>/<frame>.jpg|png (a folder of frames) or frames/<video>.mp4 (a video "
    "file), and masks/<video>/<frame stem>.png"
)
DEFAULT_VAL_FRACTION = 0.2
SPLIT_SEED = 0  # the validation pick is the same on every run
DECODED_DIR = ".decoded"
DECODED_SUFFIX = ".png"  # lossless: the frames as OpenCV decodes them
SPLITS = ("train", "val")


@dataclass(frozen=True)
class FolderEntry:
    """One video of the source folder: a frame folder or a video file, and its mask folder."""

    name: str
    source: Path
    mask_dir: Path

    @property
    def is_file(self) -> bool:
        return self.source.is_file()


# ---- the source folder ---------------------------------------------------------------


def folder_entries(src: Path) -> list[FolderEntry]:
    """The videos of ``src/frames/``, sorted by name, each with ``src/masks/<video>/``.

    Raises ``InputError`` naming the video for masks without frames, frames without any
    mask, or an image file where a video's folder or file was expected.
    """
    frames_root, masks_root = src / "frames", src / "masks"
    if not src.is_dir():
        raise InputError(f"--src {src}: folder not found; expected {FOLDER_LAYOUT}")
    for folder in (frames_root, masks_root):
        if not folder.is_dir():
            raise InputError(f"{folder}: folder not found; expected {FOLDER_LAYOUT}")
    entries = []
    for path in sort_frames(p for p in frames_root.iterdir() if not p.name.startswith(".")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTS:
            raise InputError(
                f"{path}: an image directly in frames/; expected one folder of frames or one "
                f"video file per video ({FOLDER_LAYOUT})"
            )
        name = path.stem if path.is_file() else path.name
        entries.append(FolderEntry(name, path, masks_root / name))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"{frames_root}: two entries for video {dup}; expected one per video")
    for name in sorted(set(_mask_folders(masks_root)) - set(names)):
        raise InputError(
            f"video {name}: masks in {masks_root / name} but no frames/{name}/ folder nor "
            f"frames/{name}.<video file>; expected {FOLDER_LAYOUT}"
        )
    for entry in entries:
        if not (entry.mask_dir.is_dir() and list_images(entry.mask_dir, (MASK_EXT,))):
            raise InputError(
                f"video {entry.name}: frames but no mask in {entry.mask_dir}; expected at least "
                f"one mask per video ({FOLDER_LAYOUT})"
            )
    if not entries:
        raise InputError(f"{frames_root}: no videos; expected {FOLDER_LAYOUT}")
    return entries


def _mask_folders(masks_root: Path) -> list[str]:
    return [p.name for p in masks_root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def check_entry(entry: FolderEntry, out: Path) -> list[Path] | None:
    """Check one video of the source folder without writing anything: every mask has the
    size of the video's frames (its first frame's, or the video file's), is named after a
    frame, and the video has two frames at least (:func:`source_video`). Returns its frames
    when they are on disk already (a folder of frames, or a video file an earlier run decoded
    into ``out``), else ``None``.

    A video file's frames are counted by reading them (containers may state an estimate of
    their count), unless a mask's name cannot be a decoded frame's, which is refused without
    reading the video. ``InputError`` names the video and the mask otherwise.
    """
    masks = list_images(entry.mask_dir, (MASK_EXT,))
    if entry.is_file:
        info = probe_video(entry.source)
        size = (info.width, info.height)
        frames = decoded_frames(entry, out)
        if frames is None:
            named = all(_decoded_frame_name(mask.stem) for mask in masks)
            count = count_frames(entry.source) if named else max(info.frames, MIN_FRAMES)
            names = [frame_path(entry.source.parent, i, DECODED_SUFFIX) for i in range(count)]
    else:
        frames = list_frames(entry.source)
        size = image_size(frames[0])
    for mask in masks:
        mask_size = image_size(mask)
        if mask_size != size:
            raise InputError(
                f"video {entry.name}: mask {mask} is {mask_size[0]}x{mask_size[1]} px; expected "
                f"the size of the video's frames ({size[0]}x{size[1]})"
            )
    source_video(entry, frames if frames is not None else names)
    return frames


def _decoded_frame_name(stem: str) -> bool:
    """Whether ``stem`` is the name of a decoded video's frame (``util.video.frame_path``)."""
    return stem.isascii() and stem.isdigit() and frame_path("", int(stem), "").name == stem


def _decode_record(entry: FolderEntry, out: Path) -> tuple[Path, Path, dict]:
    """Where a video file's frames are decoded, where the decode is recorded, and what the
    record names of the file (name, size and modification time)."""
    info = entry.source.stat()
    stamp = {"file": entry.source.name, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    return out / DECODED_DIR / entry.name, out / DECODED_DIR / f"{entry.name}.json", stamp


def decoded_frames(entry: FolderEntry, out: Path) -> list[Path] | None:
    """The frames an earlier run decoded from this very file into ``out``, or ``None``."""
    folder, record_path, stamp = _decode_record(entry, out)
    record = read_json(record_path)
    if record.get("source") == stamp and record.get("frames"):
        frames = list_images(folder) if folder.is_dir() else []
        if len(frames) == record["frames"]:
            return frames
    return None


def decode_video(entry: FolderEntry, out: Path, progress: bool) -> list[Path]:
    """The frames of a video file, decoded once into ``out/.decoded/<video>/`` as lossless
    PNGs named 00000.png, 00001.png, ... (as ``test.py --video`` names them).

    ``out/.decoded/<video>.json`` records the file's size and modification time: a rerun
    with the same file reuses the frames (:func:`decoded_frames`); another file decodes anew.
    """
    frames = decoded_frames(entry, out)
    if frames is not None:
        return frames
    folder, record_path, stamp = _decode_record(entry, out)
    shutil.rmtree(folder, ignore_errors=True)
    frames = extract_frames(entry.source, folder, progress, suffix=DECODED_SUFFIX)
    write_json(record_path, {"source": stamp, "frames": len(frames)})
    return frames


def source_video(entry: FolderEntry, frames: Sequence[Path]) -> SourceVideo:
    """Pair ``frames`` with the masks of ``entry`` by stem; frames without a mask get
    ``None``. ``InputError`` names a mask that has no frame and a video of one frame."""
    if len(frames) < MIN_FRAMES:
        raise InputError(
            f"video {entry.name}: {len(frames)} frame; expected at least {MIN_FRAMES} (a flow "
            "joins two frames)"
        )
    masks = {m.stem: m for m in list_images(entry.mask_dir, (MASK_EXT,))}
    stems = {f.stem for f in frames}
    orphans = sorted(set(masks) - stems)
    if orphans:
        raise InputError(
            f"video {entry.name}: mask {masks[orphans[0]]} has no frame {orphans[0]} in "
            f"{entry.source}; expected masks named after their frames ({FOLDER_LAYOUT})"
        )
    return SourceVideo(entry.name, tuple(frames), tuple(masks.get(f.stem) for f in frames))


# ---- which videos validate -----------------------------------------------------------


def choose_val_videos(
    names: Sequence[str],
    val_videos: Sequence[str] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> list[str]:
    """The validation videos: ``val_videos`` as given (each must be one of ``names``), or
    ``round(val_fraction * n)`` of them (at least one, at most n - 1) drawn with ``seed``
    from the sorted names. Returned sorted."""
    names = sorted(names)
    if len(names) < 2:
        raise InputError(
            f"{len(names)} video; expected at least two, one for training and one for validation"
        )
    if val_videos:
        unknown = sorted(set(val_videos) - set(names))
        if unknown:
            raise InputError(
                f"--val_videos {unknown[0]}: no such video (videos: {', '.join(names)})"
            )
        if set(val_videos) == set(names):
            raise InputError("--val_videos names every video; expected at least one for training")
        return sorted(set(val_videos))
    if not 0 < val_fraction < 1:
        raise InputError(f"--val_fraction {val_fraction}: expected a number between 0 and 1")
    count = min(max(1, round(val_fraction * len(names))), len(names) - 1)
    picks = np.random.default_rng(seed).choice(len(names), size=count, replace=False)
    return sorted(names[i] for i in picks)


# ---- the whole folder ----------------------------------------------------------------


def prepare_folder(
    src: str | os.PathLike,
    out: str | os.PathLike,
    name: str,
    options: PrepareOptions = PrepareOptions(),  # noqa: B008 (frozen)
    val_videos: Sequence[str] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> dict[str, Summary]:
    """``src`` (see ``FOLDER_LAYOUT``) -> ``out/<name>/{train,val}/{frame,flow,mask}/``,
    each split declaring sparse masks (``util.layout.declare_sparse_masks``).

    Everything is checked before anything is written: the layout, every video's masks
    (:func:`check_entry`), the validation pick, and that no symbolic link lies below ``out``
    where the command writes. A video that a previous run put in the other split is moved.
    Returns each split's summary.
    """
    src, base = Path(src), Path(out) / name
    if not name or name != Path(name).name or name.startswith("."):
        raise InputError(f"--name {name!r}: expected a plain folder name")
    entries = folder_entries(src)
    if options.videos is not None:
        unknown = sorted(set(options.videos) - {e.name for e in entries})
        if unknown:
            raise InputError(f"--videos {unknown[0]}: no such video in {src / 'frames'}")
    known = {entry.name: check_entry(entry, base) for entry in entries}
    val = set(choose_val_videos([e.name for e in entries], val_videos, val_fraction))
    chosen = [e for e in entries if options.videos is None or e.name in options.videos]
    _check_outputs(out, base, chosen)
    estimator = flow_estimator(options)
    log.info("validation videos: %s", ", ".join(sorted(val)))
    videos: dict[str, list[SourceVideo]] = {split: [] for split in SPLITS}
    for entry in chosen:  # every video file decoded before any split is written
        frames = known[entry.name] or decode_video(entry, base, options.progress)
        split = "val" if entry.name in val else "train"
        videos[split].append(source_video(entry, frames))
    for split in SPLITS:
        for video in videos[split]:
            _leave_other_split(base, split, video.name)
        if videos[split] or (base / split).is_dir():  # a split made by an earlier run too
            declare_sparse_masks(base / split)
    return {
        split: prepare_videos(videos[split], base / split, options, estimator) for split in SPLITS
    }


def _check_outputs(out: str | os.PathLike, base: Path, entries: Sequence[FolderEntry]) -> None:
    """No symbolic link below ``--out`` where the command writes or removes: each video's
    folders and record in both splits (a video may move), its decoded frames, and the
    splits' ``annotations.json`` (``util.fileio.check_no_links``)."""
    outputs = [annotations_path(base / split) for split in SPLITS]
    for entry in entries:
        outputs += [base / DECODED_DIR / entry.name, base / DECODED_DIR / f"{entry.name}.json"]
        outputs += [p for split in SPLITS for p in video_outputs(base / split, entry.name)]
    check_no_links(out, outputs, "--out")


def _leave_other_split(base: Path, split: str, name: str) -> None:
    """Remove video ``name`` from the split it is not in now, where an earlier run with
    another validation pick made it (never what this command did not make)."""
    other = base / ("train" if split == "val" else "val")
    marker = other / MARKER_DIR / f"{name}.json"
    if not marker.is_file():
        return
    log.info("%s: now a %s video; removing it from %s", name, split, other)
    for kind in ("frame", "flow", "mask"):
        shutil.rmtree(other / kind / name, ignore_errors=True)
    marker.unlink()
