"""MTNet network: ``from model import MTNet, build_mtnet``."""

from .build import build_mtnet, variant_of_file
from .mtnet import MTNet
from .variants import ENCODERS, SIZE_MULTIPLE, VARIANTS, MTNetSpec

__all__ = [
    "ENCODERS",
    "MTNet",
    "MTNetSpec",
    "SIZE_MULTIPLE",
    "VARIANTS",
    "build_mtnet",
    "variant_of_file",
]
