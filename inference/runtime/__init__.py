"""How the network runs at test time (DESIGN.md §11): precisions, runtimes, compilation,
ONNX export and int8 quantisation, behind one factory.

    from inference.runtime import make_backend

    backend = make_backend(model, "bf16", "torch", "cpu", compile=True, compile_length=9)
    prob = backend(imgs, flows)  # [1, T, 3, H, W] x 2 -> fp32 [T, 1, H, W]

- ``precision``: the precisions' names and checks, CUDA's TF32 switches;
- ``backends``: ``make_backend`` and the torch and onnxruntime backends;
- ``compile``: ``torch.compile`` with Inductor's freezing for one clip length;
- ``int8_dynamic``, ``int8_static``: the quantised Linear layers, ranges per call or
  calibrated ahead;
- ``onnx_export``: the network as an ONNX file for onnxruntime.
"""

from .backends import RUNTIMES, Backend, check_runtime, describe_line, device_of, make_backend
from .int8_static import Calibration, load_calibration
from .onnx_export import export_onnx
from .precision import PRECISIONS

__all__ = [
    "PRECISIONS",
    "RUNTIMES",
    "Backend",
    "Calibration",
    "check_runtime",
    "describe_line",
    "device_of",
    "export_onnx",
    "load_calibration",
    "make_backend",
]
