"""Probability maps -> 8-bit masks, exactly as the release's test loop (DESIGN.md §8).

Notation: T frames of a clip, H, W the test size, h, w a frame's own size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_probs(prob: Tensor, sizes: tuple[tuple[int, int], ...]) -> list[Tensor]:
    """``[T, 1, H, W]`` probabilities -> T float32 ``[h, w]`` maps, each resized bilinearly
    (align_corners=True) to its frame's own size."""
    return [
        F.interpolate(p[None], size=size, mode="bilinear", align_corners=True)[0, 0]
        for p, size in zip(prob.float(), sizes, strict=True)
    ]


def prob_to_mask(p: Tensor, task: str) -> Tensor:
    """One ``[h, w]`` probability map -> uint8 ``[h, w]`` on the same device.

    Min-max normalisation ``(p - min) / (max - min + 1e-8)``; UVOS: ``> 0.5`` -> {0, 255};
    VSOD: ``x 255``, clipped to [0, 255] and truncated to 8 bits.
    """
    p = (p - p.min()) / (p.max() - p.min() + 1e-8)
    if task == "UVOS":
        return (p > 0.5).to(torch.uint8) * 255
    return (p * 255).clamp(0, 255).to(torch.uint8)


def to_masks(prob: Tensor, sizes: tuple[tuple[int, int], ...], task: str) -> list[Tensor]:
    """``[T, 1, H, W]`` probabilities -> T uint8 ``[h, w]`` masks (resize, then
    :func:`prob_to_mask`)."""
    return [prob_to_mask(p, task) for p in resize_probs(prob, sizes)]
