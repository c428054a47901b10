"""Fault injection for the reliability tests (a test hook, not a user feature).

The trainer and the checkpoint writer call `maybe_fault(POINT)` at the moments a real run can be
killed or hit a full disk. Nothing happens unless the environment variable `ACTION3D_FAULT`
names one of them:

    ACTION3D_FAULT=train_step:6                 SIGKILL this process at the 6th training step
    ACTION3D_FAULT=ckpt_write/last.pt:2         SIGKILL while writing last.pt for the 2nd time
    ACTION3D_FAULT=enospc:ckpt_write/last.pt:2  raise OSError(ENOSPC) there instead

The value is `[ACTION:]POINT:N[@RANK]` with ACTION `kill` (default) or `enospc`, N the 1-based
occurrence counted in this process and RANK (optional) the only torchrun rank it applies to.
Under torchrun it fires in the first attempt only (TORCHELASTIC_RESTART_COUNT=0), so an elastic
restart runs to the end. A point may carry a detail after a slash (the checkpoint
file name); `ckpt_write` then matches every file and `ckpt_write/best.pt` only best.pt. The
variable is read once at import: when it is unset, `maybe_fault` returns at its first line.
"""
from __future__ import annotations

import errno
import os
import signal
from typing import Dict, NamedTuple, Optional

from action3d.errors import Action3dError

ENV_VAR = "ACTION3D_FAULT"
ACTIONS = ("kill", "enospc")

# Where each point is reached (the hooks live in the trainer and in the checkpoint writer).
POINTS = {
    "train_step": "a training step, after backward and before the optimiser step",
    "validate": "the start of validation at the end of an epoch",
    "ckpt_write": "a checkpoint's temporary file, written but not flushed (detail: the file name)",
    "ckpt_renamed": "right after a checkpoint's temporary file was renamed to its final name",
}


class Fault(NamedTuple):
    action: str
    point: str
    occurrence: int
    rank: Optional[int] = None


def parse(spec: str) -> Fault:
    """`[ACTION:]POINT:N[@RANK]` -> Fault; a malformed value is an error, never silently ignored."""
    spec, _, rank = spec.strip().partition("@")
    if rank and not rank.isdigit():
        raise Action3dError(f"{ENV_VAR}={spec}@{rank}: the rank after @ must be a number")
    fields = spec.strip().split(":")
    action = fields.pop(0) if len(fields) == 3 else "kill"
    if len(fields) != 2 or action not in ACTIONS or not fields[1].isdigit() or int(fields[1]) < 1:
        raise Action3dError(f"{ENV_VAR}={spec} is not allowed: expected [kill|enospc:]POINT:N with N >= 1, "
                            f"e.g. train_step:3 or enospc:ckpt_write/last.pt:2")
    point = fields[0]
    if point.split("/", 1)[0] not in POINTS:
        raise Action3dError(f"{ENV_VAR}={spec}: unknown point {point!r}; expected one of {', '.join(POINTS)}")
    return Fault(action, point, int(fields[1]), int(rank) if rank else None)


def configure(spec: Optional[str]) -> None:
    """Arm (or with None disarm) a fault in this process and restart the occurrence counts."""
    global _fault
    _fault = parse(spec) if spec else None
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    if _fault is not None and (not first_attempt or (_fault.rank is not None
                                                     and _fault.rank != int(os.environ.get("RANK", "0")))):
        _fault = None
    _counts.clear()


_fault: Optional[Fault] = None
_counts: Dict[str, int] = {}
configure(os.environ.get(ENV_VAR))


def maybe_fault(point: str) -> None:
    """Kill this process, or raise ENOSPC, when `point` is reached for the configured N-th time."""
    if _fault is None:
        return
    if point != _fault.point and not point.startswith(_fault.point + "/"):
        return
    _counts[_fault.point] = _counts.get(_fault.point, 0) + 1
    if _counts[_fault.point] != _fault.occurrence:
        return
    if _fault.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
