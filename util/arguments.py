"""Checks of the Python API's arguments: an int is an int (or a NumPy integer), never a bool,
a float or a string, and a size is a pair of them.

Python would take ``clip_length=2.5`` or ``test_size=("64", "64")`` a long way before failing
(or not fail at all); these checks stop it at the call with one ``InputError`` line naming
the parameter and what is expected.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import InputError, setting


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral | np.integer) and not isinstance(
        value, bool | np.bool_
    )


def require_int(
    value: object, name: str, minimum: int | None = None, *, flag: str | None = None
) -> int:
    """``value`` as a Python int; ``InputError`` naming ``name`` (``flag`` inside a script,
    as ``util.errors.setting`` does) unless it is an int or a NumPy integer (not a bool) of
    at least ``minimum``."""
    if not _is_int(value) or (minimum is not None and int(value) < minimum):
        what = {None: "an int", 0: "an int of 0 or more", 1: "a positive int"}.get(
            minimum, f"an int of at least {minimum}"
        )
        raise InputError(f"{setting(name, value, flag=flag)}: expected {what}")
    return int(value)


def require_int_pair(value: object, name: str, *, flag: str | None = None) -> tuple[int, int]:
    """``value`` as a pair of Python ints; ``InputError`` naming ``name`` unless it is a
    tuple or list of two ints or NumPy integers (not bools)."""
    pair = tuple(value) if isinstance(value, tuple | list | np.ndarray) else None
    if pair is None or len(pair) != 2 or not all(_is_int(v) for v in pair):
        named = setting(name, value, flag=flag)
        raise InputError(f"{named}: expected a pair (H, W) of ints, as (512, 512)")
    return int(pair[0]), int(pair[1])
