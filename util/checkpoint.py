"""Weights files on disk: safe reading (``weights_only=True``, on the CPU) and atomic writing.

What the files hold and how their keys map to the network is ``model.weights``' business;
this module only reads and writes them. A crafted pickle cannot run code, and a file
appears at its path only once it is complete.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
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


def require_string_keys(state: Mapping, path: object) -> None:
    """Raise ``CheckpointError`` naming ``path`` and the first key that is not a string (a
    state dict maps tensor names to tensors)."""
    for key in state:
        if not isinstance(key, str):
            raise CheckpointError(
                f"{path}: key {key!r} is of type {type(key).__name__}; expected tensor names "
                "(strings), as torch.save(model.state_dict()) writes them"
            )


def first_non_finite(state: Mapping[str, Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding a NaN or an
    infinity, or ``None`` when all are finite."""
    for key, value in state.items():
        floating = isinstance(value, Tensor) and value.is_floating_point()
        if floating and not bool(torch.isfinite(value).all()):
            return key
    return None


def require_finite(state: Mapping[str, Tensor], path: object) -> None:
    """Raise ``CheckpointError`` naming ``path`` and the first non-finite tensor, if any.

    A network with a NaN weight outputs NaN everywhere (all-black masks), so such weights
    are never loaded nor written.
    """
    key = first_non_finite(state)
    if key is not None:
        raise CheckpointError(
            f"{path}: tensor {key} holds NaN or infinite values; expected finite weights"
        )


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename into place."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_file(path: str | os.PathLike) -> dict:
    """Read a weights file safely (``weights_only=True``, on the CPU).

    Raises ``CheckpointError`` naming the file when it is missing, is not a torch file,
    holds objects other than tensors and plain containers, or is not a dict.
    """
    path = _existing(path)
    return _safe_load(path, path)


@dataclass(frozen=True)
class LoadedFile:
    """A weights file read once: its path, what it holds (:func:`load_file`'s dict) and the
    SHA-256 of the very bytes that were loaded, so that a record's hash always names the
    weights that ran, even if the file is replaced while a run starts."""

    path: Path
    contents: dict = field(repr=False)  # a whole state dict: never in a message
    sha256: str


def load_hashed_file(path: str | os.PathLike) -> LoadedFile:
    """:func:`load_file` and the file's SHA-256 from one read of its bytes."""
    path = _existing(path)
    data = path.read_bytes()
    return LoadedFile(path, _safe_load(io.BytesIO(data), path), hashlib.sha256(data).hexdigest())


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    return path


def _safe_load(source: Path | io.BytesIO, path: Path) -> dict:
    """``torch.load`` of ``source`` (the file ``path`` or its bytes) with the safe loader;
    ``CheckpointError`` naming ``path`` for anything but a dict of plain objects."""
    try:
        with warnings.catch_warnings():  # torch warns about legacy pickles before failing
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(
            f"{path}: not a loadable weights file ({_why_unloadable(path)})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    return obj


def _why_unloadable(path: Path) -> str:
    """Our own reason for a file that the safe loader refuses (torch's message would
    suggest turning the safe loader off, which must never be done for a file of unknown
    origin)."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return (
            "a damaged PyTorch file, or one holding objects other than tensors, numbers and "
            "plain containers, which are never unpickled; expected a file of torch.save"
        )
    if head[:1] == b"\x80":
        return (
            "a pickle holding objects other than tensors, numbers and plain containers, "
            "which are never unpickled, or a damaged one; expected a file of torch.save"
        )
    return "not a PyTorch file; expected a file of torch.save, as the release's mtnet.pth"
