"""Training and test data from the original downloads (DESIGN.md §7, §8).

Turns DAVIS-2016 and the YouTube-VOS train split, as their authors distribute them, and a
folder of your own annotated videos (:mod:`dataset.prepare_folder`) into the layout
``train.py`` and ``test.py`` read::

    python -m dataset.prepare davis2016   --src DIR --out ROOT   # ROOT/DAVIS16/{train,val}/
    python -m dataset.prepare youtube-vos --src DIR --out ROOT   # ROOT/YouTube2SEG/train/
    python -m dataset.prepare folder --src DIR --out ROOT --name NAME  # ROOT/NAME/{train,val}/

``davis2016`` reads the DAVIS-2016 download or the DAVIS-2017 trainval 480p one (its
``ImageSets/2016`` lists name the DAVIS-2016 videos; its palette masks become the union of
the objects, which may differ from DAVIS-2016's own masks where DAVIS-2017 annotates the
scene differently).

Each video becomes ``{frame,flow,mask}/<video>/``: the frames copied byte for byte (or
hard-linked with ``--link``), binary masks ``<stem>.png`` (0/255), and one flow image per
frame made by :mod:`util.flow` (DIS by default, RAFT with a local weights file): the flow
t->t+1 named after frame t, and for the last frame a copy of the preceding flow.

YouTube-VOS annotates every fifth frame with one palette index per object: only annotated
frames are kept, the flows join consecutive kept frames, and the objects become one binary
mask by ``--objects``: ``union`` (all objects, the default), ``largest`` (the object with the
most pixels over the video's annotated frames) or ``first`` (the smallest object id in the
video).

Resumable (:mod:`dataset.prepared`, the writing every source shares): every file is written
atomically, and ``ROOT/<dataset>/<split>/.prepare/<video>.json`` records each video's sources
and options; a rerun skips finished videos, continues unfinished ones (keeping the flows made
so far) and remakes a video whose sources or options changed. Output folders that this
command did not make are never overwritten. Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from util.cli import ArgumentParser
from util.errors import InputError, exit_status, setting
from util.flow import (
    METHODS,
    RAFT_MODELS,
    FlowSettings,
    list_frames,
)
from util.image import (
    MASK_EXT,
    list_images,
    list_subfolders,
)

from .prepare_folder import DEFAULT_VAL_FRACTION, FOLDER_LAYOUT, prepare_folder
from .prepared import (
    OBJECT_RULES,
    PrepareOptions,
    SourceVideo,
    Summary,
    check_outputs,
    flow_estimator,
    prepare_videos,
)

log = logging.getLogger(__name__)

SOURCES = ("davis2016", "youtube-vos", "folder")
DAVIS_SPLITS = ("train", "val")

DAVIS_LAYOUT = (
    "JPEGImages/480p/<video>/<frame>.jpg, Annotations/480p/<video>/<frame>.png and "
    "ImageSets/480p/{train,val}.txt (DAVIS-2016) or ImageSets/2016/{train,val}.txt "
    "(DAVIS-2017 trainval)"
)
# the split lists: DAVIS-2016's own, then those DAVIS-2017 ships for the DAVIS-2016 videos
DAVIS_LISTS = ("480p", "2016")
YTVOS_LAYOUT = (
    "train/JPEGImages/<video>/<frame>.jpg and train/Annotations/<video>/<frame>.png "
    "(palette PNGs, one index per object)"
)


# ---- the downloads -------------------------------------------------------------------


def check_src(src: str | os.PathLike) -> None:
    """``InputError`` naming ``src`` when it does not exist."""
    if not Path(src).exists():
        raise InputError(
            f"{setting('src', str(src))}: does not exist; expected the unpacked download"
        )


def find_davis_root(src: Path) -> Path:
    """The DAVIS folder: ``src`` itself or its ``DAVIS/`` subfolder (the unpacked download),
    holding ``JPEGImages/480p``, ``Annotations/480p`` and the split lists: DAVIS-2016's
    ``ImageSets/480p`` or the DAVIS-2017 trainval download's ``ImageSets/2016``."""
    for root in (src, src / "DAVIS"):
        frames_and_masks = all(
            (root / sub / "480p").is_dir() for sub in ("JPEGImages", "Annotations")
        )
        if frames_and_masks and any((root / "ImageSets" / d).is_dir() for d in DAVIS_LISTS):
            return root
    raise InputError(f"--src {src}: not a DAVIS-2016 folder; expected {DAVIS_LAYOUT}")


def davis_listing(root: Path, split: str) -> Path:
    """The split list: ``ImageSets/480p/<split>.txt`` (DAVIS-2016), else
    ``ImageSets/2016/<split>.txt`` (DAVIS-2017 trainval: video names, one per line)."""
    for folder in DAVIS_LISTS:
        listing = root / "ImageSets" / folder / f"{split}.txt"
        if listing.is_file():
            return listing
    return root / "ImageSets" / DAVIS_LISTS[0] / f"{split}.txt"


def davis_videos(root: Path, split: str) -> list[SourceVideo]:
    """The videos of the split list (:func:`davis_listing`), in the order of first appearance.

    A line is ``/JPEGImages/480p/<video>/<frame>.jpg /Annotations/480p/<video>/<frame>.png``
    (one frame), or a bare video name (all frames of its folder, as DAVIS-2017 lists them).
    Palette annotations (DAVIS-2017: one index per object) become the union of the objects.
    """
    listing = davis_listing(root, split)
    if not listing.is_file():
        raise InputError(f"{listing}: split list not found; expected {DAVIS_LAYOUT}")
    pairs: dict[str, list[tuple[Path, Path]]] = {}
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise InputError(
                f"{listing}:{number}: expected '/JPEGImages/480p/<video>/<frame>.jpg "
                "/Annotations/480p/<video>/<frame>.png' or a video name"
            )
        if "/" not in parts[0]:  # a video name
            frames = _davis_frames(root, parts[0])
            pairs.setdefault(parts[0], []).extend(
                (f, _davis_mask(root, parts[0], f)) for f in frames
            )
            continue
        frame = root / parts[0].lstrip("/")
        video = frame.parent.name
        mask = root / parts[1].lstrip("/") if len(parts) == 2 else _davis_mask(root, video, frame)
        pairs.setdefault(video, []).append((frame, mask))
    if not pairs:
        raise InputError(f"{listing}: no videos listed; expected {DAVIS_LAYOUT}")
    videos = []
    for name, items in pairs.items():
        for frame, mask in items:
            for path in (frame, mask):
                if not path.is_file():
                    raise InputError(f"{path}: listed in {listing} but not found")
        videos.append(SourceVideo(name, tuple(f for f, _ in items), tuple(m for _, m in items)))
    return videos


def _davis_frames(root: Path, video: str) -> list[Path]:
    folder = root / "JPEGImages" / "480p" / video
    if not folder.is_dir():
        raise InputError(f"{folder}: video folder not found; expected {DAVIS_LAYOUT}")
    return list_frames(folder)


def _davis_mask(root: Path, video: str, frame: Path) -> Path:
    return root / "Annotations" / "480p" / video / f"{frame.stem}.png"


def find_ytvos_train(src: Path) -> Path:
    """The YouTube-VOS train folder: ``src/train`` or ``src`` itself, holding ``JPEGImages/``
    and ``Annotations/`` (the 2018 and 2019 downloads unpack to the same layout)."""
    for root in (src / "train", src):
        if (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir():
            return root
    raise InputError(f"--src {src}: not a YouTube-VOS download; expected {YTVOS_LAYOUT}")


def ytvos_videos(train: Path) -> list[SourceVideo]:
    """Every annotated video of the train folder, sorted by name: the frames that have an
    annotation, in frame order."""
    videos = []
    for name in list_subfolders(train / "Annotations"):
        folder = train / "Annotations" / name
        masks = list_images(folder, (MASK_EXT,))
        if not masks:
            raise InputError(f"{folder}: no annotation PNGs; expected {YTVOS_LAYOUT}")
        frame_dir = train / "JPEGImages" / folder.name
        if not frame_dir.is_dir():
            raise InputError(f"{frame_dir}: frame folder not found; expected {YTVOS_LAYOUT}")
        frames = {p.stem: p for p in list_frames(frame_dir)}
        missing = [m.name for m in masks if m.stem not in frames]
        if missing:
            raise InputError(
                f"{frame_dir}: no frame for annotation {missing[0]}; expected {YTVOS_LAYOUT}"
            )
        videos.append(SourceVideo(folder.name, tuple(frames[m.stem] for m in masks), tuple(masks)))
    if not videos:
        raise InputError(f"{train / 'Annotations'}: no video folders; expected {YTVOS_LAYOUT}")
    return videos


# ---- whole data sets -----------------------------------------------------------------


def _check_selection(options: PrepareOptions, videos: Sequence[SourceVideo], src: Path) -> None:
    """``--videos`` must name videos of the download."""
    if options.videos is not None:
        unknown = sorted(set(options.videos) - {v.name for v in videos})
        if unknown:
            raise InputError(f"--videos {unknown[0]}: no such video in {src}")


def prepare_davis2016(
    src: str | os.PathLike,
    out: str | os.PathLike,
    options: PrepareOptions = PrepareOptions(),  # noqa: B008 (frozen)
    splits: Sequence[str] = DAVIS_SPLITS,
) -> dict[str, Summary]:
    """DAVIS-2016 (``src``, see ``DAVIS_LAYOUT``) -> ``out/DAVIS16/<split>/{frame,flow,mask}/``."""
    check_src(src)
    root = find_davis_root(Path(src))
    listed = {split: davis_videos(root, split) for split in splits}  # check all before work
    _check_selection(options, [v for videos in listed.values() for v in videos], root)
    for split, videos in listed.items():
        check_outputs(out, Path(out) / "DAVIS16" / split, videos)
    estimator = flow_estimator(options)
    return {
        split: prepare_videos(videos, Path(out) / "DAVIS16" / split, options, estimator)
        for split, videos in listed.items()
    }


def prepare_youtube_vos(
    src: str | os.PathLike,
    out: str | os.PathLike,
    options: PrepareOptions = PrepareOptions(),  # noqa: B008 (frozen)
) -> Summary:
    """YouTube-VOS train (``src``, see ``YTVOS_LAYOUT``) -> ``out/YouTube2SEG/train/...``."""
    if options.objects not in OBJECT_RULES:
        raise InputError(f"--objects {options.objects}: expected one of {', '.join(OBJECT_RULES)}")
    check_src(src)
    train = find_ytvos_train(Path(src))
    videos = ytvos_videos(train)
    _check_selection(options, videos, train)
    split_dir = Path(out) / "YouTube2SEG" / "train"
    check_outputs(out, split_dir, videos)
    estimator = flow_estimator(options)
    return prepare_videos(videos, split_dir, options, estimator, uses_objects=True)


# ---- command line --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m dataset.prepare``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--src", type=Path, required=True, help="the unpacked download")
    common.add_argument("--out", type=Path, required=True, help="data root (train.py --root)")
    common.add_argument("--flow_method", choices=METHODS, default="dis", help="default: dis")
    common.add_argument("--raft_weights", help="torchvision RAFT state dict file (raft)")
    common.add_argument("--raft_model", choices=RAFT_MODELS, default="raft_large")
    common.add_argument("--raft_iters", type=int, default=12, help="RAFT flow updates")
    common.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (RAFT)")
    common.add_argument("--link", action="store_true", help="hard-link frames, not copy")
    common.add_argument("--videos", nargs="+", help="only these videos")
    common.add_argument("--no_progress", action="store_true", help="hide progress bars")
    parser = ArgumentParser(
        prog="python -m dataset.prepare",
        description="Frames, binary masks and flow images from the original downloads.",
        examples="""
            python -m dataset.prepare davis2016 --src DAVIS --out ../data
            python -m dataset.prepare youtube-vos --src youtube-vos --out ../data
            python -m dataset.prepare davis2016 --help   # the flags of one source
        """,
    )
    sub = parser.add_subparsers(dest="source", required=True, metavar="{" + ",".join(SOURCES) + "}")
    davis = sub.add_parser("davis2016", parents=[common], help=f"DAVIS-2016: {DAVIS_LAYOUT}")
    davis.add_argument("--splits", nargs="+", choices=DAVIS_SPLITS, default=list(DAVIS_SPLITS))
    ytvos = sub.add_parser("youtube-vos", parents=[common], help=f"YouTube-VOS: {YTVOS_LAYOUT}")
    ytvos.add_argument(
        "--objects",
        choices=OBJECT_RULES,
        default="union",
        help="which objects make the binary mask (default: union of all)",
    )
    _add_folder_parser(sub, common)
    return parser


def _add_folder_parser(sub, common: argparse.ArgumentParser) -> None:
    folder = sub.add_parser("folder", parents=[common], help=f"your own videos: {FOLDER_LAYOUT}")
    folder.add_argument("--name", required=True, help="the data set's name: ROOT/NAME/")
    pick = folder.add_mutually_exclusive_group()
    pick.add_argument("--val_videos", nargs="+", help="these videos validate")
    pick.add_argument(
        "--val_fraction",
        type=float,
        default=DEFAULT_VAL_FRACTION,
        help="validate on this share of the videos, picked with a fixed seed (default: 0.2)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with a one-line error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def work() -> None:
        flow = FlowSettings(args.flow_method, args.raft_weights, args.raft_model, args.raft_iters)
        options = PrepareOptions(
            flow=flow,
            device=args.device,
            objects=getattr(args, "objects", "union"),
            link=args.link,
            progress=not args.no_progress,
            videos=tuple(args.videos) if args.videos else None,
        )
        if args.source == "folder":
            prepare_folder(
                args.src, args.out, args.name, options, args.val_videos, args.val_fraction
            )
        elif args.source == "davis2016":
            prepare_davis2016(args.src, args.out, options, args.splits)
        else:
            prepare_youtube_vos(args.src, args.out, options)

    return exit_status("dataset.prepare", work, also=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
