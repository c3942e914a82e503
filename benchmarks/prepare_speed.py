"""Speed of ``python -m dataset.prepare davis2016`` with DIS flow, in frames per second.

The DAVIS-2016 validation frames and masks of a processed data root are turned back into the
original download's layout in a temporary folder (``JPEGImages/480p/<video>/``,
``Annotations/480p/<video>/`` as links to the processed folders, and
``ImageSets/480p/val.txt``), then prepared into another temporary folder: frame copies,
binary masks, DIS flows, the last frame's flow copy. Everything is removed afterwards.

Usage: python -m benchmarks.prepare_speed [--data ../shared/data/DAVIS16/val] [--videos N]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks.common import DAVIS_VAL
from dataset.prepare import PrepareOptions, prepare_davis2016
from util.cpu import cpu_description, usable_cpus
from util.flow import list_frames
from util.image import list_subfolders


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DAVIS_VAL, help="{frame,mask}/<video>/")
    parser.add_argument("--videos", type=int, default=0, help="first N videos (0: all)")
    return parser.parse_args()


def original_layout(data: Path, target: Path, count: int) -> int:
    """Write the DAVIS-2016 download layout of ``data``'s videos under ``target``; returns
    the number of frames."""
    videos = list_subfolders(data / "frame")
    videos = videos[:count] if count else videos
    lines = []
    for kind, source in (("JPEGImages", "frame"), ("Annotations", "mask")):
        (target / kind / "480p").mkdir(parents=True)
        for video in videos:
            (target / kind / "480p" / video).symlink_to((data / source / video).resolve())
    for video in videos:
        for frame in list_frames(data / "frame" / video):
            lines.append(
                f"/JPEGImages/480p/{video}/{frame.name} /Annotations/480p/{video}/{frame.stem}.png"
            )
    (target / "ImageSets" / "480p").mkdir(parents=True)
    (target / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"cpu: {cpu_description()}; {usable_cpus()} cores; OpenCV {cv2.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "DAVIS", Path(tmp) / "data"
        frames = original_layout(args.data, src, args.videos)
        start = time.perf_counter()
        summary = prepare_davis2016(src, out, PrepareOptions(), splits=("val",))["val"]
        elapsed = time.perf_counter() - start
    assert summary.frames == frames, (summary, frames)
    print(
        f"prepare davis2016 (DIS flow): {summary.made} videos, {frames} frames in "
        f"{elapsed:.1f} s = {frames / elapsed:.2f} frames/s"
    )


if __name__ == "__main__":
    main()
