"""The project's error for mistakes in what a user gave (paths, data, flag values), and
how its messages name a setting: the flag on a command line, the parameter from Python."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextvars import ContextVar

# True while a script's work runs under exit_status: messages then name flags
_COMMAND_LINE: ContextVar[bool] = ContextVar("command_line", default=False)
_UNSET = object()


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
    token = _COMMAND_LINE.set(True)
    try:
        run()
    except (InputError, *also) as err:
        print(f"{prog}: error: {err}" if prog else f"error: {err}", file=sys.stderr)
        return 2
    finally:
        _COMMAND_LINE.reset(token)
    return 0


def setting(name: str, value: object = _UNSET, *, flag: str | None = None) -> str:
    """How a message names a setting a user gave, with its value.

    Inside a script (:func:`exit_status`): the flag, as typed (``--precision fp16``,
    ``--test_size 65 64``); called from Python: the parameter (``precision='fp16'``,
    ``test_size=(65, 64)``). ``flag``: the command line's name where it differs from the
    parameter's (``--test_length`` for ``clip_length``).
    """
    if not _COMMAND_LINE.get():
        return name if value is _UNSET else f"{name}={value!r}"
    flag = flag or f"--{name}"
    if value is _UNSET or value is True:  # a switch: the flag alone
        return flag
    if isinstance(value, (list, tuple)):
        return " ".join([flag, *(str(v) for v in value)])
    return f"{flag} {value}"
