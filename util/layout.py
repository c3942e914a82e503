"""Where every output of the project goes: the one definition of the output folders.

Under ``{output_dir}/{model_name}/`` (test.py's ``--output_dir`` and ``--model_name``):

- ``{task}/{dataset}/{video}/{frame stem}.png``: masks of a benchmark's videos (the release's
  layout, DESIGN.md §8), and ``{task}/test_config.json``, the settings of the last run;
- ``{task}_videos/{name}/{frame stem}.png``: masks of ``test.py --video name.mp4`` (apart
  from the datasets' folders, so a clip named like a dataset never mixes with its masks);
- ``{task}_overlay/{name}.mp4`` (``.gif``, ``{name}/*.jpg``): the overlay of such a video;
- ``work/{name}/``: its decoded frames, flows and their source record, kept for reruns.

visualize.py draws into ``{save_root}/{model_name}/{task}/{dataset}/{video}/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .image import MASK_EXT


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
        """``test_config.json``: the settings (and provenance) of the run that wrote the masks."""
        return self.task_dir / "test_config.json"

    def dataset_dir(self, dataset: str) -> Path:
        """Masks of one benchmark: ``{task}/{dataset}``."""
        return self.task_dir / dataset

    def video_dir(self, dataset: str, video: str) -> Path:
        """Masks of one benchmark video: ``{task}/{dataset}/{video}``."""
        return self.dataset_dir(dataset) / video

    def clip_dir(self, name: str) -> Path:
        """Masks of a ``--video`` clip: ``{task}_videos/{name}``."""
        return self.model_root / f"{self.task}_videos" / name

    @property
    def overlay_dir(self) -> Path:
        """Overlays of ``--video`` clips: ``{task}_overlay``."""
        return self.model_root / f"{self.task}_overlay"

    def work_dir(self, name: str) -> Path:
        """Frames and flows made for a ``--video`` clip: ``work/{name}``."""
        return self.model_root / "work" / name


def mask_path(folder: str | os.PathLike, stem: str) -> Path:
    """The mask file of frame ``stem`` in a video's mask folder: ``{stem}.png``."""
    return Path(folder) / f"{stem}{MASK_EXT}"


def vis_dir(save_root: str | os.PathLike, model_name: str, task: str, dataset: str) -> Path:
    """visualize.py's pictures of one dataset: ``{save_root}/{model_name}/{task}/{dataset}``."""
    return OutputLayout.of(save_root, model_name, task).dataset_dir(dataset)
