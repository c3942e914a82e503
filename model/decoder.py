"""Cascaded decoder (DESIGN.md §5).

Notation: N = B*T images, D = 96 channels; stage 1 runs on f32 (stride 32), stage 2 on
f16, stage 3 on f8, stage 4 on f4. ``last`` is the previous stage's final output.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import FFN, ChannelMLP


def _dw_bn_relu(dim: int) -> nn.Sequential:
    """Depthwise conv 7x7 (bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
        nn.BatchNorm2d(dim),
        nn.ReLU(inplace=True),
    )


class EarlyLateAttention(nn.Module):
    """Steps 1-3 of a decoder layer; ``late_stage`` exists only when the stage has a ``last``."""

    def __init__(self, dim: int, *, takes_last: bool) -> None:
        super().__init__()
        self.early_stage = _dw_bn_relu(dim)
        self.early_ca = ChannelMLP(dim, dim // 16, dim)  # channel attention, D -> D/16 -> D
        self.late_stage = _dw_bn_relu(dim) if takes_last else None

    def forward(self, x: Tensor, last: Tensor | None) -> Tensor:
        """``x: [N, D, h, w]``, ``last: [N, D, h', w']`` or None ``-> [N, D, h, w]``."""
        e = self.early_stage(x)
        e = e * torch.sigmoid(self.early_ca(e))
        if self.late_stage is not None:
            last = F.interpolate(last, size=x.shape[-2:], mode="bilinear", align_corners=True)
            e = self.late_stage(e + last)
        return e


class DecoderLayer(nn.Module):
    """x <- x + attention(x, last); x <- x + FFN(LayerNorm(x)) over channels."""

    def __init__(self, dim: int, *, takes_last: bool) -> None:
        super().__init__()
        self.attention = EarlyLateAttention(dim, takes_last=takes_last)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, 4 * dim)

    def forward(self, x: Tensor, last: Tensor | None) -> Tensor:
        """``[N, D, h, w] -> [N, D, h, w]``."""
        x = x + self.attention(x, last)
        tokens = x.permute(0, 2, 3, 1)
        tokens = tokens + self.ffn(self.norm2(tokens))
        return tokens.permute(0, 3, 1, 2)


class DecoderStage(nn.Module):
    """``depth`` chained layers that all receive the same ``last``.

    The layers start as copies of one layer (identical weights), as in the release (§7).
    """

    def __init__(self, dim: int, depth: int, *, takes_last: bool) -> None:
        super().__init__()
        layer = DecoderLayer(dim, takes_last=takes_last)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(depth))

    def forward(self, x: Tensor, last: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, last)
        return x


class CascadedDecoder(nn.Module):
    """Four stages from coarse to fine, each fed the previous stage's output."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        self.stage1 = DecoderStage(dim, depth, takes_last=False)
        self.stage2 = DecoderStage(dim, depth, takes_last=True)
        self.stage3 = DecoderStage(dim, depth, takes_last=True)
        self.stage4 = DecoderStage(dim, depth, takes_last=True)

    def forward(self, f4: Tensor, f8: Tensor, f16: Tensor, f32: Tensor) -> list[Tensor]:
        """Fused maps ``[N, D, H/s, W/s]`` -> ``[p2, p3, p4, p5]`` (strides 4, 8, 16, 32)."""
        p5 = self.stage1(f32)
        p4 = self.stage2(f16, p5)
        p3 = self.stage3(f8, p4)
        p2 = self.stage4(f4, p3)
        return [p2, p3, p4, p5]
