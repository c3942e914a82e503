"""Test videos as streams of clips (DESIGN.md §8).

Notation: T frames per clip (``test_length``, the last clip holds the remainder), H, W the
test size, h, w a frame's own size.

A video is paired first (file listing only, no image is opened): each frame ``<stem>``
takes the flow image of the same stem. A frame without one (usually the last: flow t->t+1
exists for all but the last frame) reuses the preceding frame's flow. With ``drop_tail`` the
last frame of the video is left out whether or not it has a flow of its own (N frames and N
flows give N-1 frames), as the release does for FBMS-59, SegTrack-V2, LongVideos, ViSal, MCL
and Easy-35 (DESIGN.md §8). Then ``VideoClips`` reads one clip at a time, so that a
``DataLoader`` with workers streams a video while the network runs and no video is ever held
whole. A flow image of another size than its frame is resized like the frames, with a
warning naming the video (once per video).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from util.errors import InputError
from util.image import as_pil_rgb, image_size, list_images, read_rgb, to_network_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoSpec:
    """One video's folders and the extensions its images may have."""

    name: str
    frame_dir: Path
    flow_dir: Path
    frame_exts: tuple[str, ...]
    flow_exts: tuple[str, ...]


@dataclass(frozen=True)
class PairedVideo:
    """A video ready to read: ``flows[i]`` is the flow image that goes with ``frames[i]``."""

    name: str
    frames: tuple[Path, ...]
    flows: tuple[Path, ...]

    @property
    def stems(self) -> list[str]:
        """Frame names without extension: the names of the output masks."""
        return [p.stem for p in self.frames]


def pair_video(spec: VideoSpec, drop_tail: bool) -> PairedVideo:
    """Pair frames and flows by name; see the module docstring for the rules.

    Raises ``InputError`` for an empty video and for counts that differ by more than one
    frame without flow (naming the video's folder).
    """
    frames = list_images(spec.frame_dir, spec.frame_exts)
    if not frames:
        raise InputError(
            f"{spec.frame_dir}: empty video {spec.name}; expected frame images ({'/'.join(spec.frame_exts)})"
        )
    flow_files = list_images(spec.flow_dir, spec.flow_exts)
    flows = {p.stem: p for p in flow_files}
    stems = {p.stem for p in frames}
    orphans = [p.name for p in flow_files if p.stem not in stems]
    missing = [p for p in frames if p.stem not in flows]
    if orphans or len(missing) > 1 or frames[0] in missing:
        raise InputError(
            f"{spec.flow_dir}: video {spec.name} has {len(frames)} frames and {len(flow_files)} "
            f"flows{_mismatch(orphans, missing)}; expected a flow named as each frame "
            "(one frame after the first may lack one)"
        )
    if drop_tail:
        frames = frames[:-1]
    paired_flows: list[Path] = []
    for frame in frames:
        paired_flows.append(flows[frame.stem] if frame.stem in flows else paired_flows[-1])
    return PairedVideo(spec.name, tuple(frames), tuple(paired_flows))


def _mismatch(orphans: list[str], missing: list[Path]) -> str:
    parts = []
    if orphans:
        parts.append(f"flow {orphans[0]} matches no frame")
    if missing:
        parts.append(f"frame {missing[0].name} has no flow")
    return " (" + "; ".join(parts) + ")" if parts else ""


def warn_flow_size(
    video: str, flow: Path, flow_size: tuple[int, int], frame_size: tuple[int, int]
) -> None:
    """The warning for a flow image whose size differs from its frame's (once per video)."""
    log.warning(
        "video %s: flow image %s is %dx%d but its frame is %dx%d; the flow images are "
        "resized to fit the frames",
        video, flow, *flow_size, *frame_size,
    )  # fmt: skip


def clip_bounds(num_frames: int, length: int) -> list[tuple[int, int]]:
    """Consecutive non-overlapping clips ``[start, stop)`` of ``length``; the last holds the
    remainder (a video of at most ``length`` frames is one clip)."""
    return [(s, min(s + length, num_frames)) for s in range(0, num_frames, length)]


@dataclass(frozen=True)
class Clip:
    """One clip of a video, ready for the network.

    imgs, flows: ``[T, 3, H, W]`` normalised; names: frame stems; sizes: each frame's own
    (h, w); index: the clip's place in its video (0, 1, ...).
    """

    video: str
    index: int
    names: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    imgs: Tensor
    flows: Tensor

    def pin_memory(self) -> Clip:
        """Page-locked copy for faster host-to-GPU copies (called by the DataLoader)."""
        return replace(self, imgs=self.imgs.pin_memory(), flows=self.flows.pin_memory())


class VideoClips(Dataset):
    """The clips of one paired video, read on demand (item i = clip i)."""

    def __init__(self, video: PairedVideo, length: int, size: tuple[int, int]):
        self.video = video
        self.size = size
        self.bounds = clip_bounds(len(video.frames), length)
        self.size_warned = False
        if video.frames:  # the usual case, flows all of one other size: warned here, once
            frame_size, flow_size = image_size(video.frames[0]), image_size(video.flows[0])
            self._check_flow_size(video.flows[0], flow_size, frame_size)

    def _check_flow_size(
        self, flow: Path, flow_size: tuple[int, int], frame_size: tuple[int, int]
    ) -> None:
        """Warn once per video (per reading process when only later flows differ)."""
        if flow_size != frame_size and not self.size_warned:
            self.size_warned = True
            warn_flow_size(self.video.name, flow, flow_size, frame_size)

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, index: int) -> Clip:
        start, stop = self.bounds[index]
        frames = [read_rgb(p) for p in self.video.frames[start:stop]]
        flows = [read_rgb(p) for p in self.video.flows[start:stop]]
        for path, flow, frame in zip(self.video.flows[start:stop], flows, frames, strict=True):
            self._check_flow_size(path, flow.size, frame.size)
        return make_clip(
            self.video.name,
            index,
            [p.stem for p in self.video.frames[start:stop]],
            frames,
            flows,
            self.size,
        )


def make_clip(
    video: str,
    index: int,
    names: Sequence[str],
    frames: Sequence[Image.Image | np.ndarray],
    flows: Sequence[Image.Image | np.ndarray],
    size: tuple[int, int],
) -> Clip:
    """A clip from its frames and flow images (PIL RGB images or RGB ``[h, w, 3]`` uint8
    arrays), resized to ``size`` = (H, W) and normalised as DESIGN.md §8 says.

    Files and arrays go through this one function, so the masks of a video read from disk
    and of the same images held in memory are the same.
    """
    frames = [as_pil_rgb(img, f"{video}: frame {n}") for n, img in zip(names, frames, strict=True)]
    flows = [
        as_pil_rgb(img, f"{video}: flow image {n}") for n, img in zip(names, flows, strict=True)
    ]
    return Clip(
        video=video,
        index=index,
        names=tuple(names),
        sizes=tuple((img.height, img.width) for img in frames),
        imgs=torch.stack([to_network_input(img, size) for img in frames]),
        flows=torch.stack([to_network_input(img, size) for img in flows]),
    )
