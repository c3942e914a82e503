"""The numbers of the MTNet variants (DESIGN.md §2-§6).

``--encoder_name`` picks the ConvNeXt variant; everything else is shared by T and S.
``TEST_VARIANTS`` holds a network of the same code with small widths and depths, for the
test suite only: it is no ``--encoder_name`` choice, but a file of its weights loads like
any other (``build_mtnet(None, weights=...)``, ``test.py --test_model``), its variant read
off the keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from util.errors import InputError, setting

# ConvNeXt-T and -S channels per encoder stage.
CONVNEXT_WIDTHS = (96, 192, 384, 768)


@dataclass(frozen=True)
class MTNetSpec:
    """Sizes of one MTNet variant; the defaults are the paper's.

    Attributes:
        depths: ConvNeXt blocks per encoder stage.
        drop_path_rate: the last encoder block's stochastic-depth rate.
        widths: encoder channels per stage (C of f4, f8, f16, f32).
        dim: hidden width D of fusion, transformer, decoder and heads.
        num_heads: attention heads of the temporal transformer.
        zone: windows per side of the local attention.
        transformer_depth: layers of each temporal transformer.
        decoder_depth: layers of each decoder stage.
    """

    depths: tuple[int, ...]
    drop_path_rate: float
    widths: tuple[int, ...] = CONVNEXT_WIDTHS
    dim: int = 96
    num_heads: int = 4
    zone: int = 2
    transformer_depth: int = 4
    decoder_depth: int = 4


VARIANTS: dict[str, MTNetSpec] = {
    "convnext-tiny": MTNetSpec(depths=(3, 3, 9, 3), drop_path_rate=0.4),
    "convnext-small": MTNetSpec(depths=(3, 3, 27, 3), drop_path_rate=0.3),
}

# For tests only: the same code at a fraction of the cost, for every test that checks the
# pipeline rather than the paper's numbers. Its encoder depths tell its files apart.
TEST_VARIANT = "mtnet-test"
TEST_VARIANTS: dict[str, MTNetSpec] = {
    TEST_VARIANT: MTNetSpec(
        depths=(1, 1, 1, 1),
        drop_path_rate=0.4,
        widths=(16, 32, 64, 128),
        dim=32,
        transformer_depth=1,
        decoder_depth=1,
    ),
}

# H and W must be multiples of this: the stride-32 map is split into a 2x2 window grid and
# reduced 2x by the summarised attention, so its height and width must be even.
SIZE_MULTIPLE = 64

ENCODERS = tuple(VARIANTS)
DEFAULT_VARIANT = "convnext-tiny"  # the paper's model


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
    """The variant named by ``--encoder_name`` (or a test variant); a ``ValueError`` names
    the choices otherwise."""
    try:
        return {**VARIANTS, **TEST_VARIANTS}[encoder]
    except KeyError:
        raise ValueError(
            f"unknown encoder {encoder!r}: expected one of {', '.join(VARIANTS)}"
        ) from None
