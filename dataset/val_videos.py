"""Validation clips of DESIGN.md §7: consecutive, non-overlapping clips of 3 frames.

Frames and flow images are resized as at test time (§8: PIL bilinear, antialiased, aspect
ratio ignored); masks are resized with torch's ``nearest`` on a tensor, as the release does
(DESIGN.md §7: source index floor(dst * in / out), not PIL's pixel-centre nearest), and
binarised at > 0.5. One item is one clip. In a sparsely annotated video the clips still run
over every frame (as test.py does) and only the frames with a mask are scored
(:meth:`ValClips.scored`, the one rule of which frames count); a validation set left with no
frame to score is refused (:meth:`ValClips.check_scored`), so that no run reports a score of
nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from util.errors import InputError
from util.image import read_mask, read_rgb, to_network_input

from .train_clips import Video, list_videos

VAL_CLIP_LENGTH = 3


@dataclass(frozen=True)
class ValClip:
    """Frames ``start .. start + length - 1`` of ``videos[video]``."""

    video: int
    start: int
    length: int


def clip_starts(num_frames: int, clip_length: int) -> list[tuple[int, int]]:
    """``(start, length)`` of consecutive clips covering ``num_frames``; the last may be short."""
    return [
        (start, min(clip_length, num_frames - start)) for start in range(0, num_frames, clip_length)
    ]


def load_val_image(path: Path, imsize: int) -> Tensor:
    """Frame or flow image -> normalised ``[3, S, S]``, resized as at test time."""
    return to_network_input(read_rgb(path), (imsize, imsize))


def load_val_mask(path: Path, imsize: int) -> Tensor:
    """Mask -> ``[1, S, S]`` of 0/1: grey in [0, 1], resized with torch ``nearest`` (it
    floors: source index floor(dst * in / out)), > 0.5."""
    mask = torch.from_numpy(read_mask(path)).float().div(255)[None]
    mask = F.interpolate(mask[None], size=(imsize, imsize), mode="nearest")[0]
    return (mask > 0.5).float()


class ValClips(Dataset):
    """Validation clips of every video under ``root`` (sorted), frame-order preserved.

    Args:
        root: a ``{frame,flow,mask}/<video>/`` dataset folder.
        imsize: side length frames, flows and masks are resized to.
        first_clip_only: keep only each video's first clip (for the release's frame-0 rule).
        max_videos: keep the first N videos (0: all).
        max_frames: keep the first N frames of each video (0: all).

    Items: dicts with ``imgs``, ``flows`` ``[t, 3, S, S]``, ``masks`` ``[t, 1, S, S]`` (0/1;
    zeros for a frame without a mask), ``scored`` ``[t]`` (bool: the frame has a mask),
    ``video`` (index into :attr:`videos`) and ``start`` (frame index), t <= 3.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        imsize: int,
        first_clip_only: bool = False,
        max_videos: int = 0,
        max_frames: int = 0,
    ):
        self.root = Path(root)
        videos = list_videos(self.root, min_frames=1)
        self.videos: list[Video] = videos[:max_videos] if max_videos else videos
        self.imsize = imsize
        self.clips: list[ValClip] = []
        for v, video in enumerate(self.videos):
            frames = min(len(video), max_frames) if max_frames else len(video)
            starts = clip_starts(frames, VAL_CLIP_LENGTH)
            self.clips += [ValClip(v, s, n) for s, n in starts[: 1 if first_clip_only else None]]

    def __len__(self) -> int:
        return len(self.clips)

    def scored(self, index: int, first_frame_only: bool = False) -> list[bool]:
        """Which frames of clip ``index`` validation scores: those with a mask; with
        ``first_frame_only`` (the release's rule, DESIGN.md §7) only each video's frame 0."""
        clip = self.clips[index]
        masks = self.videos[clip.video].masks
        return [
            masks[i] is not None and (i == 0 or not first_frame_only)
            for i in range(clip.start, clip.start + clip.length)
        ]

    def scored_frames(self, first_frame_only: bool = False) -> int:
        """How many frames of all clips validation scores (:meth:`scored`)."""
        return sum(sum(self.scored(i, first_frame_only)) for i in range(len(self.clips)))

    def check_scored(self, first_frame_only: bool = False) -> None:
        """Raise ``InputError`` naming the data set when its clips leave validation no frame
        to score (a mean over nothing would read as a real score)."""
        if self.scored_frames(first_frame_only):
            return
        if first_frame_only:
            what = f"none of its {len(self.videos)} videos has a mask on frame 0, the one frame "
            what += "scored by the first-frame-only rule"
        else:
            frames = sum(clip.length for clip in self.clips)
            what = (
                f"none of the {frames} frames of its clips ({len(self.videos)} videos) has a mask"
            )
        raise InputError(
            f"{self.root}: validation has no frame to score: {what}; expected a mask "
            "(mask/<video>/<frame stem>.png) on a frame it scores"
        )

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        clip = self.clips[index]
        video = self.videos[clip.video]
        picks = range(clip.start, clip.start + clip.length)
        size = self.imsize
        return {
            "imgs": torch.stack([load_val_image(video.frames[i], size) for i in picks]),
            "flows": torch.stack([load_val_image(video.flows[i], size) for i in picks]),
            "masks": torch.stack([self._mask(video.masks[i]) for i in picks]),
            "scored": torch.tensor(self.scored(index)),
            "video": clip.video,
            "start": clip.start,
        }

    def _mask(self, path: Path | None) -> Tensor:
        if path is None:
            return torch.zeros(1, self.imsize, self.imsize)
        return load_val_mask(path, self.imsize)
