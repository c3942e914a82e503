"""Shared plumbing of the evaluation scripts: reading masks, pairing frames, errors, workers.

Every problem with the input (missing folder or frame, unreadable image, size mismatch,
unknown name) is raised as :class:`EvalError`; :func:`run_cli` turns it into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from util import fileio
from util.errors import InputError, exit_status
from util.fileio import check_output_file
from util.image import IMAGE_EXTS, list_images, list_subfolders, read_grey, read_mask
from util.layout import mask_path

log = logging.getLogger(__name__)

# Lossy prediction files: JPEG artefacts around a mask read as foreground (value > 0).
LOSSY_EXTS = (".jpg", ".jpeg")

T = TypeVar("T")
R = TypeVar("R")


class EvalError(InputError):
    """Bad input for an evaluation; reported as a single line with exit status 2."""


def read_pair(pred_path: Path | None, gt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a prediction and its ground truth (``None``: an empty prediction); same size."""
    gt = read_mask(gt_path)
    if pred_path is None:
        return np.zeros_like(gt), gt
    pred = read_grey(pred_path)
    if pred.shape != gt.shape:
        raise EvalError(
            f"prediction {pred_path} is {pred.shape[1]}x{pred.shape[0]} but its ground truth "
            f"{gt_path} is {gt.shape[1]}x{gt.shape[0]}"
        )
    return pred, gt


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise an EvalError naming it."""
    if not path.is_dir():
        raise EvalError(f"{what} {path} is not a folder")
    return path


def require_result_dir(path: Path) -> Path:
    """The result folder, or an EvalError that shows the layout the scripts expect."""
    if not path.is_dir():
        raise EvalError(f"result folder {path} is not a folder: {_result_layout(path)}")
    return path


def _result_layout(path: Path) -> str:
    return (
        f"expected {path}/<video>/<frame>.png, as test.py writes them "
        f"(e.g. output/MTNet/UVOS/DAVIS16/<video>/<frame>.png)"
    )


def ground_truth_videos(gt_root: Path, frames_dir: Callable[[Path], Path] = Path) -> list[str]:
    """The videos of a ground-truth folder: every subfolder holding at least one mask
    (``frames_dir`` maps a video folder to the folder of its masks)."""
    return [v for v in list_subfolders(gt_root) if image_names(frames_dir(gt_root / v))]


def select_videos(
    gt_root: Path,
    videos: Sequence[str],
    wanted: Sequence[str] | None,
    result_root: Path,
    *,
    missing_as_empty: bool,
) -> list[str]:
    """The ground-truth ``videos`` to score: all of them, or those named by ``--videos``.

    Every video scored needs a result folder: a missing one stops the evaluation with one
    line naming it, or counts as empty predictions with ``missing_as_empty``. Without
    ``--videos``, a result folder that has no ground truth is an error too (a misnamed
    video would otherwise go unscored).
    """
    if not videos:
        raise EvalError(f"no video folders in ground-truth folder {gt_root} (none holds a mask)")
    if wanted:
        unknown = [v for v in dict.fromkeys(wanted) if v not in videos]
        if unknown:
            raise EvalError(
                f"--videos: no ground truth for {', '.join(unknown)} in {gt_root} "
                f"(its videos: {_names(videos)})"
            )
        chosen = set(wanted)
        videos = [v for v in videos if v in chosen]
    else:
        extra = [v for v in list_subfolders(result_root) if v not in videos]
        if extra:
            raise EvalError(
                f"result folder {result_root / extra[0]} has no ground truth "
                f"{gt_root / extra[0]} ({len(extra)} such: {_names(extra)}); score the "
                f"others with --videos"
            )
    missing = [v for v in videos if not (result_root / v).is_dir()]
    if missing and not list_subfolders(result_root):
        raise EvalError(
            f"no video folders in result folder {result_root}: {_result_layout(result_root)}"
        )
    if missing and not missing_as_empty:
        raise EvalError(
            f"{len(missing)} of {len(videos)} videos have no result folder in {result_root}: "
            f"{_names(missing)} (score a subset with --videos, or count them as empty "
            f"predictions with --missing_as_empty)"
        )
    return videos


def _names(names: Sequence[str], most: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, ... (12 in all)``."""
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} in all)"


def image_names(folder: Path) -> list[str]:
    """Names of the visible image files of ``folder`` in frame order (``util.image``; the
    release's text order for zero-padded names)."""
    return [p.name for p in list_images(folder, IMAGE_EXTS)]


def match_predictions(
    gt_dir: Path, gt_names: Sequence[str], pred_dir: Path, missing_as_empty: bool
) -> list[Path | None]:
    """The prediction of each ground-truth frame: the image in ``pred_dir`` of the same stem.

    A missing one is an EvalError naming it, or ``None`` (an empty mask) when
    ``missing_as_empty``; a missing ``pred_dir`` counts as all frames missing.
    """
    by_stem = {p.stem: p for p in list_images(pred_dir)} if pred_dir.is_dir() else {}
    matched: list[Path | None] = []
    for name in gt_names:
        pred = by_stem.get(Path(name).stem)
        if pred is None and not missing_as_empty:
            raise EvalError(
                f"no prediction {mask_path(pred_dir, Path(name).stem)} "
                f"for ground-truth frame {gt_dir / name}"
            )
        matched.append(pred)
    warn_lossy(pred_dir, matched)
    return matched


def warn_lossy(pred_dir: Path, preds: Sequence[Path | None]) -> None:
    """One warning for a folder whose predictions are JPEG files (lossy: the artefacts
    around a mask count as foreground and move the scores)."""
    lossy = next((p for p in preds if p is not None and p.suffix.lower() in LOSSY_EXTS), None)
    if lossy is not None:
        warn(
            f"{pred_dir}: predictions stored as JPEG (lossy; first: {lossy.name}): compression "
            f"artefacts change the scores; save predictions as PNG (test.py does)"
        )


def map_ordered(
    fn: Callable[[T], R], items: Sequence[T], workers: int, desc: str = "videos"
) -> list[R]:
    """``[fn(x) for x in items]``, over ``workers`` processes when more than one.

    Results and errors come back in the order of ``items``, so the first failing item
    (in that order) is the one reported.
    """
    workers = max(1, min(workers, len(items)))
    bar = tqdm(total=len(items), desc=desc, disable=None, leave=False)
    try:
        if workers == 1:
            return [_tick(bar, fn(item)) for item in items]
        # One OpenCV thread per worker (the pool already uses every core), set before the
        # fork: a child that changes it may deadlock on a thread pool its parent started.
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        pool = ProcessPoolExecutor(workers)
        try:
            return [_tick(bar, r) for r in pool.map(fn, items)]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            cv2.setNumThreads(threads)
    finally:
        bar.close()


def _tick(bar: tqdm, result: R) -> R:
    bar.update()
    return result


def json_ready(obj: Any) -> Any:
    """Nested dicts and lists with every NaN float (an undefined statistic) as ``None``."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NaN as null), atomically."""
    fileio.write_json(path, json_ready(obj))


def check_json_path(path: Path | None) -> None:
    """``--json``: a file that can be written, checked before any scoring (InputError)."""
    if path is not None:
        check_output_file(path, "--json")


def warn(message: str) -> None:
    """A note about the input that does not stop the evaluation, on stderr."""
    log.warning(message)


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None) -> int:
    """Run a script's ``main``; an EvalError (or another user error) becomes one line on
    stderr and exit status 2. Warnings go to stderr as ``warning: ...`` lines."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    return exit_status(None, lambda: main(argv))
