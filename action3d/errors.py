"""The one exception type the command line turns into a one-line message (no traceback)."""


class Action3dError(Exception):
    """A user-facing error: bad config value, unreadable file, broken dataset, refused checkpoint.

    The message must name the key, file or value at fault and, where it helps, what is allowed.
    """


def first_line(text: str) -> str:
    """The first non-blank line of a (library's multi-line) message, stripped."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text
