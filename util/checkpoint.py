"""Weights files on disk: safe reading (``weights_only=True``, on the CPU) and atomic writing.

What the files hold and how their keys map to the network is ``model.weights``' business;
this module only reads and writes them. A crafted pickle cannot run code, and a file
appears at its path only once it is complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .errors import InputError
from .fileio import atomic_path

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(InputError):
    """A weights file that is missing, unreadable or does not fit the network."""


def strip_wrapper_prefixes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove DDP's ``module.`` and torch.compile's ``_orig_mod.`` prefixes where present."""
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename into place."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_file(path: str | os.PathLike) -> dict:
    """Read a weights file safely (``weights_only=True``, on the CPU).

    Raises ``CheckpointError`` naming the file when it is missing, is not a torch file,
    holds objects other than tensors and plain containers, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable weights file ({reason})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    return obj
