"""MTNet network: ``from model import MTNet, build_mtnet``.

The names load on first use (PEP 562), so ``model.variants`` (the variants' numbers, read
by the command lines) imports without torch.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
