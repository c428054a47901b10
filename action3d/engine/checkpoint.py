"""Checkpoints: written atomically, read with `weights_only=True`, errors in one line.

A checkpoint is a plain dict of tensors and Python data (no pickled objects), so that
`torch.load(..., weights_only=True)` reads it and a file carrying code is refused.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from action3d.engine.faults import maybe_fault
from action3d.errors import Action3dError
from action3d.files import atomic_write, remove_stale_temporaries
from action3d.models.weights_io import read_checkpoint


def save_checkpoint(state: Dict[str, Any], path: str | os.PathLike) -> None:
    """Write atomically (temporary file, flush, fsync, rename; `action3d.files.atomic_write`).

    A crash or a full disk at any moment leaves either the old file or the new one, never a
    half-written checkpoint under the final name.
    """
    path = Path(path)
    try:
        atomic_write(path, lambda f: torch.save(state, f),
                     before_rename=lambda: maybe_fault(f"ckpt_write/{path.name}"))
    except OSError as err:
        raise Action3dError(f"could not write checkpoint {path}: {err.strerror or err}; "
                            "the previous checkpoint there is unchanged") from None
    maybe_fault(f"ckpt_renamed/{path.name}")
    remove_stale_temporaries(path)


def load_checkpoint(path: str | os.PathLike) -> Dict[str, Any]:
    """An action3d checkpoint (or any torch file of plain data) as a dict, read safely
    (`weights_only=True`, one-line errors: `action3d.models.weights_io.read_checkpoint`)."""
    state = read_checkpoint(path)
    if not isinstance(state, dict):
        raise Action3dError(f"checkpoint {path}: holds a {type(state).__name__}, not a dict of tensors")
    return state


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
