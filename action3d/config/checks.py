"""The vocabulary of every rule: one-line errors naming the key, and checks of a value's shape.

Each raises `ConfigError` (an `Action3dError` and a `ValueError`), one line: the key, the value as
the user typed it, and what is allowed. The schemas' field rules (`action3d.config.option`) and the
library's own argument checks (`ResNet3d(...)`) use these, so a mistake reads the same from the
command line and from Python; only the key prefix differs (`model.depth` there, `depth` here).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

from action3d.errors import ConfigError, fail, is_sequence, show

__all__ = ["ConfigError", "check_choice", "check_ints", "check_range", "fail", "is_int", "is_sequence", "per_block",
           "per_stage", "show"]


def check_choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    bool_mismatch = isinstance(value, bool) and not any(a is value for a in allowed)  # True == 1 in Python
    if value not in allowed or bool_mismatch:
        fail(key, value, "expected one of " + ", ".join(str(a) for a in allowed))


def check_range(key: str, value: Any, *, low: Optional[float] = None, high: Optional[float] = None,
                low_open: bool = False, high_open: bool = False) -> None:
    """`low <= value <= high` (either end may be open or absent)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(key, value, "expected a number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if high is None:
            fail(key, value, f"must be {'>' if low_open else '>='} {low:g}")
        if low is None:
            fail(key, value, f"must be {'<' if high_open else '<='} {high:g}")
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        fail(key, value, f"must be in {left}{low:g}, {high:g}{right}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_ints(key: str, values: Any, *, length: Optional[int] = None, minimum: int = 1,
               what: str = "") -> List[int]:
    """A list of integers >= minimum, optionally of a given length."""
    if not is_sequence(values):
        fail(key, values, f"needs a list{' of ' + str(length) if length else ''} of integers{what}")
    values = list(values)
    if length is not None and len(values) != length:
        fail(key, values, f"needs {length} values{what}")
    if not all(is_int(v) and v >= minimum for v in values):
        fail(key, values, f"entries must be integers >= {minimum}")
    return values


def per_stage(key: str, values: Any, num_stages: int, *, allow_int: bool = False) -> List[Any]:
    """One entry per stage. A 4-entry list (the defaults) is cut to `num_stages`; with
    `allow_int` a single int stands for every stage (mmaction2's `inflate=1`)."""
    if allow_int and is_int(values):
        return [values] * num_stages
    if not is_sequence(values):
        fail(key, values, f"needs one entry per stage: {num_stages} values (num_stages={num_stages})")
    values = list(values)
    if len(values) != num_stages and not (len(values) == 4 and num_stages < 4):
        fail(key, values, f"needs one entry per stage: {num_stages} values (num_stages={num_stages})")
    return values[:num_stages]


def per_block(key: str, flags: Any, blocks: Sequence[int]) -> List[List[bool]]:
    """`inflate`/`non_local`: per stage an int for every block or one 0/1 per block -> booleans."""
    stages = per_stage(key, flags, len(blocks), allow_int=True)
    out = []
    for stage, (entry, count) in enumerate(zip(stages, blocks)):
        entries = list(entry) if is_sequence(entry) else [entry] * count
        if len(entries) != count:
            fail(key, flags, f"stage {stage + 1} has {count} blocks, so its list needs {count} flags, "
                             f"got {len(entries)}")
        if any(not is_int(e) or e not in (0, 1) for e in entries):
            fail(key, flags, "flags must be 0 or 1")
        out.append([bool(e) for e in entries])
    return out


def hashable(value: Any) -> Any:
    """A hashable copy of nested lists, tuples and dicts (OmegaConf containers included): the key
    under which a check remembers the values it passed."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return ("__dict__", tuple(sorted((k, hashable(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)) or (hasattr(value, "__len__") and not isinstance(value, (str, bytes))):
        return ("__list__", tuple(hashable(v) for v in value))
    return value
