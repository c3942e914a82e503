"""Probability maps -> 8-bit masks, exactly as the release's test loop (MTNET.md §8).

Notation: T frames of a clip, H, W the test size, h, w a frame's own size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def to_masks(prob: Tensor, sizes: tuple[tuple[int, int], ...], task: str) -> list[Tensor]:
    """``[T, 1, H, W]`` probabilities -> T uint8 ``[h, w]`` maps on the same device.

    Per frame: bilinear resize (align_corners=True) to the frame's own size, min-max
    normalisation ``(p - min) / (max - min + 1e-8)``; UVOS: ``> 0.5`` -> {0, 255}; VSOD:
    ``x 255``, clipped to [0, 255] and truncated to 8 bits.
    """
    masks = []
    for p, size in zip(prob.float(), sizes, strict=True):
        p = F.interpolate(p[None], size=size, mode="bilinear", align_corners=True)[0, 0]
        p = (p - p.min()) / (p.max() - p.min() + 1e-8)
        if task == "UVOS":
            masks.append((p > 0.5).to(torch.uint8) * 255)
        else:
            masks.append((p * 255).clamp(0, 255).to(torch.uint8))
    return masks
