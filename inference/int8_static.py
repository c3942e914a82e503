"""Calibrate static int8: the Linear inputs' ranges of a network over a few real clips
(DESIGN.md §11).

    python -m inference.int8_static --test_model saves/mtnet.pth --root ../data \\
        --test_dataset DAVIS16 --test_size 512 512 --out mtnet_int8_512.pth
    python test.py ... --precision int8_static --int8_calibration mtnet_int8_512.pth --compile

The command of ``inference.runtime.int8_static``, which says how the ranges are used.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from inference.runtime.int8_static import (
    MAX_CLIP,
    Calibration,
    calibrate,
    calibration_clips,
    save_calibration,
)
from inference.weights_args import add_weights_arguments, check_weights_arguments, load_cli_weights
from model.variants import check_test_size
from util.cli import ArgumentParser
from util.errors import InputError, exit_status
from util.fileio import check_output_file

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m inference.int8_static", description=__doc__.splitlines()[0])
    add_weights_arguments(p, "calibrate")
    p.add_argument("--root", default="../data", help="data root (as test.py's --root)")
    p.add_argument("--test_dataset", default="DAVIS16", help="a benchmark name or a folder")
    p.add_argument("--videos", nargs="+", default=None, help="default: the first --num_videos")
    p.add_argument("--num_videos", type=int, default=3, help="videos, one clip each")
    p.add_argument("--test_size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--test_length", type=int, default=9, help="frames per calibration clip")
    p.add_argument("--out", default="mtnet_int8.pth", help="calibration file to write")
    return p


def run(args: argparse.Namespace) -> Calibration:
    """Calibrate and save; every flag is checked first."""
    check_weights_arguments(args, "calibrate")
    check_test_size(*args.test_size)
    if not 1 <= args.test_length <= MAX_CLIP:
        raise InputError(f"--test_length {args.test_length}: expected 1 to {MAX_CLIP}")
    out = check_output_file(args.out, "--out")
    weights = load_cli_weights(args)
    clips = calibration_clips(
        args.test_dataset, args.root, args.videos, args.num_videos, args.test_length, args.test_size
    )
    start = time.perf_counter()
    calibration = save_calibration(
        out, calibrate(weights.model, clips, tuple(args.test_size), weights.description)
    )
    log.info(
        "wrote %s: %d ranges from %s in %.0f s",
        out,
        len(calibration.ranges),
        ", ".join(calibration.clips),
        time.perf_counter() - start,
    )
    return calibration


def main(argv: list[str] | None = None) -> int:
    """Calibrate; a user's mistake ends with one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return exit_status("int8_static", lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
