"""Scores of predicted masks against ground truth, shared by validation and the benchmarks."""

from __future__ import annotations

import torch
from torch import Tensor


def frame_ious(prob: Tensor, target: Tensor) -> Tensor:
    """Per-frame IoU of ``prob > 0.5`` and ``target > 0.5``: ``[N, 1, H, W]`` x 2 -> ``[N]``;
    1 where both are empty (DESIGN.md §7)."""
    pred = (prob > 0.5).flatten(1)
    gt = (target > 0.5).flatten(1)
    inter = (pred & gt).sum(1).float()
    union = (pred | gt).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
