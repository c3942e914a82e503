"""The numbers of the MTNet variants (DESIGN.md §2-§6).

``--encoder_name`` picks the ConvNeXt variant; everything else is shared by T and S.
"""

from __future__ import annotations

from dataclasses import dataclass

from util.errors import InputError, setting


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


def check_test_size(height: int, width: int, name: str = "test_size") -> None:
    """Raise ``InputError`` unless H and W are positive multiples of ``SIZE_MULTIPLE``; the
    message names the setting ``name`` as ``util.errors.setting`` does (the flag in a
    script, the parameter from Python)."""
    m = SIZE_MULTIPLE
    if height < m or width < m or height % m or width % m:
        raise InputError(
            f"{setting(name, (height, width))}: expected multiples of {m} "
            f"(the paper uses {setting(name, (512, 512))})"
        )


def spec_for(encoder: str) -> MTNetSpec:
    """The variant named by ``--encoder_name``; a ``ValueError`` names the choices otherwise."""
    try:
        return VARIANTS[encoder]
    except KeyError:
        raise ValueError(
            f"unknown encoder {encoder!r}: expected one of {', '.join(VARIANTS)}"
        ) from None
