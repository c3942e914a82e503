"""The numbers of the MTNet variants (DESIGN.md §2-§6).

``--encoder_name`` picks the ConvNeXt variant; everything else is shared by T and S.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MTNetSpec:
    """Sizes of one MTNet variant."""

    depths: tuple[int, ...]
    drop_path_rate: float
    dim: int = 96
    num_heads: int = 4
    zone: int = 2
    transformer_depth: int = 4
    decoder_depth: int = 4


VARIANTS: dict[str, MTNetSpec] = {
    "convnext-tiny": MTNetSpec(depths=(3, 3, 9, 3), drop_path_rate=0.4),
    "convnext-small": MTNetSpec(depths=(3, 3, 27, 3), drop_path_rate=0.3),
}

# H and W must be multiples of this: the stride-32 map is split into a 2x2 window grid and
# reduced 2x by the summarised attention, so its height and width must be even.
SIZE_MULTIPLE = 64


ENCODERS = tuple(VARIANTS)


def spec_for(encoder: str) -> MTNetSpec:
    """The variant named by ``--encoder_name``; a ``ValueError`` names the choices otherwise."""
    try:
        return VARIANTS[encoder]
    except KeyError:
        raise ValueError(
            f"unknown encoder {encoder!r}: expected one of {', '.join(VARIANTS)}"
        ) from None
