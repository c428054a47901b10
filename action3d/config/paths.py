"""Preflight rules of keys that name files: what a command will read must be there before
anything runs (a missing checkpoint found after Hydra created the run directory would leave an
empty run behind, or write a log into the run a user meant to resume). Existence only: reading
the files stays with the command, which reports its own errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from action3d.errors import Action3dError


def existing_file(key: str, value: Any, hint: str = "") -> None:
    path = Path(str(value)).expanduser()  # as the checkpoint readers do; never stricter than them
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise Action3dError(f"{key}={value}: {what}{'; ' + hint if hint else ''}")


def existing_path(key: str, value: Any) -> None:
    if not Path(str(value)).exists():
        raise Action3dError(f"{key}={value}: no such file or folder")
