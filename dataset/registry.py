"""The benchmarks of the paper and where their test videos live (DESIGN.md §8).

One table, ``BENCHMARKS``: dataset name -> tasks, frame / flow / mask folders relative to
``<root>/<name>/``, file extensions and whether the last frame of every video is left out
("drop tail"). Any other folder laid out as ``<dir>/{frame,flow}/<video>/`` can
be given by path; its folder name then names the dataset, or for a split folder
(``ROOT/NAME/val``, as ``dataset.prepare`` writes them) the name of the folder above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from util.errors import InputError

if TYPE_CHECKING:
    from .test_videos import VideoSpec

# The readers (util.image, .test_videos) import on use: test.py's command line reads the
# names here without loading torch.

TASKS = ("UVOS", "VSOD")
SPLIT_FOLDERS = ("train", "val", "test")  # named after the data set above them


@dataclass(frozen=True)
class Layout:
    """Where one benchmark keeps its test videos, relative to ``<root>/<name>/``."""

    tasks: tuple[str, ...]
    frames: str
    flows: str
    masks: str
    frame_ext: str
    flow_ext: str
    drop_tail: bool


def _split(split: str, tasks: tuple[str, ...], frame_ext: str, flow_ext: str, drop: bool) -> Layout:
    return Layout(
        tasks, f"{split}/frame", f"{split}/flow", f"{split}/mask", frame_ext, flow_ext, drop
    )


_UVOS, _VSOD, _BOTH = ("UVOS",), ("VSOD",), ("UVOS", "VSOD")

# DESIGN.md §8. The release drops the last frame for FBMS-59, SegTrack-V2, LongVideos,
# ViSal, MCL and Easy-35 and expects one flow per frame for DAVIS16 and YouTube-Objects.
# DAVSOD (named but not runnable in the release) uses Easy-35's layout.
BENCHMARKS: dict[str, Layout] = {
    "DAVIS16": _split("val", _BOTH, ".jpg", ".jpg", drop=False),
    "YO2SEG": _split("val", _UVOS, ".jpg", ".jpg", drop=False),
    "FBMS-59": _split("test", _BOTH, ".jpg", ".png", drop=True),
    "LongVideos": Layout(_UVOS, "JPEGImages", "Flow", "Annotations", ".jpg", ".png", True),
    "ViSal": _split("test", _VSOD, ".jpg", ".png", drop=True),
    "SegTrack-V2": _split("test", _VSOD, ".jpg", ".png", drop=True),
    "MCL": _split("test", _VSOD, ".jpg", ".png", drop=True),
    "Easy-35": _split("test", _VSOD, ".png", ".png", drop=True),
    "DAVSOD": _split("test", _VSOD, ".png", ".png", drop=True),
}


@dataclass(frozen=True)
class Benchmark:
    """A resolved test set: its name (the ``{dataset}`` of output paths) and folders."""

    name: str
    frame_root: Path
    flow_root: Path
    mask_root: Path
    frame_exts: tuple[str, ...]
    flow_exts: tuple[str, ...]
    drop_tail: bool
    tasks: tuple[str, ...] = TASKS

    def video_names(self) -> list[str]:
        """Names of the video folders under the frame folder (``util.image`` order)."""
        from util.image import list_subfolders

        return list_subfolders(self.frame_root)

    def video(self, name: str) -> VideoSpec:
        """The folders and extensions of one video."""
        from .test_videos import VideoSpec

        return VideoSpec(
            name=name,
            frame_dir=self.frame_root / name,
            flow_dir=self.flow_root / name,
            frame_exts=self.frame_exts,
            flow_exts=self.flow_exts,
        )


def resolve_benchmark(dataset: str, root: str | Path) -> Benchmark:
    """``--test_dataset`` value -> ``Benchmark``: a name from ``BENCHMARKS`` under ``root``,
    or the path of a folder holding ``frame/<video>/`` and ``flow/<video>/``.

    Raises ``InputError`` naming the missing folder.
    """
    name = _registered_name(dataset)
    if name is not None:
        return _from_registry(name, Path(root))
    return _from_folder(Path(dataset))


def _registered_name(dataset: str) -> str | None:
    if dataset in BENCHMARKS:
        return dataset
    matches = [name for name in BENCHMARKS if name.lower() == dataset.lower()]
    return matches[0] if matches else None


def _from_registry(name: str, root: Path) -> Benchmark:
    layout = BENCHMARKS[name]
    base = root / name
    bench = Benchmark(
        name=name,
        frame_root=base / layout.frames,
        flow_root=base / layout.flows,
        mask_root=base / layout.masks,
        frame_exts=(layout.frame_ext,),
        flow_exts=(layout.flow_ext,),
        drop_tail=layout.drop_tail,
        tasks=layout.tasks,
    )
    for folder, relative in ((bench.frame_root, layout.frames), (bench.flow_root, layout.flows)):
        if not folder.is_dir():
            raise InputError(
                f"{folder}: {name} folder not found; expected <root>/{name}/{relative}/<video>/ "
                f"(--root {root})"
            )
    return bench


def dataset_name(folder: Path) -> str:
    """The ``{dataset}`` of a data set given by path: the folder's name, or the name of its
    parent for a split folder (``data/mine/val`` -> ``mine``)."""
    folder = folder.resolve()
    if folder.name in SPLIT_FOLDERS and folder.parent.name:
        return folder.parent.name
    return folder.name


def _from_folder(folder: Path) -> Benchmark:
    from util.image import IMAGE_EXTS

    bench = Benchmark(
        name=dataset_name(folder),
        frame_root=folder / "frame",
        flow_root=folder / "flow",
        mask_root=folder / "mask",
        frame_exts=IMAGE_EXTS,
        flow_exts=IMAGE_EXTS,
        drop_tail=False,
    )
    if not (bench.frame_root.is_dir() and bench.flow_root.is_dir()):
        known = ", ".join(BENCHMARKS)
        raise InputError(
            f"{folder}: not a known dataset ({known}) nor a folder holding "
            "frame/<video>/ and flow/<video>/"
        )
    return bench
