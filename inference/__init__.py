"""Test-time inference: the predictor (the Python API), the streaming runner of test.py with
its session set-up and record, post-processing, writing and visualisation; how the network
runs (precisions, runtimes, compilation, int8, ONNX) is ``inference.runtime``.

    from inference import MTNetPredictor

The names load on first use (PEP 562), so test.py's command line (``inference.config``)
imports without torch.
"""

from __future__ import annotations

from util.lazy import lazy_exports

_WHERE = {
    "ClipResult": ".predictor",
    "MTNetPredictor": ".predictor",
    "NonFiniteOutput": ".predictor",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
