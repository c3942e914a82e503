"""Fusion of appearance and motion features at one scale (DESIGN.md §3).

Notation: N = B*T images, C_in the encoder width of the scale, D the hidden width (96),
h x w the scale's spatial size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import ChannelMLP, ConvBNReLU


class SpatialTerm(nn.Module):
    """conv 7x7 on [mean_c r, max_c r, mean_c f, max_c f]. ``-> [N, 1, h, w]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 1, 7, padding=3, bias=False)

    def forward(self, r: Tensor, f: Tensor) -> Tensor:
        stats = [r.mean(1, keepdim=True), r.amax(1, keepdim=True)]
        stats += [f.mean(1, keepdim=True), f.amax(1, keepdim=True)]
        return self.conv1(torch.cat(stats, dim=1))


class CoAttention(nn.Module):
    """a = sigmoid(channel term + spatial term), ``[N, D, h, w]`` (DESIGN.md §3 step 3)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.channel = ChannelMLP(2 * dim, dim // 4, dim)  # on [r, f]: 2D -> D/4 -> D
        self.spatial = SpatialTerm()

    def forward(self, r: Tensor, f: Tensor) -> Tensor:
        return torch.sigmoid(self.channel(torch.cat([r, f], dim=1)) + self.spatial(r, f))


class Fusion(nn.Module):
    """Gated co-attention fusion of an RGB and a flow feature map.

    Args:
        in_channels: encoder width C_in of this scale.
        dim: hidden width D.
    """

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.r_down = nn.Sequential(ConvBNReLU(in_channels, dim))
        self.f_down = nn.Sequential(ConvBNReLU(in_channels, dim))
        self.gate_conv = nn.Sequential(
            ConvBNReLU(2 * dim, dim),
            nn.Conv2d(dim, 2, 3, padding=1),
            nn.Sigmoid(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.attn_fusion = CoAttention(dim)

    def forward(self, r: Tensor, f: Tensor) -> Tensor:
        """``r, f: [N, C_in, h, w] -> [N, D, h, w]``."""
        r, f = self.r_down(r), self.f_down(f)
        g = self.gate_conv(torch.cat([r, f], dim=1))
        r, f = g[:, 0:1] * r, g[:, 1:2] * f
        a = self.attn_fusion(r, f)
        return (r * a + r) + (f * (1 - a) + f)
