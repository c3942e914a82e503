"""MTNet network: ``from model import MTNet``."""

from .build import VARIANTS, MTNetSpec
from .mtnet import MTNet

__all__ = ["MTNet", "MTNetSpec", "VARIANTS"]
