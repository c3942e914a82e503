"""VSOD evaluation of result folders: MAE, max F, max E and S-measure (DESIGN.md §9).

Usage:
    python test_scripts/test_vsod/main.py --method MTNet --dataset DAVIS16 \\
        --gt_dir G --pred_dir P [--no-use_flow] [--json OUT.json]

Ground truth: ``G/<dataset>/<video>/<frame>.png`` or ``G/<dataset>/<video>/GT/<frame>.png``.
Predictions: ``P/<method>/<dataset>/<video>/<frame>.png`` or, as test.py writes them,
``P/<method>/VSOD/<dataset>/<video>/<frame>.png``. Frames are paired by name. A video
whose ground truth never exceeds 1 (stored as 0/1) is scored as 0/255, with a note below
the table and its name under ``gt_scaled_videos`` in the JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from test_scripts import evalio
from test_scripts.test_vsod import metrics
from util.cli import ArgumentParser
from util.cpu import usable_cpus
from util.image import list_subfolders
from util.layout import OutputLayout

GT_SCALED = "gt_scaled_videos"  # JSON key: the videos whose 0/1 ground truth became 0/255


def build_parser() -> argparse.ArgumentParser:
    """The release's flags: methods and datasets are space-separated lists."""
    parser = ArgumentParser(
        description="VSOD evaluation: MAE, max F-measure, max E-measure, S-measure (DESIGN.md §9).",
        examples="python test_scripts/test_vsod/main.py --gt_dir ../data/VSOD --pred_dir "
        "output --method MTNet --dataset DAVSOD ViSal --json scores.json",
    )
    parser.add_argument("--method", nargs="+", help="method folders of P (default: all)")
    parser.add_argument("--dataset", nargs="+", help="dataset folders of G (default: all found)")
    parser.add_argument("--gt_dir", type=Path, required=True, help="G/<dataset>/<video>/")
    parser.add_argument("--pred_dir", type=Path, required=True, help="P/<method>/<dataset>/")
    parser.add_argument(
        "--use_flow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave out each video's first and last ground-truth frame (default: on)",
    )
    parser.add_argument(
        "--missing_as_empty",
        action="store_true",
        help="count a missing prediction as an all-zero map instead of stopping",
    )
    parser.add_argument(
        "--videos",
        nargs="+",
        metavar="VIDEO",
        help="score these videos only (default: every video of the ground truth)",
    )
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    parser.add_argument(
        "--workers",
        type=int,
        default=usable_cpus(),
        help="processes (default: all CPUs)",
    )
    return parser


def prediction_roots(pred_dir: Path, method: str, dataset: str) -> tuple[Path, Path]:
    """Where a method's maps of a dataset may be: ``P/<method>/<dataset>``, or test.py's
    ``P/<method>/VSOD/<dataset>``."""
    return pred_dir / method / dataset, OutputLayout.of(pred_dir, method, "VSOD").dataset_dir(
        dataset
    )


def prediction_root(pred_dir: Path, method: str, dataset: str) -> Path | None:
    """The first of :func:`prediction_roots` that exists, or None."""
    return next((r for r in prediction_roots(pred_dir, method, dataset) if r.is_dir()), None)


def gt_frames_dir(video_dir: Path) -> Path:
    """A video's ground-truth frames: its ``GT/`` subfolder (DAVSOD download) or itself."""
    return video_dir / "GT" if (video_dir / "GT").is_dir() else video_dir


def video_tasks(
    gt_root: Path,
    pred_root: Path,
    *,
    use_flow: bool,
    missing_as_empty: bool,
    videos: Sequence[str] | None = None,
) -> list[metrics.VideoTask]:
    """Pair the scored ground-truth frames of every video of a dataset (``videos``: a
    subset) with predictions; a video without predictions is an EvalError naming it unless
    ``missing_as_empty``."""
    selected = evalio.select_videos(
        gt_root,
        evalio.ground_truth_videos(gt_root, gt_frames_dir),
        videos,
        pred_root,
        missing_as_empty=missing_as_empty,
    )
    tasks = []
    for video in selected:
        gt_dir = gt_frames_dir(gt_root / video)
        names = evalio.image_names(gt_dir)
        if len(names) < (3 if use_flow else 1):
            raise evalio.EvalError(
                f"too few ground-truth frames in {gt_dir}: {len(names)}"
                + (" (--use_flow scores all but the first and last)" if use_flow else "")
            )
        scored = names[1:-1] if use_flow else names
        preds = evalio.match_predictions(gt_dir, scored, pred_root / video, missing_as_empty)
        tasks.append(metrics.VideoTask(video, tuple(gt_dir / n for n in scored), tuple(preds)))
    return tasks


def plan(args: argparse.Namespace) -> list[tuple[str, str, Path]]:
    """(method, dataset, prediction folder) of every evaluation asked for, or an EvalError."""
    gt_dir = evalio.require_dir(args.gt_dir, "ground-truth folder")
    pred_dir = evalio.require_dir(args.pred_dir, "prediction folder")
    methods = args.method or list_subfolders(pred_dir)
    if not methods:
        raise evalio.EvalError(f"no method folders in prediction folder {pred_dir}")
    for dataset in args.dataset or []:
        if not (gt_dir / dataset).is_dir():
            raise evalio.EvalError(f"dataset {dataset} not found: no folder {gt_dir / dataset}")
    datasets = args.dataset or list_subfolders(gt_dir)
    jobs = []
    for method in methods:
        if not (pred_dir / method).is_dir():
            raise evalio.EvalError(f"method {method} not found: no folder {pred_dir / method}")
        found = [(d, prediction_root(pred_dir, method, d)) for d in datasets]
        for dataset, root in found:
            if root is None and args.dataset:
                plain, ours = prediction_roots(pred_dir, method, dataset)
                raise evalio.EvalError(
                    f"no predictions of {method} for dataset {dataset}: neither {plain} nor {ours}"
                )
        if not any(root for _, root in found):
            raise evalio.EvalError(
                f"no predictions of {method} for any dataset of {gt_dir} under {pred_dir / method}"
            )
        jobs += [(method, dataset, root) for dataset, root in found if root is not None]
    return [job for job in jobs if wanted_videos(args, gt_dir / job[1]) != []]


def wanted_videos(args: argparse.Namespace, gt_root: Path) -> list[str] | None:
    """The videos of ``--videos`` that this dataset's ground truth has (``None``: all)."""
    if not args.videos:
        return None
    return [v for v in evalio.ground_truth_videos(gt_root, gt_frames_dir) if v in args.videos]


def check_wanted_videos(args: argparse.Namespace, datasets: Sequence[str]) -> None:
    """Every name of ``--videos`` is a video of one of the datasets scored."""
    found = {v for d in datasets for v in wanted_videos(args, args.gt_dir / d) or []}
    unknown = [v for v in dict.fromkeys(args.videos or []) if v not in found]
    if unknown:
        raise evalio.EvalError(
            f"--videos: no ground truth for {', '.join(unknown)} in "
            f"{', '.join(str(args.gt_dir / d) for d in datasets)}"
        )


def format_table(rows: list[dict]) -> str:
    """One line per (method, dataset)."""
    mw = max(len("Method"), *(len(r["method"]) for r in rows))
    dw = max(len("Dataset"), *(len(r["dataset"]) for r in rows))
    head = f"{'Method':<{mw}}  {'Dataset':<{dw}}" + "".join(
        f"{k:>9}" for k in ("MAE", "maxF", "maxE", "S")
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['method']:<{mw}}  {r['dataset']:<{dw}}"
            + "".join(f"{r[k]:>9.4f}" for k in ("MAE", "maxF", "maxE", "S"))
        )
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> list[dict]:
    """Score every (method, dataset) of ``plan``; all inputs are checked before scoring."""
    if args.videos:
        gt_dir = evalio.require_dir(args.gt_dir, "ground-truth folder")
        check_wanted_videos(args, args.dataset or list_subfolders(gt_dir))
    jobs = plan(args)
    tasks = [
        video_tasks(
            args.gt_dir / dataset,
            root,
            use_flow=args.use_flow,
            missing_as_empty=args.missing_as_empty,
            videos=wanted_videos(args, args.gt_dir / dataset),
        )
        for _, dataset, root in jobs
    ]
    rows = []
    for (method, dataset, _), dataset_tasks in zip(jobs, tasks, strict=True):
        videos = evalio.map_ordered(
            metrics.score_video, dataset_tasks, args.workers, desc=f"{method}/{dataset}"
        )
        row = {"method": method, "dataset": dataset, **metrics.dataset_scores(videos)}
        scaled = [v.name for v in videos if v.gt_scaled]
        if scaled:
            row[GT_SCALED] = scaled
        rows.append(row)
    return rows


def format_notes(rows: list[dict]) -> str:
    """The notes below the table: videos whose 0/1 ground truth was scored as 0/255."""
    return "\n".join(
        f"note: {r['method']}/{r['dataset']}: the ground truth of {len(r[GT_SCALED])} videos "
        f"never exceeds 1 (stored as 0/1; first: {r[GT_SCALED][0]}) and was scored as 0/255"
        for r in rows
        if r.get(GT_SCALED)
    )


def vsod_main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, score, print the table, write the JSON."""
    args = build_parser().parse_args(argv)
    evalio.check_json_path(args.json)
    rows = evaluate(args)
    print(format_table(rows))
    notes = format_notes(rows)
    if notes:
        print(notes)
    if args.json:
        evalio.write_json(args.json, rows)
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``main.py``: bad input gives one line on stderr and exit status 2."""
    return evalio.run_cli(vsod_main, argv)
