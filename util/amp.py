"""Mixed precision: the autocast context of training, validation and the torch backends.

A dtype of ``None`` means full precision (no autocast); training and validation take
``torch.autocast``'s own default dtype of the device (fp16 on CUDA) when AMP is on
(DESIGN.md §7), inference the dtype of its ``--precision`` (DESIGN.md §11).
"""

from __future__ import annotations

import contextlib

import torch


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in ``dtype``; nothing for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """Training's autocast dtype: ``torch.autocast``'s default on ``device`` (fp16 on CUDA)
    when ``enabled``, else ``None``."""
    return torch.get_autocast_dtype(device.type) if enabled else None
