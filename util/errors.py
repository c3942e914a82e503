"""The project's error for mistakes in what a user gave (paths, data, flag values)."""

from __future__ import annotations


class InputError(ValueError):
    """A user-side problem: the message is one line naming the path and what was expected.

    Every error of this kind in the project is this class or a subclass of it (flow, video,
    weights, evaluation); scripts catch this one class in ``main`` and print the message
    alone (exit status 2), without a traceback.
    """
