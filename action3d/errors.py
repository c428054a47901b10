"""The exceptions the command line turns into a one-line message (no traceback), and the words
of a refused value (`fail`), shared by the config rules and by the dataset formats below them."""
from __future__ import annotations

from typing import Any, NoReturn, Sequence


class Action3dError(Exception):
    """A user-facing error: bad config value, unreadable file, broken dataset, refused checkpoint.

    The message must name the key, file or value at fault and, where it helps, what is allowed.
    """


class ConfigError(Action3dError, ValueError):
    """An option outside its rules. A ValueError too, as Python callers of a constructor expect."""


def is_sequence(value: Any) -> bool:
    """A list, tuple or OmegaConf ListConfig (not a string)."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def show(value: Any) -> str:
    """A value as the user typed it: lists as `[1,2]`, whatever container they arrive in."""
    if is_sequence(value):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)


def fail(key: str, value: Any, allowed: str) -> NoReturn:
    """Refuse `key=value` in one line: `model.depth=19 is not allowed: expected one of 18, ...`."""
    raise ConfigError(f"{key}={show(value)} is not allowed: {allowed}")


def first_line(text: str) -> str:
    """The first non-blank line of a (library's multi-line) message, stripped."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text
