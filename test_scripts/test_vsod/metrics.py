"""VSOD metrics of DESIGN.md §9 (MAE, max F, max E, S-measure) from 8-bit histograms.

Notation: a frame's prediction holds 8-bit levels ``a`` (the map is a/255) and its ground
truth levels ``b`` (b/255); N pixels. Every threshold of the release compares float32 maps
to a float32 threshold, which in 8-bit terms keeps the levels ``a >= cut``; so one joint
histogram of (b, a) per frame gives TP, |binary| and the E-measure sums of all 256
thresholds at once. Sums are exact (integers) or float64; the release's float32 arithmetic
differs from them by rounding only (well below 1e-6).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from test_scripts.evalio import read_pair

N_THRESHOLDS = 256
LEVELS = np.arange(256, dtype=np.int64)
ABS_DIFF = np.abs(LEVELS[None, :] - LEVELS[:, None])  # |a − b| for every (b, a)


# The release's 256 thresholds are ``torch.linspace(0, 1 - 1e-10, 256)`` in float32 (its
# last value rounds to 1.0), compared with ``v / 255`` in float32 as ToTensor gives. Threshold
# i keeps the levels >= i, except at these 63 indices, where it lies one float32 step above
# i / 255 and keeps the levels >= i + 1 (DESIGN.md §9). Written out so that scoring needs
# no torch; the test suite derives them again from torch's own linspace.
ONE_LEVEL_HIGHER = (3, 6, 7, *range(12, 16), *range(24, 32), *range(48, 64), *range(96, 128))


@functools.lru_cache(maxsize=1)
def threshold_cuts() -> np.ndarray:
    """For each release threshold i, the lowest 8-bit level it keeps (``ONE_LEVEL_HIGHER``)."""
    cuts = np.arange(N_THRESHOLDS, dtype=np.int64)
    cuts[list(ONE_LEVEL_HIGHER)] += 1
    return cuts


@functools.lru_cache(maxsize=1)
def half_level() -> int:
    """The lowest level with b/255 >= 0.5 in float32: S binarises the ground truth there."""
    values = np.arange(256, dtype=np.float32) / np.float32(255)
    return int(np.argmax(values >= np.float32(0.5)))


def joint_histogram(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Pixel counts ``hist[b, a]`` of ground-truth level b and prediction level a."""
    keys = (gt.astype(np.intp) << 8) | pred  # intp: bincount's own index type, no copy
    return np.bincount(keys.ravel(), minlength=65536).reshape(256, 256)


def fe_curves(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F-measure (β² = 0.3) and E-measure of one frame at the 256 release thresholds."""
    n = hist.sum()
    present = np.flatnonzero(hist.sum(axis=1))  # ground-truth levels that occur
    h = hist[present]
    g = present / 255.0
    count = h.sum(axis=1)
    tail = np.zeros((len(present), 257), dtype=np.int64)  # tail[l, c]: pixels with a >= c
    tail[:, :256] = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]
    kept = tail[:, threshold_cuts()]  # [levels, thresholds]: binary = 1
    n_binary = kept.sum(axis=0)
    tp, gt_mass = g @ kept, g @ count
    precision = tp / (n_binary + 1e-20)
    recall = tp / (gt_mass + 1e-20)
    f = 1.3 * precision * recall / (0.3 * precision + recall + 1e-10)

    phi_g = (g - gt_mass / n)[:, None]
    e_sum = np.zeros(N_THRESHOLDS)
    for value, pixels in ((1.0, kept), (0.0, count[:, None] - kept)):
        phi_p = value - n_binary[None, :] / n
        xi = 2 * phi_g * phi_p / (phi_g**2 + phi_p**2 + 1e-20)
        e_sum += (pixels * (xi + 1) ** 2 / 4).sum(axis=0)
    return f, e_sum / (n - 1 + 1e-20)


def _object_score(counts: np.ndarray) -> float:
    """2x̄/(x̄² + 1 + σ + 1e-20) of the values level/255 weighted by ``counts``.

    σ is the unbiased standard deviation, taken as 0 for a single pixel (the release
    would give NaN there); an empty set scores 0 (its weight is 0 anyway).
    """
    n = int(counts.sum())
    if n == 0:
        return 0.0
    s1, s2 = int(counts @ LEVELS), int(counts @ LEVELS**2)
    mean = s1 / (255 * n)
    sigma = math.sqrt((n * s2 - s1 * s1) / (255**2 * n * (n - 1))) if n > 1 else 0.0
    return 2 * mean / (mean * mean + 1 + sigma + 1e-20)


def s_object(hist: np.ndarray) -> float:
    """Object term: foreground from pred on the object, background from 1 − pred elsewhere."""
    fg, bg = hist[half_level() :].sum(axis=0), hist[: half_level()].sum(axis=0)
    u = fg.sum() / hist.sum()
    return u * _object_score(fg) + (1 - u) * _object_score(bg[::-1])


def _round_half_even(num: int, den: int) -> int:
    """num/den rounded to the nearest integer, ties to even (torch.round), exactly."""
    q, r = divmod(num, den)
    return q + (2 * r > den or (2 * r == den and q % 2 == 1))


def _block_ssim(n: int, sa: int, saa: int, sb: int, sab: int) -> float:
    """The release's block SSIM from exact sums over the block: Σa, Σa², Σb, Σab (b ∈ {0,1}).

    Variances and covariance use (N − 1 + 1e-20) normalisers; α = 4x̄ȳσxy,
    β = (x̄² + ȳ²)(σx² + σy²); α/(β + 1e-20) if α ≠ 0, 1 if α = β = 0, else 0.
    The centred sums are exact integers, so α and β are zero exactly when they should be.
    """
    x, y = sa / (255 * n), sb / n
    norm = n - 1 + 1e-20
    sxx = (n * saa - sa * sa) / (255**2 * n) / norm
    syy = (n * sb - sb * sb) / n / norm
    sxy = (n * sab - sa * sb) / (255 * n) / norm
    alpha = 4 * x * y * sxy
    beta = (x * x + y * y) * (sxx + syy)
    if alpha != 0:
        return alpha / (beta + 1e-20)
    return 1.0 if beta == 0 else 0.0


def s_region(pred: np.ndarray, fg: np.ndarray) -> float:
    """Region term: block SSIM in the four quadrants around the ground-truth centroid.

    Centroid from 0-based indices rounded half to even (X column, Y row; the image centre
    for an empty mask). An empty block (mass in the first row or column) has weight 0
    where the release gives NaN (DESIGN.md §9).
    """
    h, w = fg.shape
    n_fg = int(np.count_nonzero(fg))
    if n_fg == 0:
        x, y = round(w / 2), round(h / 2)
    else:
        x = _round_half_even(int(np.count_nonzero(fg, axis=0) @ np.arange(w)), n_fg)
        y = _round_half_even(int(np.count_nonzero(fg, axis=1) @ np.arange(h)), n_fg)
    area = h * w
    w1, w2, w3 = x * y / area, (w - x) * y / area, x * (h - y) / area
    weights = (w1, w2, w3, 1 - w1 - w2 - w3)
    planes = (pred, pred.astype(np.int32) ** 2, fg, pred * fg)
    blocks = [(slice(0, y), slice(0, x)), (slice(0, y), slice(x, w))]
    blocks += [(slice(y, h), slice(0, x)), (slice(y, h), slice(x, w))]
    score = 0.0
    for weight, (rows, cols) in zip(weights, blocks, strict=True):
        n = (rows.stop - rows.start) * (cols.stop - cols.start)
        if n:
            sums = [int(p[rows, cols].sum(dtype=np.int64)) for p in planes]
            score += weight * _block_ssim(n, *sums)
    return score


def s_measure(pred: np.ndarray, gt: np.ndarray, hist: np.ndarray) -> float:
    """S-measure (α = 0.5), decided on the raw mean of the ground truth (DESIGN.md §9)."""
    n = pred.size
    gt_sum = int(hist.sum(axis=1) @ LEVELS)  # Σb; mean(gt) = Σb / (255 N)
    pred_mean = int(hist.sum(axis=0) @ LEVELS) / (255 * n)
    if gt_sum < 1e-4 * 255 * n:
        return 1 - pred_mean
    if gt_sum == 255 * n:
        return pred_mean
    fg = gt >= half_level()
    return max(0.5 * s_object(hist) + 0.5 * s_region(pred, fg), 0.0)


@dataclass
class FrameScores:
    """One frame: Σ|a − b| (in levels), pixel count, F and E curves, S."""

    abs_err: int
    pixels: int
    f: np.ndarray
    e: np.ndarray
    s: float


def frame_scores(pred: np.ndarray, gt: np.ndarray) -> FrameScores:
    """All four metrics' per-frame quantities for 8-bit maps of equal size."""
    hist = joint_histogram(pred, gt)
    abs_err = int((hist * ABS_DIFF).sum())
    f, e = fe_curves(hist)
    return FrameScores(abs_err, pred.size, f, e, s_measure(pred, gt, hist))


@dataclass
class VideoScores:
    """Running sums over the frames of one video."""

    name: str
    gt_scaled: bool = False  # ground truth stored as 0/1, scored as 0/255
    frames: int = 0
    abs_err: int = 0
    pixels: int = 0
    f_sum: np.ndarray = field(default_factory=lambda: np.zeros(N_THRESHOLDS))
    e_sum: np.ndarray = field(default_factory=lambda: np.zeros(N_THRESHOLDS))
    s_sum: float = 0.0

    def add(self, frame: FrameScores) -> None:
        """Accumulate one frame."""
        self.frames += 1
        self.abs_err += frame.abs_err
        self.pixels += frame.pixels
        self.f_sum += frame.f
        self.e_sum += frame.e
        self.s_sum += frame.s

    @property
    def mae(self) -> float:
        """Mean |pred − gt| over all pixels of all frames of the video."""
        return self.abs_err / (255 * self.pixels)


@dataclass(frozen=True)
class VideoTask:
    """The scored ground-truth frames of one video and their predictions (``None``: empty)."""

    name: str
    gt_paths: tuple[Path, ...]
    pred_paths: tuple[Path | None, ...]


def score_video(task: VideoTask) -> VideoScores:
    """Read and score every frame pair of one video.

    A video whose ground truth never exceeds 1 (masks stored as 0/1, as some data sets
    ship them) is scored as 0/255 and flagged ``gt_scaled``; otherwise the ground truth
    is taken as stored, as the release does. Frames peaking at 1 are scored as 0/255
    until a frame above 1 shows that the video is not 0/1; those are then scored again.
    """
    frames: list[FrameScores] = []
    scaled: list[int] = []  # frames whose ground truth peaks at 1, scored as 0/255
    zero_one = True  # no ground-truth value above 1 so far
    for i, (pred_path, gt_path) in enumerate(zip(task.pred_paths, task.gt_paths, strict=True)):
        pred, gt = read_pair(pred_path, gt_path)
        peak = int(gt.max())
        if zero_one and peak > 1:
            zero_one = False
            for j in scaled:
                frames[j] = frame_scores(*read_pair(task.pred_paths[j], task.gt_paths[j]))
        if zero_one and peak == 1:
            scaled.append(i)
            gt = gt * np.uint8(255)
        frames.append(frame_scores(pred, gt))
    scores = VideoScores(task.name, gt_scaled=zero_one and bool(scaled))
    for frame in frames:
        scores.add(frame)
    return scores


def dataset_scores(videos: list[VideoScores]) -> dict[str, float]:
    """Per-video means, then the mean over videos; F and E: max of the mean curve."""
    f_curve = np.mean([v.f_sum / v.frames for v in videos], axis=0)
    e_curve = np.mean([v.e_sum / v.frames for v in videos], axis=0)
    return {
        "MAE": float(np.mean([v.mae for v in videos])),
        "maxF": float(f_curve.max()),
        "maxE": float(e_curve.max()),
        "S": float(np.mean([v.s_sum / v.frames for v in videos])),
    }
