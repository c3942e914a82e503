"""The values of the project's choice flags and parameters, and the check of the flow
settings' values, importable without torch.

The modules that implement them (``util.flow``, ``inference.runtime``)
take their names from here, so that the command lines (``--help`` included) list them
without loading torch.
"""

from __future__ import annotations

from .arguments import require_int
from .errors import InputError, setting

FLOW_METHODS = ("dis", "raft")  # OpenCV DIS, torchvision RAFT
RAFT_MODELS = ("raft_large", "raft_small")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "int8", "int8_static")
AUTOCAST_PRECISIONS = ("bf16", "fp16")  # the precisions that run under torch.autocast
RUNTIMES = ("torch", "onnxruntime")


def check_flow_settings(method: object, raft_model: object, raft_iters: object) -> int:
    """The one check of how flow images are to be made (``util.flow.FlowSettings`` runs it,
    test.py's configuration too, before torch loads): ``method`` one of
    :data:`FLOW_METHODS`, ``raft_model`` one of :data:`RAFT_MODELS`, ``raft_iters`` a
    positive int; else an ``InputError`` naming the setting (its flag inside a script).
    Returns ``raft_iters`` as a Python int."""
    if method not in FLOW_METHODS:
        named = setting("method", method, flag="--flow_method")
        raise InputError(f"{named}: expected one of {', '.join(FLOW_METHODS)}")
    check_raft_model(raft_model)
    return require_int(raft_iters, "raft_iters", minimum=1)


def check_raft_model(raft_model: object) -> None:
    """``InputError`` naming ``raft_model`` (``--raft_model`` in a script) unless it is one
    of :data:`RAFT_MODELS`."""
    if raft_model not in RAFT_MODELS:
        named = setting("raft_model", raft_model)
        raise InputError(f"{named}: expected one of {', '.join(RAFT_MODELS)}")
