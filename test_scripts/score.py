"""Score test.py's masks of any data set, choosing the protocol from its ground truth.

Usage::

    python -m test_scripts.score --gt_path ROOT/NAME/val/mask \\
        --result_path output/MTNet/UVOS/NAME [--task UVOS|VSOD] [--protocol auto|dense|sparse]

``auto`` (the default) looks at the ground truth of the scored videos: when every predicted
frame has a ground-truth mask, the dense protocol of DAVIS-2016 (J and F mean, recall and
decay; the first frame of each video not scored; VSOD without the first and last frame);
otherwise the sparse protocol of FBMS (mean J and F over the annotated frames, all of them;
VSOD over all annotated frames). The chosen protocol and the reason are printed first.
Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from test_scripts import davis_metrics, evalio
from test_scripts.test_vsod import evaluate as vsod
from test_scripts.test_vsod import metrics as vsod_metrics
from util.cpu import usable_cpus
from util.image import list_subfolders

PROTOCOLS = ("auto", "dense", "sparse")


def annotation_counts(gt_root: Path, result_root: Path) -> tuple[int, int]:
    """``(annotated, predicted)``: of the predicted frames of every result video, how many
    have a ground-truth mask of the same stem, and how many there are."""
    annotated = predicted = 0
    for video in list_subfolders(evalio.require_dir(result_root, "result folder")):
        gt_dir = evalio.require_dir(gt_root / video, "ground-truth folder")
        gt = {Path(n).stem for n in evalio.image_names(gt_dir)}
        stems = [Path(n).stem for n in evalio.image_names(result_root / video)]
        annotated += sum(stem in gt for stem in stems)
        predicted += len(stems)
    if not predicted:
        raise evalio.EvalError(f"no predicted frames in result folder {result_root}")
    return annotated, predicted


def choose_dense(gt_root: Path, result_root: Path, protocol: str) -> tuple[bool, str]:
    """Whether to score with the dense protocol, and a line saying which and why."""
    if protocol != "auto":
        dense = protocol == "dense"
        return dense, f"protocol: {protocol} (as asked)"
    annotated, predicted = annotation_counts(gt_root, result_root)
    if annotated == predicted:
        return True, (
            f"protocol: dense (DAVIS-2016): all {predicted} predicted frames have a ground-truth "
            "mask; the first frame of each video is not scored"
        )
    return False, (
        f"protocol: sparse (FBMS): {annotated} of {predicted} predicted frames have a "
        "ground-truth mask; those are scored"
    )


def score_uvos(args: argparse.Namespace, dense: bool) -> dict:
    summary = davis_metrics.evaluate(
        args.gt_path,
        args.result_path,
        dense=dense,
        missing_as_empty=args.missing_as_empty,
        workers=args.workers,
    )
    print(davis_metrics.format_table(summary, dense=dense))
    return summary


def score_vsod(args: argparse.Namespace, dense: bool) -> dict:
    """MAE, max F, max E and S over the scored frames (dense: all but the first and last
    ground-truth frame of each video, as the release scores flow-based methods)."""
    tasks = vsod.video_tasks(
        args.gt_path, args.result_path, use_flow=dense, missing_as_empty=args.missing_as_empty
    )
    videos = evalio.map_ordered(vsod_metrics.score_video, tasks, args.workers, desc="VSOD")
    # test.py writes {output_dir}/{model_name}/{task}/{dataset}; ROOT/NAME/val/mask is NAME's
    row = {"method": args.result_path.parent.parent.name, "dataset": args.result_path.name}
    row |= vsod_metrics.dataset_scores(videos)
    print(vsod.format_table([row]))
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m test_scripts.score",
        description="Score masks against ground truth with the dense (DAVIS) or sparse (FBMS) "
        "protocol, chosen from the ground truth.",
    )
    parser.add_argument("--gt_path", type=Path, required=True, help="GT/<video>/<frame>.png")
    parser.add_argument(
        "--result_path", type=Path, required=True, help="RES/<video>/<frame>.png (test.py's)"
    )
    parser.add_argument("--task", choices=("UVOS", "VSOD"), default="UVOS", help="default: UVOS")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="auto", help="default: auto")
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
    dense, reason = choose_dense(args.gt_path, args.result_path, args.protocol)
    print(reason)
    scores = score_vsod(args, dense) if args.task == "VSOD" else score_uvos(args, dense)
    if args.json:
        evalio.write_json(args.json, {"protocol": "dense" if dense else "sparse", **scores})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Bad input gives one line on stderr and exit status 2."""
    return evalio.run_cli(score_main, argv)


if __name__ == "__main__":
    sys.exit(main())
