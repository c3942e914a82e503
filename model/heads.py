"""Feature pyramid and segmentation heads (DESIGN.md §6).

Notation: N = B*T images, D = 96 channels; p2..p5 are decoder outputs at strides 4, 8,
16, 32 and t2..t5 the pyramid levels built from them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def upsample_to(x: Tensor, size: tuple[int, int] | list[int]) -> Tensor:
    """Bilinear resize with ``align_corners=True``, the release's choice everywhere."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _conv_bn_relu(dim: int, kernel_size: int) -> nn.Sequential:
    """conv (bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2),
        nn.BatchNorm2d(dim),
        nn.ReLU(inplace=True),
    )


class FPN(nn.Module):
    """Top-down pathway with 1x1 laterals, then 3x3 smoothing of t4, t3, t2."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.toplayer = nn.Conv2d(dim, dim, 1)
        self.smooth1 = _conv_bn_relu(dim, 3)
        self.smooth2 = _conv_bn_relu(dim, 3)
        self.smooth3 = _conv_bn_relu(dim, 3)
        self.latlayer1 = _conv_bn_relu(dim, 1)
        self.latlayer2 = _conv_bn_relu(dim, 1)
        self.latlayer3 = _conv_bn_relu(dim, 1)

    def forward(self, p2: Tensor, p3: Tensor, p4: Tensor, p5: Tensor, *, all_levels: bool = True):
        """``p2..p5: [N, D, H/s, W/s]`` -> ``[t2, t3, t4, t5]``, or ``[t2]`` alone.

        The smoothing of t3 and t4 feeds only the auxiliary heads, so it is skipped when
        ``all_levels`` is False (eval mode); t2 is unaffected.
        """
        t5 = self.toplayer(p5)
        t4 = upsample_to(t5, p4.shape[-2:]) + self.latlayer1(p4)
        t3 = upsample_to(t4, p3.shape[-2:]) + self.latlayer2(p3)
        t2 = self.smooth3(upsample_to(t3, p2.shape[-2:]) + self.latlayer3(p2))
        if not all_levels:
            return [t2]
        return [t2, self.smooth2(t3), self.smooth1(t4), t5]


class SegHead(nn.Sequential):
    """conv 3x3 (bias) -> BatchNorm -> ReLU -> conv 1x1 to one logit. ``[N, D, h, w] -> [N, 1, h, w]``."""

    def __init__(self, dim: int) -> None:
        super().__init__(
            nn.Conv2d(dim, dim, 3, padding=1),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, 1, 1),
        )
