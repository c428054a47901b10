"""Checkpoints: written atomically, read with `weights_only=True`, errors in one line.

A checkpoint is a plain dict of tensors and Python data (no pickled objects), so that
`torch.load(..., weights_only=True)` reads it and a file carrying code is refused.
"""
from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from action3d.engine.faults import maybe_fault
from action3d.errors import Action3dError


def save_checkpoint(state: Dict[str, Any], path: str | os.PathLike) -> None:
    """Write to a temporary file in the same folder, flush and fsync, then rename over `path`.

    A crash or a full disk at any moment leaves either the old file or the new one, never a
    half-written checkpoint under the final name.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            maybe_fault(f"ckpt_write/{path.name}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise Action3dError(f"could not write checkpoint {path}: {err.strerror or err}; "
                            "the previous checkpoint there is unchanged") from None
    maybe_fault(f"ckpt_renamed/{path.name}")
    _fsync_dir(path.parent)
    _remove_stale_temporaries(path)


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of `path` left by a process killed mid-write (their pid no longer runs)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _process_exists(int(pid)):
            tmp.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
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


def load_checkpoint(path: str | os.PathLike) -> Dict[str, Any]:
    """Load an action3d checkpoint (or any torch file of plain data) safely."""
    path = Path(path)
    if not path.is_file():
        raise Action3dError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise Action3dError(f"checkpoint {path} is empty (0 bytes)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err) or "Unsupported global" in str(err):
            raise Action3dError(f"checkpoint {path} contains pickled code or objects and was not loaded "
                                "(only plain tensors and data are accepted)") from None
        raise Action3dError(f"checkpoint {path} is not a readable checkpoint ({_reason(err)})") from None
    except Exception as err:  # garbage bytes make the unpickler fail in many ways; all mean "not a checkpoint"
        raise Action3dError(f"checkpoint {path} is truncated or not a checkpoint ({_reason(err)})") from None
    if not isinstance(state, dict):
        raise Action3dError(f"checkpoint {path} holds a {type(state).__name__}, not a dict of tensors")
    return state


def _reason(err: BaseException) -> str:
    return str(err).strip().splitlines()[0].split(". ")[0][:160] if str(err).strip() else type(err).__name__


def rng_state() -> Dict[str, Any]:
    """Every RNG a training step draws from, as weights_only-loadable data."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": _python_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]
