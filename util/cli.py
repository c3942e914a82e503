"""The command lines of the project's scripts: one parser for all of them.

    p = ArgumentParser(prog="python -m util.flow", description="...",
                       examples="python -m util.flow --frames f/ --out flows/")
    data = p.add_argument_group("data")
    data.add_argument("--frames", ...)

What it adds to ``argparse.ArgumentParser``:

- ``--help`` shows each flag's real default, and none where the default is ``None`` or off
  (a help text that states its default, ``"default: ..."``, is left as written); the
  description and the examples keep their line breaks;
- an unknown flag gets the closest valid name: ``unknown flag --test_modle; did you mean
  --test_model?`` (exit status 2, as for every argparse error).

Importing this module imports no torch, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import difflib
import textwrap
from collections.abc import Iterable, Sequence


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; a flag's default after its help text."""

    def __init__(self, prog: str, **kwargs) -> None:
        kwargs.setdefault("max_help_position", 32)
        super().__init__(prog, **kwargs)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or "default:" in text or not action.option_strings:
            return text
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS:
            return text
        return f"{text} (default: {show_default(default).replace('%', '%%')})"


def show_default(value: object) -> str:
    """A default as it is typed on the command line: ``512 512`` for a pair."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with ``HelpFormatter``, ``examples`` shown after the
    flags, and the closest valid name for an unknown flag."""

    def __init__(self, *args, examples: str | None = None, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        if examples:
            body = textwrap.indent(textwrap.dedent(examples).strip("\n"), "  ")
            kwargs["epilog"] = f"examples:\n{body}"
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace=None):  # type: ignore[override]
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unknown_arguments_message(extras, self.option_names()))
        return namespace

    def option_names(self) -> list[str]:
        """Every long and short flag of this parser and of its subcommands."""
        names: list[str] = []
        for action in self._actions:
            names += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    if isinstance(sub, ArgumentParser):
                        names += sub.option_names()
        return sorted(set(names))


def unknown_arguments_message(extras: Sequence[str], names: Iterable[str]) -> str:
    """The error for arguments no flag took: each unknown flag with the closest valid
    name (``difflib``), or argparse's own wording when no flag is among them."""
    names = list(names)
    flags = [arg.split("=", 1)[0] for arg in extras if _is_flag(arg)]
    if not flags:
        return f"unrecognized arguments: {' '.join(extras)}"
    close = {flag: difflib.get_close_matches(flag, names, n=1) for flag in flags}
    if len(flags) == 1:
        (flag,) = flags
        return f"unknown flag {flag}" + (f"; did you mean {close[flag][0]}?" if close[flag] else "")
    parts = [flag + (f" (did you mean {close[flag][0]}?)" if close[flag] else "") for flag in flags]
    return f"unknown flags: {', '.join(parts)}"


def _is_flag(arg: str) -> bool:
    if not arg.startswith("-") or arg == "-":
        return False
    try:
        float(arg)  # a negative number is a value, not a flag
    except ValueError:
        return True
    return False
