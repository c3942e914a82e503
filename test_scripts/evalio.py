"""Shared plumbing of the evaluation scripts: reading masks, pairing frames, errors, workers.

Every problem with the input (missing folder or frame, unreadable image, size mismatch,
unknown name) is raised as :class:`EvalError`; :func:`run_cli` turns it into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from util.errors import InputError
from util.fileio import atomic_path, check_output_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class EvalError(Exception):
    """Bad input for an evaluation; reported as a single line with exit status 2."""


def read_grey(path: Path) -> np.ndarray:
    """Read a mask, prediction or ground truth as 8-bit grey ``[h, w]`` (MTNET.md §9).

    8-bit grey: as stored (PNGs decoded by OpenCV, the usual case and the fastest).
    16-bit grey: scaled to 8 bits, ``round(v / 257)``, so a 16-bit copy of an 8-bit map
    reads as that map. Palette and colour: PIL's ``convert("L")`` luminance, as in the
    release. With an alpha channel: that luminance over black (times alpha / 255). An
    unreadable, cut-off or corrupt file is an :class:`EvalError` naming it.
    """
    if path.suffix.lower() == ".png":
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # None for a cut-off PNG
        if img is not None and img.ndim == 2 and img.dtype == np.uint8:
            return img
    try:
        with Image.open(path) as pil:
            pil.load()  # decodes in full: a cut-off file raises here
            if pil.mode.startswith("I"):  # 16-bit grey (I;16, I;16B) or 32-bit integer
                wide = np.asarray(pil).astype(np.int64)
                return np.clip((wide + 128) // 257, 0, 255).astype(np.uint8)
            grey = np.asarray(pil.convert("L"))
            if "A" not in pil.getbands():
                return grey
            alpha = np.asarray(pil.getchannel("A"), dtype=np.uint16)
            return ((grey * alpha + 127) // 255).astype(np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise EvalError(f"cannot read image {path}: {exc}") from None


def read_pair(pred_path: Path | None, gt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a prediction and its ground truth (``None``: an empty prediction); same size."""
    gt = read_grey(gt_path)
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


def subfolders(path: Path) -> list[str]:
    """Sorted names of the visible subfolders of ``path``."""
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_names(folder: Path) -> list[str]:
    """Sorted names of the visible image files of ``folder`` (Python's sort, as the release)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def match_predictions(
    gt_dir: Path, gt_names: Sequence[str], pred_dir: Path, missing_as_empty: bool
) -> list[Path | None]:
    """The prediction of each ground-truth frame: the image in ``pred_dir`` of the same stem.

    A missing one is an EvalError naming it, or ``None`` (an empty mask) when
    ``missing_as_empty``; a missing ``pred_dir`` counts as all frames missing.
    """
    by_stem: dict[str, Path] = {}
    if pred_dir.is_dir():
        for name in image_names(pred_dir):  # a .png wins over another image of the same stem
            stem = Path(name).stem
            if stem not in by_stem or name.lower().endswith(".png"):
                by_stem[stem] = pred_dir / name
    matched: list[Path | None] = []
    for name in gt_names:
        pred = by_stem.get(Path(name).stem)
        if pred is None and not missing_as_empty:
            raise EvalError(
                f"no prediction {pred_dir / (Path(name).stem + '.png')} "
                f"for ground-truth frame {gt_dir / name}"
            )
        matched.append(pred)
    return matched


def _init_worker() -> None:
    """One OpenCV thread per worker process: the pool already uses every core."""
    cv2.setNumThreads(1)


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
        pool = ProcessPoolExecutor(workers, initializer=_init_worker)
        try:
            return [_tick(bar, r) for r in pool.map(fn, items)]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()


def _tick(bar: tqdm, result: R) -> R:
    bar.update()
    return result


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_ready(obj), indent=2, allow_nan=False) + "\n")


def check_json_path(path: Path | None) -> None:
    """``--json``: a file that can be written, checked before any scoring (InputError)."""
    if path is not None:
        check_output_file(path, "--json")


def warn(message: str) -> None:
    """A note about the input that does not stop the evaluation, on stderr."""
    log.warning(message)


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Run a script's ``main``; an EvalError (or another user error) becomes one line on
    stderr and exit status 2. Warnings go to stderr as ``warning: ...`` lines."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        return main(argv)
    except (EvalError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
