"""Score test.py's masks of any data set, choosing the protocol from its ground truth.

Usage::

    python -m test_scripts.score --gt_path ROOT/NAME/val/mask \\
        --result_path output/MTNet/UVOS/NAME [--task UVOS|VSOD] [--protocol auto|dense|sparse]
        [--videos VIDEO ...]

``auto`` (the default) reads the ground truth of the scored videos alone, never the
predictions: a video is densely annotated when it has two masks or more and the frame
numbers in their names (the last group of digits of each name) run without a gap
(``00000.png``, ``00001.png``, ...), as DAVIS's and a set prepared from fully annotated
videos do; FBMS, YouTube-Objects and the like annotate every few frames, so their numbers
have gaps. Every video dense: the dense protocol of DAVIS-2016 (J and F mean, recall and
decay; the first frame of each video not scored; VSOD without the first and last frame).
Otherwise the sparse protocol of FBMS (mean J and F over the annotated frames, all of them;
VSOD over all annotated frames), for every video, also in a set where only some are dense
(the line says so; ``--videos`` scores the dense ones alone). Masks whose names hold no
frame number give an error asking for ``--protocol``. The chosen protocol and the reason are
printed first. Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from test_scripts import davis_metrics, evalio
from test_scripts.test_vsod import evaluate as vsod
from test_scripts.test_vsod import metrics as vsod_metrics
from util.cpu import usable_cpus

PROTOCOLS = ("auto", "dense", "sparse")


def gt_frames_dir(task: str) -> Callable[[Path], Path]:
    """The folder of a video's ground-truth masks: VSOD's rule (its ``GT/`` subfolder when
    there is one), the video folder itself for UVOS, as each task's scorer reads them."""
    return vsod.gt_frames_dir if task == "VSOD" else Path


def scored_videos(args: argparse.Namespace) -> dict[str, Path]:
    """The videos to score (all of the ground truth's, or ``--videos``) and the folder of
    each one's masks; missing folders and unknown names are EvalErrors."""
    gt_root = evalio.require_dir(args.gt_path, "ground-truth folder")
    result_root = evalio.require_result_dir(args.result_path)
    frames_dir = gt_frames_dir(args.task)
    videos = evalio.select_videos(
        gt_root,
        evalio.ground_truth_videos(gt_root, frames_dir),
        args.videos,
        result_root,
        missing_as_empty=args.missing_as_empty,
    )
    return {v: frames_dir(gt_root / v) for v in videos}


@dataclass(frozen=True)
class Annotation:
    """How one video is annotated: ``gap`` is None when densely, else what shows it is not."""

    video: str
    masks: int
    gap: str | None


def frame_number(stem: str) -> tuple[str, int, str] | None:
    """``(text before, number, text after)`` of the last group of digits of a name (the
    group that orders the frames, util.image), or None when it has none."""
    digits = list(re.finditer(r"\d+", stem))
    if not digits:
        return None
    last = digits[-1]
    return stem[: last.start()], int(last.group()), stem[last.end() :]


def annotation(video: str, gt_dir: Path) -> Annotation:
    """Whether the masks of a video are numbered without a gap (EvalError when their names
    do not tell: no number, or names that differ in more than their number)."""
    names = evalio.image_names(gt_dir)
    if len(names) < 2:
        return Annotation(video, 1, "a single mask")
    parsed = [frame_number(Path(n).stem) for n in names]
    numbers = [p[1] for p in parsed if p is not None]
    odd = next(
        (n for n, p in zip(names, parsed, strict=True) if p is None or p[::2] != parsed[0][::2]),
        None,
    )
    if odd is None and len(set(numbers)) < len(numbers):
        seen: dict[int, str] = {}
        for name, number in zip(names, numbers, strict=True):
            if number in seen:
                odd = f"{seen[number]} and {name}, both frame {number}"
                break
            seen[number] = name
    if odd is not None:
        raise evalio.EvalError(
            f"cannot tell whether {gt_dir} is densely annotated: its mask names do not number "
            f"the frames one by one (e.g. {odd}); pass --protocol dense or sparse"
        )
    by_number = sorted(zip(numbers, names, strict=True))
    for (a, name_a), (b, name_b) in zip(by_number, by_number[1:], strict=False):
        if b != a + 1:
            return Annotation(
                video,
                len(names),
                f"{len(names)} masks, none numbered {a + 1} between {name_a} and {name_b}",
            )
    return Annotation(video, len(names), None)


def choose_dense(videos: dict[str, Path], protocol: str) -> tuple[bool, str]:
    """Whether to score with the dense protocol, and a line saying which and why."""
    if protocol != "auto":
        return protocol == "dense", f"protocol: {protocol} (as asked)"
    found = [annotation(video, gt_dir) for video, gt_dir in videos.items()]
    gapped = [a for a in found if a.gap is not None]
    if not gapped:
        return True, (
            "protocol: dense (DAVIS-2016): no gap in the mask numbers of any scored video "
            f"({len(found)} videos, {sum(a.masks for a in found)} masks); the first frame of "
            "each video is not scored"
        )
    reason = (
        f"protocol: sparse (FBMS): gaps in the mask numbers of {len(gapped)} of {len(found)} "
        f"videos ({gapped[0].video}: {gapped[0].gap}); the annotated frames are scored"
    )
    if len(gapped) < len(found):
        reason += (
            f", also those of the {len(found) - len(gapped)} videos without a gap (score them "
            "alone with --videos for the dense protocol)"
        )
    return False, reason


def score_uvos(args: argparse.Namespace, dense: bool) -> dict:
    summary = davis_metrics.evaluate(
        args.gt_path,
        args.result_path,
        dense=dense,
        missing_as_empty=args.missing_as_empty,
        workers=args.workers,
        videos=args.videos,
    )
    print(davis_metrics.format_table(summary, dense=dense))
    return summary


def score_vsod(args: argparse.Namespace, dense: bool) -> dict:
    """MAE, max F, max E and S over the scored frames (dense: all but the first and last
    ground-truth frame of each video, as the release scores flow-based methods)."""
    tasks = vsod.video_tasks(
        args.gt_path,
        args.result_path,
        use_flow=dense,
        missing_as_empty=args.missing_as_empty,
        videos=args.videos,
    )
    scores = evalio.map_ordered(vsod_metrics.score_video, tasks, args.workers, desc="VSOD")
    # test.py writes {output_dir}/{model_name}/{task}/{dataset}; ROOT/NAME/val/mask is NAME's
    row = {"method": args.result_path.parent.parent.name, "dataset": args.result_path.name}
    row |= vsod_metrics.dataset_scores(scores)
    print(vsod.format_table([row]))
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m test_scripts.score",
        description="Score masks against ground truth with the dense (DAVIS) or sparse (FBMS) "
        "protocol, chosen from the ground truth: dense when every scored video's masks are "
        "numbered without a gap.",
    )
    parser.add_argument(
        "--gt_path",
        type=Path,
        required=True,
        help="GT/<video>/<frame>.png (VSOD: also GT/<video>/GT/<frame>.png)",
    )
    parser.add_argument(
        "--result_path", type=Path, required=True, help="RES/<video>/<frame>.png (test.py's)"
    )
    parser.add_argument("--task", choices=("UVOS", "VSOD"), default="UVOS", help="default: UVOS")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="auto", help="default: auto")
    parser.add_argument(
        "--videos",
        nargs="+",
        metavar="VIDEO",
        help="score these videos of the ground truth only, and choose the protocol from "
        "theirs (default: all of them)",
    )
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    parser.add_argument(
        "--missing_as_empty",
        action="store_true",
        help="count a missing prediction as an empty mask instead of stopping",
    )
    parser.add_argument(
        "--workers", type=int, default=usable_cpus(), help="processes (default: all CPUs)"
    )
    return parser


def score_main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, choose the protocol, score, print the table, write the JSON."""
    args = build_parser().parse_args(argv)
    evalio.check_json_path(args.json)
    videos = scored_videos(args)
    dense, reason = choose_dense(videos, args.protocol)
    print(reason)
    # the scorers select the same videos with the same rule (evalio.select_videos)
    scores = score_vsod(args, dense) if args.task == "VSOD" else score_uvos(args, dense)
    if args.json:
        evalio.write_json(args.json, {"protocol": "dense" if dense else "sparse", **scores})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input gives one line on stderr and exit status 2."""
    return evalio.run_cli(score_main, argv)


if __name__ == "__main__":
    sys.exit(main())
