"""MTNet: composes the encoder, fusion, temporal transformer, decoder and heads.

Notation: B clips of T frames, H x W input size (multiples of 64), D = 96; f4, f8, f16,
f32 are maps at strides 4, 8, 16, 32. Every 2-D operation runs on the B*T frames
flattened into one batch (DESIGN.md §1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .decoder import CascadedDecoder
from .encoder import Encoder
from .fusion import Fusion
from .heads import FPN, SegHead, upsample_to
from .temporal import TemporalTransformer
from .variants import SIZE_MULTIPLE, spec_for


class MTNet(nn.Module):
    """The MTNet network with the release's module names (see ``mtnet_state_dict.tsv``).

    The constructor reads no file: ``model.build_mtnet`` loads weights.

    Args:
        encoder: ``"convnext-tiny"`` (the paper's model) or ``"convnext-small"``.
    """

    def __init__(self, encoder: str = "convnext-tiny"):
        super().__init__()
        spec = spec_for(encoder)
        self.encoder_name = encoder
        self.backbone = Encoder(
            depths=spec.depths, drop_path_rate=spec.drop_path_rate, widths=spec.widths
        )
        for i, width in enumerate(self.backbone.widths, start=1):
            self.add_module(f"fusion{i}", Fusion(width, spec.dim))
        self.transformer3 = TemporalTransformer(
            spec.dim, spec.num_heads, spec.zone, spec.transformer_depth
        )
        self.transformer4 = TemporalTransformer(
            spec.dim, spec.num_heads, spec.zone, spec.transformer_depth
        )
        self.decoder = CascadedDecoder(spec.dim, spec.decoder_depth)
        self.fpn = FPN(spec.dim)
        self.cls2, self.cls3, self.cls4, self.cls5 = (SegHead(spec.dim) for _ in range(4))

    def encode(self, imgs: Tensor, flows: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """``[N, 3, H, W]`` frames and flow images -> their four feature maps each.

        The shared encoder sees frames and flows in one batch of 2N images.
        """
        feats = self.backbone(torch.cat([imgs, flows], dim=0))
        n = imgs.shape[0]
        return [f[:n] for f in feats], [f[n:] for f in feats]

    def fuse(self, rgb: list[Tensor], flow: list[Tensor]) -> list[Tensor]:
        """Per scale, ``[N, C_i, h, w]`` x 2 -> ``[N, D, h, w]``: [f4, f8, f16, f32]."""
        return [
            getattr(self, f"fusion{i}")(r, f)
            for i, (r, f) in enumerate(zip(rgb, flow, strict=True), 1)
        ]

    def mix_time(self, fused: list[Tensor], t: int) -> list[Tensor]:
        """Temporal transformer on f16 and f32 of each clip of ``t`` frames."""
        f4, f8, f16, f32 = fused
        return [f4, f8, self.transformer3(f16, t), self.transformer4(f32, t)]

    def decode(self, feats: list[Tensor], size: tuple[int, int]) -> list[Tensor]:
        """Decoder, FPN and heads -> logits ``[N, 1, H, W]``: main, then aux t3, t4, t5.

        In eval mode only the main head is computed.
        """
        pyramid = self.fpn(*self.decoder(*feats), all_levels=self.training)
        heads = (self.cls2, self.cls3, self.cls4, self.cls5)
        return [upsample_to(head(t), size) for head, t in zip(heads, pyramid, strict=False)]

    def forward(self, imgs: Tensor, flows: Tensor) -> Tensor | tuple[Tensor, ...]:
        """Segment clips.

        Args:
            imgs, flows: ``[B, T, 3, H, W]`` normalised frames and flow images.

        Returns:
            training mode: four logit maps ``[B*T, 1, H, W]`` (main first);
            eval mode: main probabilities ``[B*T, 1, H, W]``.
        """
        if imgs.dim() != 5 or imgs.shape != flows.shape:
            raise ValueError(
                f"imgs and flows must both be [B, T, 3, H, W]; got {list(imgs.shape)} "
                f"and {list(flows.shape)}"
            )
        b, t, _, h, w = imgs.shape
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"input size {h}x{w}: H and W must be multiples of {SIZE_MULTIPLE}")
        rgb, flow = self.encode(imgs.flatten(0, 1), flows.flatten(0, 1))
        logits = self.decode(self.mix_time(self.fuse(rgb, flow), t), (h, w))
        if self.training:
            return tuple(logits)
        return torch.sigmoid(logits[0])
