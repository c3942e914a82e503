"""The values of the project's choice flags and parameters, importable without torch.

The modules that implement them (``util.flow``, ``inference.runtime``)
take their names from here, so that the command lines (``--help`` included) list them
without loading torch.
"""

from __future__ import annotations

FLOW_METHODS = ("dis", "raft")  # OpenCV DIS, torchvision RAFT
RAFT_MODELS = ("raft_large", "raft_small")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "int8", "int8_static")
AUTOCAST_PRECISIONS = ("bf16", "fp16")  # the precisions that run under torch.autocast
RUNTIMES = ("torch", "onnxruntime")
