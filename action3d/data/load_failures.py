"""What a dataset's loading does with files that fail: `FailureLog`, the record of `(path, reason)`
that a data loader's processes share, and `DatasetBrokenError`, raised when most files fail."""
from __future__ import annotations

import json
import os
import tempfile
import weakref
from typing import List, Optional, Tuple

from action3d.errors import Action3dError


class DatasetBrokenError(Action3dError):
    """Most files of a dataset fail to decode: a wrong root, a wrong list, or a broken disk.

    A DataLoader worker's exception is re-raised in the main process as
    `DatasetBrokenError("Caught DatasetBrokenError in DataLoader worker ...<traceback>")`; the
    constructor recovers the original one-line message from that text so `str(err)` stays useful.
    """

    def __init__(self, message: str):
        self.worker_traceback: Optional[str] = None
        marker = f"{type(self).__name__}: "
        if "Original Traceback" in message and marker in message:
            self.worker_traceback = message
            message = message.rstrip().rsplit(marker, 1)[1].strip()
        super().__init__(message)


class FailureLog:
    """Append-only record of `(path, reason)` failures, shared by the processes of a data loader.

    Each record is one `os.write` of one line to a file opened with O_APPEND, which the kernel
    keeps whole even when workers write at once. Unlike a queue, nothing blocks or is lost when the
    main process drains late, and it works with fork and spawn start methods alike.
    """

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="action3d-failures-", suffix=".jsonl")
        os.close(fd)
        self._offset = 0
        weakref.finalize(self, _remove_if_owner, self.path, os.getpid())

    def record(self, path: str, reason: str) -> None:
        line = (json.dumps([path, reason]) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def drain(self) -> List[Tuple[str, str]]:
        """Records written since the last drain (complete lines only)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        data = data[:data.rfind(b"\n") + 1]
        self._offset += len(data)
        return [tuple(json.loads(line)) for line in data.splitlines()]


def _remove_if_owner(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # forked workers inherit the finalizer; only the creator deletes
        try:
            os.remove(path)
        except OSError:
            pass
