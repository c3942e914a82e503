"""Test-time inference: the predictor (the Python API), the streaming runner of test.py with
its session set-up and record, post-processing, writing and visualisation; how the network
runs (precisions, runtimes, compilation, int8, ONNX) is ``inference.runtime``.

    from inference import MTNetPredictor

The names load on first use (PEP 562), so test.py's command line (``inference.config``)
imports without torch.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "ClipResult": ".predictor",
    "MTNetPredictor": ".predictor",
    "NonFiniteOutput": ".predictor",
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
