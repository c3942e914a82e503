"""Image grids of training progress: frame, flow image, ground truth, prediction."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from util.fileio import atomic_path
from util.image import denormalize


def progress_grid(
    imgs: Tensor, flows: Tensor, masks: Tensor, probs: Tensor, rows: int = 6
) -> Tensor:
    """One row per frame (at most ``rows``): frame, flow, ground truth, prediction.

    Args:
        imgs, flows: ``[B, T, 3, H, W]`` normalised; masks, probs: ``[B*T, 1, H, W]`` in [0, 1].

    Returns:
        a ``[3, H', W']`` image in [0, 1].
    """
    frames = denormalize(imgs.flatten(0, 1)[:rows].float())
    flow_images = denormalize(flows.flatten(0, 1)[:rows].float())
    gt = masks[:rows].float().expand(-1, 3, -1, -1)
    pred = probs[:rows].float().expand(-1, 3, -1, -1)
    tiles = torch.stack([frames, flow_images, gt, pred], dim=1).flatten(0, 1)
    return make_grid(tiles.cpu(), nrow=4, padding=2, pad_value=1.0)


def save_grid(grid: Tensor, path: Path) -> None:
    """Write a ``[3, H, W]`` grid as PNG, atomically."""
    with atomic_path(path) as tmp:
        save_image(grid, tmp)
