"""Keys that were renamed or removed, and what they became.

A command line (or a YAML file) that still uses an old key gets one line saying what replaced
it; a checkpoint written before the change is upgraded (`action3d.commands._checkpoint`):
a renamed key's value moves to its new name, a removed key is dropped.
"""
from __future__ import annotations

import difflib
from typing import Dict, Optional, Sequence

# old dotted key -> new dotted key (the value moves there unchanged)
RENAMED: Dict[str, str] = {}
# old dotted key -> what to use instead (one clause)
REMOVED: Dict[str, str] = {}


def describe_unknown_key(key: str, allowed: Sequence[str]) -> str:
    """`model.dept: unknown key; did you mean model.depth? (allowed: ...)`, or for a key that
    was renamed or removed, what it became."""
    became = what_became(key)
    if became:
        return f"{key}: {became}"
    return f"{key}: unknown key{did_you_mean(key, allowed)}"


def what_became(key: str) -> Optional[str]:
    if key in RENAMED:
        return f"renamed to {RENAMED[key]}; use {RENAMED[key]}=..."
    if key in REMOVED:
        return f"removed: {REMOVED[key]}"
    return None


def did_you_mean(key: str, allowed: Sequence[str]) -> str:
    """`; did you mean model.depth? (allowed: a, b, ...)` for an unknown `key` (dotted)."""
    parent, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, list(allowed), n=1)
    hint = f"; did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
    return f"{hint} (allowed: {', '.join(allowed)})"
