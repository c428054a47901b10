"""Reading checkpoint files safely: `torch.load(..., weights_only=True)` with one-line errors.

OpenMMLab checkpoints (mmaction2 1.x, saved by mmengine) carry training metadata beside their
`state_dict`: a `message_hub` holding `mmengine.logging.HistoryBuffer` objects with numpy arrays,
sometimes mmengine config objects in `meta`. `weights_only=True` refuses those classes. We never
need them, so we read them as `InertObject`s: stand-ins registered under the refused names that
only store the data they are given and run no code from the file. Only names from the modules in
`METADATA_MODULES` get this treatment; any other class in a file (a pickled model, a custom
object) is refused with an error saying the file contains code.
"""
from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import torch

from action3d.errors import Action3dError
from action3d.models.weights_caffe2 import read_caffe2

# Modules whose pickled objects appear only in the metadata of OpenMMLab checkpoints.
METADATA_MODULES: Tuple[str, ...] = ("mmengine", "mmcv", "numpy")
_MAX_STAND_INS = 64     # a checkpoint with more refused names than this is not metadata-only

_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_CODE_MARKERS = ("Unsupported global", "Can only create new object", "Can only build",
                 "Trying to call reduce", "is blocked")


class InertObject:
    """Stand-in for a refused metadata class: accepts any arguments and state, does nothing."""

    refused_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        obj = super().__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<{self.refused_name} (not loaded)>"


def _stand_in(full_name: str) -> type:
    """A fresh InertObject subclass that reports which refused name it replaces."""
    return type("InertObject", (InertObject,), {"refused_name": full_name})


def is_metadata_name(full_name: str) -> bool:
    return full_name.split(".", 1)[0] in METADATA_MODULES


def _refused_names_in_archive(path: Path) -> List[str]:
    """Refused globals listed statically (zip checkpoints only; legacy files are found on load)."""
    if not zipfile.is_zipfile(path):
        return []
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:       # a damaged archive: torch.load below reports it properly
        return []


def _weights_unpickler_reason(error: BaseException) -> str:
    """The one informative line torch puts at the end of its long weights_only message."""
    text = str(error.__context__ or "") + "\n" + str(error)
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if match:
        return match.group(1).strip()
    first = str(error.__context__ or error).strip().splitlines()
    return first[0] if first else type(error).__name__


def _refusal_message(path: Path, reason: str) -> str:
    match = _REFUSED_GLOBAL.search(reason)
    what = f"pickled code ({match.group(1)})" if match else "pickled code"
    return (f"checkpoint {path}: contains {what} and was not loaded (only tensors and plain data "
            f"are read); if you trust the file, extract its weights with "
            f"`python scripts/extract_state_dict.py {path} OUT.pt --trust` and load OUT.pt")


def read_checkpoint(path: Union[str, Path]) -> Any:
    """Load a checkpoint file on the CPU with `weights_only=True`.

    Raises `Action3dError` (one line, naming the path) when the file is missing, is not a
    PyTorch checkpoint (random bytes, text, truncated archive) or contains pickled code. A `.pkl`
    is read as a Caffe2 model-zoo file (`weights_caffe2.read_caffe2`: numpy arrays only).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise Action3dError(f"checkpoint {path}: {'is a folder, not a file' if path.is_dir() else 'no such file'}")
    if path.stat().st_size == 0:
        raise Action3dError(f"checkpoint {path}: empty file (0 bytes)")
    if path.suffix == ".pkl":                   # PySlowFast's Caffe2 model zoo: numpy arrays only
        return read_caffe2(path)
    stand_ins: Dict[str, type] = {name: _stand_in(name)
                                  for name in _refused_names_in_archive(path)
                                  if is_metadata_name(name)}
    while True:
        try:
            with torch.serialization.safe_globals([(cls, name) for name, cls in stand_ins.items()]), \
                    warnings.catch_warnings():
                # random bytes read as a pickle header make torch warn about odd protocols
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            reason = _weights_unpickler_reason(error)
            refused = _REFUSED_GLOBAL.search(reason)
            if (refused and is_metadata_name(refused.group(1))
                    and refused.group(1) not in stand_ins and len(stand_ins) < _MAX_STAND_INS):
                stand_ins[refused.group(1)] = _stand_in(refused.group(1))   # legacy format
                continue
            if any(marker in reason for marker in _CODE_MARKERS):
                raise Action3dError(_refusal_message(path, reason)) from None
            raise Action3dError(f"checkpoint {path}: not a PyTorch checkpoint "
                                f"(unreadable pickle: {reason})") from None
        except (RuntimeError, EOFError, KeyError, ValueError, OSError, IndexError,
                UnicodeDecodeError, AttributeError, TypeError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = reason.split(". ")[0]      # torch appends paragraphs of advice
            if isinstance(error, EOFError):
                reason = "file is empty or ends too early"
            elif isinstance(error, KeyError):
                reason = f"not a zip archive or pickle (bad opcode {reason})"
            raise Action3dError(f"checkpoint {path}: not a PyTorch checkpoint ({reason})"
                                ) from None
