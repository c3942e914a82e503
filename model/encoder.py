"""Shared ConvNeXt encoder for frames and flow images (DESIGN.md §2).

Notation: B batch, T frames, H x W input size; f4, f8, f16, f32 are feature maps at
strides 4, 8, 16 and 32 with C = 96, 192, 384, 768 channels (``CONVNEXT_WIDTHS``).

The body is timm's ConvNeXt (``features_only``), built with layer scale 1.0 and the
spec's drop-path rates, never with downloaded weights. The extra ``norm0..3`` are
MTNet's own: a channels-first LayerNorm on each stage output, applied as a side branch
(the un-normalised stage output feeds the next downsampling layer).
"""

from __future__ import annotations

import timm
from timm.layers import LayerNorm2d
from torch import Tensor, nn

from .variants import CONVNEXT_WIDTHS


class Encoder(nn.Module):
    """ConvNeXt body plus per-stage LayerNorms.

    Args:
        depths: blocks per stage, (3, 3, 9, 3) for ConvNeXt-T and (3, 3, 27, 3) for S.
        drop_path_rate: the last block's stochastic-depth rate (linspace from 0).
        widths: channels per stage, ConvNeXt's ``CONVNEXT_WIDTHS`` for T and S.
    """

    def __init__(
        self,
        *,
        depths: tuple[int, ...],
        drop_path_rate: float,
        widths: tuple[int, ...] = CONVNEXT_WIDTHS,
    ) -> None:
        super().__init__()
        self._widths = tuple(widths)
        self.body = timm.create_model(
            "convnext_tiny",
            pretrained=False,
            features_only=True,
            depths=depths,
            dims=self._widths,
            ls_init_value=1.0,
            drop_path_rate=drop_path_rate,
        )
        for i, width in enumerate(self._widths):
            self.add_module(f"norm{i}", LayerNorm2d(width, eps=1e-6))

    @property
    def widths(self) -> tuple[int, ...]:
        return self._widths

    def forward(self, x: Tensor) -> list[Tensor]:
        """``[N, 3, H, W] -> [f4, f8, f16, f32]``, each ``[N, C_i, H / s_i, W / s_i]``."""
        stages = self.body(x)
        return [getattr(self, f"norm{i}")(f) for i, f in enumerate(stages)]
