"""DAVIS-style UVOS evaluation (DESIGN.md §9): region J, boundary F and their statistics.

Videos: every ground-truth subfolder holding a mask, each needing a result folder
(``--videos`` scores a subset; the release took the result folder's subfolders, which
leaves a missing video out without a word).

Dense protocol (DAVIS-2016): the frames are the sorted ground-truth names with the first
one ignored; per sequence the mean, recall and decay of J and F; the dataset value is the
plain mean over sequences. A prediction whose ground-truth frame is missing is named in a
warning (it is not scored).

Sparse protocol (FBMS, YouTube-Objects, LongVideos): only the annotated frames (the
ground-truth files) count, all of them; per sequence the mean J and F, then the mean over
sequences.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from test_scripts.evalio import (
    EvalError,
    check_json_path,
    ground_truth_videos,
    image_names,
    map_ordered,
    match_predictions,
    read_pair,
    require_dir,
    require_result_dir,
    run_cli,
    select_videos,
    warn,
    write_json,
)
from util.cli import ArgumentParser
from util.cpu import usable_cpus

# ---------------------------------------------------------------------------------------
# Per-frame measures


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """|P ∩ G| / |P ∪ G| of two boolean masks; 1 when both are empty."""
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """The DAVIS toolkit's ``seg2bmap`` for a mask of the image's own size.

    A pixel is boundary when it differs from its right, lower or lower-right neighbour;
    the bottom row compares to the right only, the last column downwards only, and the
    bottom-right pixel never is one (the image border makes no boundary).
    """
    m = mask.astype(bool, copy=False)
    b = np.zeros(m.shape, dtype=bool)
    b[:, :-1] |= m[:, :-1] != m[:, 1:]
    b[:-1, :] |= m[:-1, :] != m[1:, :]
    b[:-1, :-1] |= m[:-1, :-1] != m[1:, 1:]
    return b


def tolerance_radius(height: int, width: int) -> int:
    """Boundary tolerance ceil(0.008 · diagonal), computed as the toolkit does (8 at 854×480)."""
    return int(np.ceil(0.008 * np.linalg.norm((height, width))))


@functools.lru_cache(maxsize=8)
def disk_kernel(radius: int) -> np.ndarray:
    """Every offset with dx² + dy² ≤ r² (skimage's ``disk(r)``; 197 pixels at r = 8)."""
    d = np.arange(-radius, radius + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2 <= radius**2).astype(np.uint8)


def _matched(bmap: np.ndarray, other: np.ndarray, kernel: np.ndarray) -> int:
    """Boundary pixels of ``bmap`` with a boundary pixel of ``other`` within the kernel.

    OpenCV's dilation on 0/1 uint8 with the exact disk; the border adds nothing.
    """
    return np.count_nonzero(bmap & cv2.dilate(other.view(np.uint8), kernel).view(bool))


def boundary_f(pred: np.ndarray, gt: np.ndarray, radius: int | None = None) -> float:
    """The DAVIS boundary F-measure of two boolean masks (toolkit conventions when empty).

    ``radius`` defaults to the tolerance of the masks' own size; pass the full frame's
    when the masks are a crop of it.
    """
    bp, bg = boundary_map(pred), boundary_map(gt)
    n_p, n_g = np.count_nonzero(bp), np.count_nonzero(bg)
    if n_p == 0 or n_g == 0:
        precision, recall = float(n_g == 0), float(n_p == 0)
    else:
        kernel = disk_kernel(tolerance_radius(*gt.shape) if radius is None else radius)
        precision = _matched(bp, bg, kernel) / n_p
        recall = _matched(bg, bp, kernel) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def frame_jf(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """J and F of two boolean masks of one frame.

    Both are computed on the bounding box of the union grown by one pixel: outside it
    both masks are empty, so no boundary pixel lies there (nor in the box's added last
    row and column), and a dilation inside the box sees every boundary pixel.
    """
    union = pred | gt
    x, y, w, h = cv2.boundingRect(union.view(np.uint8))
    if w == 0:
        return 1.0, 1.0  # both empty: J = 1, and no boundaries: P = R = 1
    box = (slice(max(y - 1, 0), y + h + 1), slice(max(x - 1, 0), x + w + 1))
    p, g = pred[box], gt[box]
    return jaccard(p, g), boundary_f(p, g, radius=tolerance_radius(*gt.shape))


# ---------------------------------------------------------------------------------------
# Per-sequence statistics


def nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN values; NaN, without a warning, when there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def recall(values: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of the non-NaN values above ``threshold``."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(np.mean(values > threshold)) if values.size else math.nan


def decay_breakpoints(m: int) -> np.ndarray:
    """0-based bin edges 1 + k(m − 1)/4 (k = 0..4), rounded half up, minus 1 (DESIGN.md §9).

    The toolkit rounds ``x + 1e-10``, so halves go up, not to even as ``np.round`` would.
    """
    return np.floor(np.linspace(1, m, 5) + 0.5).astype(np.int64) - 1


def decay(values: np.ndarray) -> float:
    """nan-mean of the first quarter minus that of the last; bins include both edges."""
    values = np.asarray(values, dtype=np.float64)
    ids = decay_breakpoints(len(values))
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    return nanmean(bins[0]) - nanmean(bins[3])


def sequence_statistics(values: np.ndarray) -> dict[str, float]:
    """Mean (all values), recall and decay (without the first and last) of one sequence.

    ``values`` holds one score per ground-truth frame, NaN for the ignored first frame.
    """
    values = np.asarray(values, dtype=np.float64)
    inner = values[1:-1]
    return {"mean": nanmean(values), "recall": recall(inner), "decay": decay(inner)}


# ---------------------------------------------------------------------------------------
# Folders


@dataclass(frozen=True)
class VideoTask:
    """One sequence to score: ground-truth frames and their predictions (``None``: empty)."""

    name: str
    gt_paths: tuple[Path, ...]
    pred_paths: tuple[Path | None, ...]
    skip_first: bool


@dataclass(frozen=True)
class VideoScores:
    """Per-frame J and F of one sequence, NaN where a frame is ignored."""

    name: str
    j: np.ndarray
    f: np.ndarray


def collect_tasks(
    gt_root: Path,
    result_root: Path,
    *,
    dense: bool,
    missing_as_empty: bool = False,
    videos: Sequence[str] | None = None,
) -> list[VideoTask]:
    """Pair every scored ground-truth frame of every video with its prediction.

    The videos are those of the ground truth (``videos``: a subset of them), not the
    result folder's subfolders as in the release: a video without results is named, not
    left out (DESIGN.md §9).
    """
    require_dir(gt_root, "ground-truth folder")
    require_result_dir(result_root)
    selected = select_videos(
        gt_root,
        ground_truth_videos(gt_root),
        videos,
        result_root,
        missing_as_empty=missing_as_empty,
    )
    tasks = []
    for video in selected:
        gt_dir = gt_root / video
        names = image_names(gt_dir)
        if len(names) < (2 if dense else 1):
            raise EvalError(f"too few ground-truth frames in {gt_dir}: {len(names)}")
        scored = names[1:] if dense else names
        preds = match_predictions(gt_dir, scored, result_root / video, missing_as_empty)
        if dense:
            warn_unscored(gt_dir, names, result_root / video)
        tasks.append(
            VideoTask(
                name=video,
                gt_paths=tuple(gt_dir / n for n in names),
                pred_paths=((None,) if dense else ()) + tuple(preds),
                skip_first=dense,
            )
        )
    return tasks


def warn_unscored(gt_dir: Path, gt_names: Sequence[str], pred_dir: Path) -> None:
    """Dense protocol: name the predictions that have no ground-truth frame (a frame
    missing from the ground truth), which are not scored."""
    if not pred_dir.is_dir():
        return
    stems = {Path(n).stem for n in gt_names}
    unscored = [n for n in image_names(pred_dir) if Path(n).stem not in stems]
    if unscored:
        warn(
            f"{pred_dir}: predictions without a ground-truth frame in {gt_dir} are not "
            f"scored: {len(unscored)} (first: {unscored[0]})"
        )


def score_video(task: VideoTask) -> VideoScores:
    """J and F of every scored frame of one sequence (value > 0 is foreground)."""
    n = len(task.gt_paths)
    j, f = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(1 if task.skip_first else 0, n):
        pred, gt = read_pair(task.pred_paths[i], task.gt_paths[i])
        j[i], f[i] = frame_jf(pred > 0, gt > 0)
    return VideoScores(task.name, j, f)


def stat_keys(dense: bool) -> tuple[str, ...]:
    """The statistics reported per sequence under the dense or the sparse protocol."""
    return ("mean", "recall", "decay") if dense else ("mean",)


def video_statistics(values: np.ndarray, *, dense: bool) -> dict[str, float]:
    """Mean, recall and decay of a dense sequence; the mean alone of a sparse one."""
    return sequence_statistics(values) if dense else {"mean": nanmean(values)}


def summarise(scores: Sequence[VideoScores], *, dense: bool) -> dict:
    """The JSON summary: per-video statistics and their plain mean over videos."""
    videos = {
        s.name: {"J": video_statistics(s.j, dense=dense), "F": video_statistics(s.f, dense=dense)}
        for s in scores
    }
    overall = {
        m: {k: float(np.mean([v[m][k] for v in videos.values()])) for k in stat_keys(dense)}
        for m in ("J", "F")
    }
    return {**overall, "JF": (overall["J"]["mean"] + overall["F"]["mean"]) / 2, "videos": videos}


def category_means(summary: dict) -> dict[str, dict]:
    """YouTube-Objects: mean J and F per category (the leading letters of a video's name)."""
    groups: dict[str, list[dict]] = {}
    for name, v in summary["videos"].items():
        match = re.match(r"[A-Za-z]+", name)
        groups.setdefault(match.group(0).lower() if match else name, []).append(v)
    return {
        cat: {
            **{m: {"mean": float(np.mean([v[m]["mean"] for v in vs]))} for m in ("J", "F")},
            "videos": len(vs),
        }
        for cat, vs in sorted(groups.items())
    }


def evaluate(
    gt_root: Path,
    result_root: Path,
    *,
    dense: bool,
    missing_as_empty: bool = False,
    workers: int = 1,
    videos: Sequence[str] | None = None,
) -> dict:
    """Score a result folder against a ground-truth folder (``videos``: a subset of the
    ground truth's videos); see :func:`summarise`."""
    tasks = collect_tasks(
        gt_root, result_root, dense=dense, missing_as_empty=missing_as_empty, videos=videos
    )
    scores = map_ordered(score_video, tasks, workers)
    return summarise(scores, dense=dense)


# ---------------------------------------------------------------------------------------
# Reports and command line


def format_table(summary: dict, *, dense: bool) -> str:
    """A per-video table and the average row (J(M) J(O) J(D) F(M) F(O) F(D) when dense)."""
    keys = stat_keys(dense)
    short = {"mean": "M", "recall": "O", "decay": "D"}
    cols = [(m, k) for m in ("J", "F") for k in keys]
    width = max([len("Average"), *map(len, summary["videos"])])
    lines = [f"{'Video':<{width}}" + "".join(f"{f'{m}({short[k]})':>9}" for m, k in cols)]
    rows = [*summary["videos"].items(), ("Average", summary)]
    for name, v in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{v[m][k]:>9.4f}" for m, k in cols))
    lines.append(f"J&F: {summary['JF']:.4f}")
    return "\n".join(lines)


def format_categories(categories: dict[str, dict]) -> str:
    """Per-category means and their mean (how YouTube-Objects results are usually quoted)."""
    width = max([len("Mean over categories"), *map(len, categories)])
    lines = [f"{'Category':<{width}}{'videos':>8}{'J(M)':>9}{'F(M)':>9}"]
    for cat, v in categories.items():
        lines.append(f"{cat:<{width}}{v['videos']:>8}{v['J']['mean']:>9.4f}{v['F']['mean']:>9.4f}")
    j = float(np.mean([v["J"]["mean"] for v in categories.values()]))
    f = float(np.mean([v["F"]["mean"] for v in categories.values()]))
    lines.append(f"{'Mean over categories':<{width}}{'':>8}{j:>9.4f}{f:>9.4f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Protocol:
    """What a dataset's script scores and reports."""

    description: str
    dense: bool
    by_category: bool = False


PROTOCOLS = {
    "davis": Protocol("DAVIS-2016 UVOS: J and F (mean, recall, decay) and J&F.", dense=True),
    "fbms": Protocol("FBMS-59 UVOS: mean J (and F) over the annotated frames.", dense=False),
    "ytb_obj": Protocol(
        "YouTube-Objects UVOS: mean J (and F) over the annotated frames, per video and "
        "per category.",
        dense=False,
        by_category=True,
    ),
    "longvideo": Protocol(
        "LongVideos UVOS: mean J (and F) over the annotated frames.", dense=False
    ),
}


def build_parser(protocol: Protocol) -> argparse.ArgumentParser:
    """Flags shared by the four UVOS scripts."""
    parser = ArgumentParser(
        description=protocol.description + " (DESIGN.md §9)",
        examples="python test_scripts/%(prog)s --gt_path GT_DIR --result_path "
        "output/MTNet/UVOS/DATASET --json scores.json   # GT_DIR/<video>/<frame>.png",
    )
    parser.add_argument("--gt_path", type=Path, required=True, help="GT/<video>/<frame>.png")
    parser.add_argument(
        "--result_path", type=Path, required=True, help="RES/<video>/<frame>.png (same names)"
    )
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    parser.add_argument(
        "--missing_as_empty",
        action="store_true",
        help="count a missing prediction (or a video without results) as an empty mask "
        "instead of stopping",
    )
    parser.add_argument(
        "--videos",
        nargs="+",
        metavar="VIDEO",
        help="score these videos of the ground truth only (default: all of them)",
    )
    parser.add_argument(
        "--workers", type=int, default=usable_cpus(), help="processes (default: all CPUs)"
    )
    return parser


def uvos_main(argv: Sequence[str] | None, protocol_name: str) -> int:
    """Parse the flags of one UVOS script, score, print the tables, write the JSON."""
    protocol = PROTOCOLS[protocol_name]
    args = build_parser(protocol).parse_args(argv)
    check_json_path(args.json)
    summary = evaluate(
        args.gt_path,
        args.result_path,
        dense=protocol.dense,
        missing_as_empty=args.missing_as_empty,
        workers=args.workers,
        videos=args.videos,
    )
    print(format_table(summary, dense=protocol.dense))
    if protocol.by_category:
        summary["categories"] = category_means(summary)
        print(format_categories(summary["categories"]))
    if args.json:
        write_json(args.json, summary)
    return 0


def run_uvos(argv: Sequence[str] | None, protocol_name: str) -> int:
    """Entry point of the thin scripts: EvalError → one line on stderr, exit status 2."""
    return run_cli(lambda a: uvos_main(a, protocol_name), argv)
