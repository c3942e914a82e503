"""MTNet network: ``from model import MTNet, build_mtnet``.

The names load on first use (PEP 562), so ``model.variants`` (the variants' numbers, read
by the command lines) imports without torch.
"""

from __future__ import annotations

from util.lazy import lazy_exports

_WHERE = {
    "ENCODERS": ".variants",
    "MTNet": ".mtnet",
    "MTNetSpec": ".variants",
    "SIZE_MULTIPLE": ".variants",
    "VARIANTS": ".variants",
    "build_mtnet": ".build",
    "variant_of_file": ".build",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
