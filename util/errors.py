"""The project's error for mistakes in what a user gave (paths, data, flag values)."""

from __future__ import annotations

import sys
from collections.abc import Callable


class InputError(ValueError):
    """A user-side problem: the message is one line naming the path and what was expected.

    Every error of this kind in the project is this class or a subclass of it (flow, video,
    weights, evaluation); scripts catch this one class in ``main`` and print the message
    alone (exit status 2), without a traceback.
    """


def exit_status(prog: str | None, run: Callable[[], object], also: tuple[type, ...] = ()) -> int:
    """Run a script's work; its exit status: 0, or 2 after one line ``{prog}: error:
    {message}`` on stderr for a user's mistake (an ``InputError``, or one of ``also``),
    without a traceback."""
    try:
        run()
    except (InputError, *also) as err:
        print(f"{prog}: error: {err}" if prog else f"error: {err}", file=sys.stderr)
        return 2
    return 0
