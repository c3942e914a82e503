"""Where every output of the project goes: the one definition of the output folders.

Under ``{output_dir}/{model_name}/`` (test.py's ``--output_dir`` and ``--model_name``):

- ``{task}/{dataset}/{video}/{frame stem}.png``: masks of a benchmark's videos (the release's
  layout, DESIGN.md §8), and ``{task}/test_config.json``, the record of the last data-set run;
- ``.../{video}/.done.json`` beside a video's masks (benchmark or ``--video``): the settings
  that made them, written once the last one is on disk (hidden: scorers and tools that list
  images pass it by);
- ``{task}_videos/{name}/{frame stem}.png``: masks of ``test.py --video name.mp4`` (apart
  from the datasets' folders, so a clip named like a dataset never mixes with its masks),
  and ``{task}_videos/{name}/test_config.json``, the record of the run that wrote them;
- ``{task}_overlay/{name}.mp4`` (``.gif``, ``{name}/*.jpg``): the overlay of such a video;
- ``work/{name}/``: its decoded frames (``frame/00000.png`` ...), flows (``flow/00000.jpg``
  ...) and their source record ``source.json``, kept for reruns.

Every folder named after a video or a data set gets :func:`safe_name` of that name, so no
name (``..``, ``.``, a name with a path separator or a control character) reaches outside
its parent folder.

visualize.py draws into ``{save_root}/{model_name}/{task}/{dataset}/{video}/``.

A prepared data set (a folder holding ``{frame,flow,mask}/<video>/``) may hold
``annotations.json``, ``{"masks": "sparse"}``, which ``python -m dataset.prepare folder``
writes: its frames need not all have a mask. Without it a set is densely annotated (DAVIS-2016,
the YouTube-VOS-derived clips), and a frame without a mask means a broken copy.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .fileio import read_json, write_json
from .image import MASK_EXT

log = logging.getLogger(__name__)

RECORD_NAME = "test_config.json"
DONE_NAME = ".done.json"
ANNOTATIONS_NAME = "annotations.json"
MASK_COVERAGE = ("dense", "sparse")  # the values of "masks" in ANNOTATIONS_NAME


def safe_name(name: str) -> str:
    """``name`` as a folder name that stays inside its parent and is listed: path
    separators and control characters become ``_``, and so do leading dots (``..``, ``.``,
    hidden folders, which the video listers skip); an empty name becomes ``_``.

    Names that are already safe (spaces and non-ASCII letters included) are unchanged.
    """
    chars = ["_" if c in "/\\" or unicodedata.category(c) == "Cc" else c for c in name]
    for i, c in enumerate(chars):
        if c != ".":
            break
        chars[i] = "_"
    return "".join(chars) or "_"


def output_name(name: str, what: str) -> str:
    """:func:`safe_name` of ``name``, with one log line when it differs (``what``: the kind
    of thing named, e.g. ``"video"``)."""
    safe = safe_name(name)
    if safe != name:
        log.warning("%s name %r is not a safe folder name; its outputs go to %r", what, name, safe)
    return safe


@dataclass(frozen=True)
class OutputLayout:
    """The output folders of one model and task (see the module docstring)."""

    output_dir: Path
    model_name: str
    task: str

    @classmethod
    def of(cls, output_dir: str | os.PathLike, model_name: str, task: str) -> OutputLayout:
        return cls(Path(output_dir), model_name, task)

    @property
    def model_root(self) -> Path:
        return self.output_dir / self.model_name

    @property
    def task_dir(self) -> Path:
        return self.model_root / self.task

    @property
    def config_path(self) -> Path:
        """``{task}/test_config.json``: the record of the data-set run that wrote the masks."""
        return self.task_dir / RECORD_NAME

    def dataset_dir(self, dataset: str) -> Path:
        """Masks of one benchmark: ``{task}/{dataset}``."""
        return self.task_dir / safe_name(dataset)

    def video_dir(self, dataset: str, video: str) -> Path:
        """Masks of one benchmark video: ``{task}/{dataset}/{video}``."""
        return self.dataset_dir(dataset) / safe_name(video)

    def clip_dir(self, name: str) -> Path:
        """Masks of a ``--video`` clip: ``{task}_videos/{name}``."""
        return self.model_root / f"{self.task}_videos" / safe_name(name)

    def clip_record_path(self, name: str) -> Path:
        """``{task}_videos/{name}/test_config.json``: the record of the ``--video`` run that
        wrote that clip's masks."""
        return self.clip_dir(name) / RECORD_NAME

    @property
    def overlay_dir(self) -> Path:
        """Overlays of ``--video`` clips: ``{task}_overlay``."""
        return self.model_root / f"{self.task}_overlay"

    @property
    def work_root(self) -> Path:
        """Frames and flows made for ``--video`` clips: ``work/{name}`` below it."""
        return self.model_root / "work"

    def work_dir(self, name: str) -> Path:
        """The work folder of a ``--video`` clip: ``work/{name}``."""
        return work_dir(self.work_root, name)


def work_dir(work_root: str | os.PathLike, name: str) -> Path:
    """The work folder of a video named ``name`` below ``work_root``."""
    return Path(work_root) / safe_name(name)


def done_path(folder: str | os.PathLike) -> Path:
    """The stamp of a video's finished masks in their ``folder``: ``.done.json``."""
    return Path(folder) / DONE_NAME


def mask_path(folder: str | os.PathLike, stem: str) -> Path:
    """The mask file of frame ``stem`` in a video's mask folder: ``{stem}.png``."""
    return Path(folder) / f"{stem}{MASK_EXT}"


def vis_dir(save_root: str | os.PathLike, model_name: str, task: str, dataset: str) -> Path:
    """visualize.py's pictures of one dataset: ``{save_root}/{model_name}/{task}/{dataset}``."""
    return OutputLayout.of(save_root, model_name, task).dataset_dir(dataset)


@dataclass(frozen=True)
class DrawnVideo:
    """visualize.py's pictures of one video in ``folder`` (a data set's, or ``--video``'s
    ``{task}_overlay``): ``{video}/{frame stem}.jpg``, ``{video}.mp4`` and ``{video}.gif``."""

    folder: Path
    name: str

    @property
    def frames_dir(self) -> Path:
        return self.folder / safe_name(self.name)

    def frame(self, stem: str) -> Path:
        return self.frames_dir / f"{stem}.jpg"

    @property
    def mp4(self) -> Path:
        return self.folder / f"{safe_name(self.name)}.mp4"

    @property
    def gif(self) -> Path:
        return self.folder / f"{safe_name(self.name)}.gif"

    @property
    def paths(self) -> list[Path]:
        """Every path it writes but the frames (for link checks)."""
        return [self.frames_dir, self.mp4, self.gif]


def annotations_path(data_root: str | os.PathLike) -> Path:
    """The marker of a prepared data set's annotation: ``{data_root}/annotations.json``."""
    return Path(data_root) / ANNOTATIONS_NAME


def declare_sparse_masks(data_root: str | os.PathLike) -> Path:
    """Write ``annotations.json`` = ``{"masks": "sparse"}`` in ``data_root`` (atomically):
    the set's frames need not all have a mask. Returns its path."""
    path = annotations_path(data_root)
    write_json(path, {"masks": "sparse"})
    return path


def masks_are_sparse(data_root: str | os.PathLike) -> bool:
    """Whether the data set at ``data_root`` declares sparse masks (``annotations.json``);
    a set without the file is dense.

    Raises:
        InputError: the file exists but is not ``{"masks": "sparse"}`` or
            ``{"masks": "dense"}``.
    """
    path = annotations_path(data_root)
    if not (path.exists() or path.is_symlink()):
        return False
    value = read_json(path).get("masks")
    if value not in MASK_COVERAGE:
        raise InputError(
            f'{path}: expected a JSON object {{"masks": "sparse"}} (masks on some frames) or '
            f'{{"masks": "dense"}} (a mask on every frame)'
        )
    return value == "sparse"
