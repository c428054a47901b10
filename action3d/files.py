"""Writing files so that a crash or a full disk never leaves a half-written one under its name.

One helper for every file the package writes for keeps: checkpoints, list files, class files,
reports. It imports no torch; the checkpoint writer passes `torch.save` as the `write` callback.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Union

Writer = Callable[[BinaryIO], None]


def atomic_write(path: Union[str, os.PathLike], content: Union[str, bytes, Writer], *,
                 before_rename: Callable[[], None] = lambda: None) -> Path:
    """Write to `.NAME.tmp-PID` in the same folder, flush, fsync, rename over `path`, fsync the folder.

    content: text, bytes, or a callable that writes into the open binary file. `before_rename`
    runs after the data is written and before it is flushed (a hook for fault-injection tests).
    On OSError the temporary file is removed and the error re-raised; `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            before_rename()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: some filesystems refuse directory fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path: Path) -> None:
    """Temporary files of `path` left by a process killed mid-write (their pid no longer runs)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and not process_exists(int(pid)):
            tmp.unlink(missing_ok=True)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (other processes wait for it), for making a file or
    folder once when several processes may ask for it at once; a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # Windows: callers write by rename, so what they make stays consistent
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
