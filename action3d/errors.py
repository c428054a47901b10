"""The one exception type the command line turns into a one-line message (no traceback)."""


class Action3dError(Exception):
    """A user-facing error: bad config value, unreadable file, broken dataset, refused checkpoint.

    The message must name the key, file or value at fault and, where it helps, what is allowed.
    """
