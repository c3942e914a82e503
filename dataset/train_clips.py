"""Training clips of DESIGN.md §7: video listing, the clip sampler and the clip dataset.

A dataset root holds ``{frame,flow,mask}/<video>/``. Frames, flow images and masks are
paired by file stem: frame ``<stem>.jpg`` takes flow ``<stem>.*`` and mask ``<stem>.png``;
one frame after the first may lack a flow of its own (usually the last, since flow tools
give one fewer flow than frames) and takes the preceding frame's flow, as test.py does.

A data set is densely annotated (every frame has a mask, as in DAVIS-2016 and the
YouTube-VOS-derived clips) unless its root declares sparse masks with ``annotations.json``
(``util.layout.masks_are_sparse``), which ``dataset.prepare folder`` writes. In a dense set
a frame without a mask is a broken or partly copied set and stops the run naming the mask;
in a sparse one the clips are drawn among the annotated frames, each with its paired flow,
and validation scores the annotated frames.

Data randomness is a pure function of ``(seed, epoch, video index)``: every item draws from
its own generator, so the batches do not depend on the number of DataLoader workers and a
resumed run sees the same clips as an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from util.errors import InputError
from util.image import IMAGE_EXTS, image_size, list_subfolders
from util.layout import annotations_path, mask_path, masks_are_sparse

from .test_videos import VideoSpec, warn_flow_size
from .test_videos import pair_video as pair_frames_and_flows
from .transforms import (
    CROP_BORDER,
    augment_clip,
    load_rgb,
    load_train_mask,
    sample_aug_params,
)

log = logging.getLogger(__name__)

CLIP_LENGTH = 3  # the §7 sampler draws exactly three indices
MIN_TRAIN_SIDE = CROP_BORDER + 1  # the §7 crop removes up to CROP_BORDER px per side


@dataclass(frozen=True)
class Video:
    """One video's files, in sorted frame order (all lists have the same length; ``masks``
    holds ``None`` for a frame without annotation, and is empty when masks are not read)."""

    name: str
    frames: tuple[Path, ...]
    flows: tuple[Path, ...]
    masks: tuple[Path | None, ...]

    def __len__(self) -> int:
        return len(self.frames)

    def annotated(self) -> Video:
        """The frames that have a mask, each with the flow paired with it in the whole video
        (its own; for the one frame without a flow, usually the last, the preceding frame's,
        as at test time, DESIGN.md §8), or the whole video when every frame has a mask."""
        keep = [i for i, mask in enumerate(self.masks) if mask is not None]
        if len(keep) == len(self.frames):
            return self
        return Video(
            self.name,
            tuple(self.frames[i] for i in keep),
            tuple(self.flows[i] for i in keep),
            tuple(self.masks[i] for i in keep),
        )


def pair_video(root: Path, name: str, need_masks: bool = True, sparse: bool | None = None) -> Video:
    """Pair the frames, flows and masks of ``root/{frame,flow,mask}/<name>/`` by stem.

    Frames and flows follow test.py's rules (``dataset.test_videos.pair_video``, no drop
    tail); each frame then takes the mask ``<stem>.png``. In a sparse set (``sparse``; by
    default what ``root`` declares, :func:`util.layout.masks_are_sparse`) a frame without a
    mask gets ``None`` (said in the log); in a dense set it is an error.

    Raises:
        InputError: a folder is missing, the flows do not fit the frames, no frame of the
            video has a mask, or a frame of a dense set has none (naming its mask file).
    """
    spec = VideoSpec(name, root / "frame" / name, root / "flow" / name, IMAGE_EXTS, IMAGE_EXTS)
    paired = pair_frames_and_flows(spec, drop_tail=False)
    if not need_masks:
        return Video(name, paired.frames, paired.flows, ())
    mask_dir = root / "mask" / name
    if not mask_dir.is_dir():
        raise InputError(f"folder not found: {mask_dir}")
    mask_names = set(os.listdir(mask_dir))
    wanted = [mask_path(mask_dir, frame.stem) for frame in paired.frames]
    masks = tuple(path if path.name in mask_names else None for path in wanted)
    missing = [frame for frame, mask in zip(paired.frames, masks, strict=True) if mask is None]
    if len(missing) == len(masks):
        raise InputError(
            f"{mask_dir}: no mask for any frame of video {name}; expected <frame stem>.png "
            f"(first frame: {paired.frames[0].name})"
        )
    if not missing:
        return Video(name, paired.frames, paired.flows, masks)
    first = mask_path(mask_dir, missing[0].stem)
    if not (masks_are_sparse(root) if sparse is None else sparse):
        raise InputError(
            f"{first}: mask not found; expected a mask for every frame of a densely annotated "
            "set (python -m dataset.prepare folder makes sets with masks on some frames; run "
            "it again on a set it made before it declared them, it keeps finished videos; or "
            f'declare them with {annotations_path(root)} holding {{"masks": "sparse"}})'
        )
    log.info(
        "video %s: %d of %d frames have a mask (the first without: %s); sparse "
        "annotation: training and validation use the annotated frames",
        name, len(masks) - len(missing), len(masks), first,
    )  # fmt: skip
    return Video(name, paired.frames, paired.flows, masks)


def list_videos(
    root: Path, min_frames: int, need_masks: bool = True, annotated_only: bool = False
) -> list[Video]:
    """All videos of ``root/frame/`` in sorted order, paired by stem; with
    ``annotated_only``, each video's annotated frames only (:meth:`Video.annotated`).

    Videos with fewer than ``min_frames`` frames are skipped with a log note.
    """
    frame_root = Path(root) / "frame"
    if not frame_root.is_dir():
        raise InputError(
            f"no frame folder in the dataset root: {frame_root}; expected "
            "<root>/<dataset>/{frame,flow,mask}/<video>/, which python -m dataset.prepare makes "
            "from the original downloads (python -m dataset.prepare --help)"
        )
    videos = []
    sparse = masks_are_sparse(root) if need_masks else False  # read once, not per video
    for name in list_subfolders(frame_root):
        video = pair_video(Path(root), name, need_masks, sparse)
        if annotated_only:
            video = video.annotated()
        if len(video) < min_frames:
            log.info("skipping video %s: %d frames, fewer than %d", name, len(video), min_frames)
            continue
        videos.append(video)
    if not videos:
        raise InputError(f"no video with at least {min_frames} frames under {frame_root}")
    return videos


def check_files(videos: Sequence[Video], min_side: int = 1) -> int:
    """Open every frame, flow image and mask of ``videos`` as an image, header only.

    Run before training so that a file that is not an image is reported at once, not at
    the first validation hours later (a cut-off file opens; its decoding error names it
    when it is read). A flow image of another size than its frame is warned about once
    per video. Returns the number of files checked.

    Raises:
        InputError: naming the first file that is not an image, or a frame with a side
            shorter than ``min_side`` pixels.
    """
    count = 0
    for video in videos:
        warned = False
        for i, frame in enumerate(video.frames):
            frame_size = image_size(frame)
            if min(frame_size) < min_side:
                raise InputError(
                    f"{frame}: a frame of {frame_size[0]}x{frame_size[1]} px; expected sides "
                    f"of at least {min_side} px"
                )
            flow_size = image_size(video.flows[i])
            mask = video.masks[i] if video.masks else None
            if mask is not None:
                image_size(mask)
            if flow_size != frame_size and not warned:
                warned = True
                warn_flow_size(video.name, video.flows[i], flow_size, frame_size)
            count += 2 + (mask is not None)
    return count


def sample_clip_indices(rng: np.random.Generator, length: int) -> list[int]:
    """The §7 sampler: three indices into a sorted frame list of ``length`` >= 3 frames.

    J = min(L, 3); s ~ U[0, L-J]; i1 = min(s + U[0, J] + 1, L-J, L-1);
    i2 = min(i1 + U[0, J] + 1, L - J//2, L-1) (U inclusive); reversed with p 0.5.
    """
    if length < CLIP_LENGTH:
        raise ValueError(f"a clip needs {CLIP_LENGTH} frames; the video has {length}")
    jump = min(length, CLIP_LENGTH)
    start = int(rng.integers(0, length - jump + 1))
    i1 = min(start + int(rng.integers(0, jump + 1)) + 1, length - jump, length - 1)
    i2 = min(i1 + int(rng.integers(0, jump + 1)) + 1, length - jump // 2, length - 1)
    indices = [start, i1, i2]
    if rng.random() < 0.5:
        indices.reverse()
    return indices


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one dataset item, a pure function of its arguments."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


class TrainClips(Dataset):
    """One item per video: a random augmented clip of 3 frames (DESIGN.md §7), drawn among
    the video's annotated frames (all of them in a densely annotated set).

    Items are indexed by ``(epoch, video index)`` (a plain ``int`` means epoch 0) and
    drawn from :func:`item_rng` with this dataset's ``seed`` (base seed + rank).

    Returns dicts with ``imgs`` and ``flows`` ``[3, 3, S, S]`` (normalised) and ``masks``
    ``[3, 1, S, S]`` in [0, 1], S = ``imsize``.
    """

    def __init__(self, root: str | os.PathLike, imsize: int, seed: int):
        self.videos = list_videos(Path(root), CLIP_LENGTH, annotated_only=True)
        self.imsize = imsize
        self.seed = seed

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = item_rng(self.seed, epoch, index)
        video = self.videos[index]
        picks = sample_clip_indices(rng, len(video))
        frames = [load_rgb(video.frames[i]) for i in picks]
        flows = [load_rgb(video.flows[i]) for i in picks]
        masks = [load_train_mask(video.masks[i]) for i in picks]
        params = sample_aug_params(rng, frames[0].size)
        imgs, flow_t, mask_t = augment_clip(frames, flows, masks, params, self.imsize)
        return {"imgs": imgs, "flows": flow_t, "masks": mask_t}
