"""Test-time inference: the predictor (the Python API), the streaming runner of test.py with
its session set-up and record, post-processing, writing and visualisation; how the network
runs (precisions, runtimes, compilation, int8, ONNX) is ``inference.runtime``.

    from inference import MTNetPredictor
"""

from .predictor import ClipResult, MTNetPredictor, NonFiniteOutput

__all__ = ["ClipResult", "MTNetPredictor", "NonFiniteOutput"]
