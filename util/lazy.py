"""Lazy package exports: a package names what it exports and where each name lives, and the
module holding it is imported on first use (PEP 562).

``python test.py --help`` must answer without importing torch; the packages whose modules
need torch (``model``, ``inference``) export their names this way.

    _WHERE = {"build_mtnet": ".build"}
    __all__ = sorted(_WHERE)
    __getattr__, __dir__ = lazy_exports(__name__, _WHERE)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where`` maps each exported name
    to the (relative) module that defines it; a name is imported once, then cached in the
    package's namespace."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[package]), *where])

    return __getattr__, __dir__
