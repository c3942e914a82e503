"""Test-time inference: the predictor (the Python API), the streaming runner of test.py with
its session set-up and record, post-processing, writing and visualisation.

    from inference import MTNetPredictor
"""

from .predictor import ClipResult, MTNetPredictor, NonFiniteOutput

__all__ = ["ClipResult", "MTNetPredictor", "NonFiniteOutput"]
