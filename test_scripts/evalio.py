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
from util.image import IMAGE_EXTS, list_images, read_grey, read_mask
from util.layout import mask_path

log = logging.getLogger(__name__)

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
    return matched


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
