"""Annotation files in and out, shared by the dataset formats (`action3d.data.formats`).

- list file: `relative/path.mp4 label` per line, whitespace separated, `#` starts a comment line,
  paths may not contain spaces; paths are relative to `data.root` (default: the list's folder).
  Under data.multi_label a line lists one or more labels, `relative/path.mp4 label [label ...]`
  (mmaction2's multi-class lists), read as the sorted tuple of its class indices.
- classes file: one class name per line, or `index name` lines (UCF101's classInd.txt).
- shard index: `data.root/index.json` of a packed dataset (`action3d data pack`).

Every reader reports a malformed line as `FILE:LINE: what is wrong`, one line. The readers of one
format only (Kinetics CSVs, UCF101/HMDB51 split files, class folders) live in its module under
`action3d.data.formats`. Nothing here imports torch.
"""
from __future__ import annotations

import json
import operator
import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from action3d.errors import Action3dError
from action3d.files import atomic_write

Label = Union[int, Tuple[int, ...]]  # a class index (-1: unknown), or under data.multi_label the sorted class indices
Sample = Tuple[str, Label]  # (absolute video path, label)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".wmv", ".3gp", ".ogv", ".ts")
SPLITS = ("train", "val")


def content_lines(path: str | Path) -> Iterable[Tuple[int, str]]:
    """(line number, text) of non-blank, non-comment lines; a missing file is a one-line error."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise Action3dError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise Action3dError(f"{path}: cannot read annotation file ({err})") from None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            yield number, text


def parse_label(text: str, path, number: int, num_classes: Optional[int]) -> int:
    """An integer label in 0..num_classes-1 (>= 0 when num_classes is None), else a one-line error."""
    try:
        label = int(text)
    except ValueError:
        raise Action3dError(f"{path}:{number}: label {text!r} is not an integer") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        allowed = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise Action3dError(f"{path}:{number}: label {label} is out of range (allowed: {allowed})")
    return label


def parse_labels(fields: Sequence[str], path, number: int, num_classes: Optional[int], *,
                 multi_label: bool) -> Label:
    """The label fields of one annotation line: exactly one integer label, or under `multi_label`
    one or more (mmaction2's `path label label ...`), returned as sorted unique class indices."""
    if not multi_label:
        if len(fields) != 1:
            raise Action3dError(f"{path}:{number}: expected one label, got {len(fields)} "
                                f"({' '.join(fields)[:60]!r}); several labels per video need data.multi_label=true")
        return parse_label(fields[0], path, number, num_classes)
    if not fields:
        raise Action3dError(f"{path}:{number}: expected at least one label")
    return tuple(sorted({parse_label(text, path, number, num_classes) for text in fields}))


# --------------------------------------------------------------------------- list files

def read_list_file(path: str | Path, *, root: Optional[str | Path] = None,
                   num_classes: Optional[int] = None, multi_label: bool = False) -> List[Sample]:
    """Parse `relative/path label` lines (`relative/path label [label ...]` under `multi_label`:
    the labels a sorted tuple); paths are joined to `root` (default: the list's folder)."""
    base = Path(root) if root is not None else Path(path).resolve().parent
    samples = []
    for number, text in content_lines(path):
        fields = text.split()
        if multi_label and len(fields) < 2:
            raise Action3dError(
                f"{path}:{number}: expected 'relative/path label [label ...]' (paths without spaces), "
                f"got {len(fields)} field: {text[:80]!r}")
        if not multi_label and len(fields) != 2:
            hint = ("; several labels per video need data.multi_label=true" if len(fields) > 2 and
                    all(_is_integer(f) for f in fields[1:]) else "")
            raise Action3dError(
                f"{path}:{number}: expected 'relative/path label' (2 fields, paths without spaces), "
                f"got {len(fields)} fields: {text[:80]!r}{hint}")
        label = parse_labels(fields[1:], path, number, num_classes, multi_label=multi_label)
        samples.append((str((base / fields[0]).absolute()), label))
    return samples


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def label_text(label: Label) -> str:
    """A label as a list line gives it: `3`, or the class indices of a multi-label sample `3 17`."""
    try:
        return str(operator.index(label))  # an int (numpy's too)
    except TypeError:
        return " ".join(str(operator.index(v)) for v in label)


def write_list_file(path: str | Path, samples: Sequence[Sample], root: str | Path) -> None:
    """Write `path label` lines (`path label label ...` for multi-label samples), paths relative
    to `root` where they lie under it (atomic write)."""
    root = Path(root).absolute()
    lines = []
    for video, label in samples:
        video_path = Path(video).absolute()
        shown = os.path.relpath(video_path, root) if video_path.is_relative_to(root) else str(video_path)
        if any(ch.isspace() for ch in shown):
            raise Action3dError(f"{video}: list files cannot hold paths with whitespace; rename the file")
        lines.append(f"{shown} {label_text(label)}\n")
    atomic_write(path, "".join(lines))


def read_classes_file(path: str | Path) -> List[str]:
    """One class name per line, or `index name` lines (UCF101's classInd.txt), in file order."""
    classes = []
    for _number, text in content_lines(path):
        first, _, rest = text.partition(" ")
        classes.append(rest.strip() if first.isdigit() and rest.strip() else text)
    if len(set(classes)) != len(classes):
        raise Action3dError(f"{path}: class names must be unique")
    return classes


def write_classes_file(path: str | Path, classes: Sequence[str]) -> None:
    atomic_write(path, "".join(f"{name}\n" for name in classes))


# --------------------------------------------------------------------------- any folder of videos

def find_videos(path: Path, *, key: str = "video") -> List[Path]:
    """`path` itself if it is a file, else every video file under the folder (sorted, any depth)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise Action3dError(f"{key}={path} is a folder without video files ({', '.join(VIDEO_EXTENSIONS)})")
        return videos
    raise Action3dError(f"{key}={path}: no such file or folder")


# --------------------------------------------------------------------------- packed shards

SHARD_INDEX_FILE = "index.json"         # written by `action3d data pack` (action3d.data.shard_pack)
SHARDS_FORMAT = "action3d-shards-v1"


def read_shard_index(root: str | Path) -> dict:
    """The index of a packed dataset (`data.format=shards`): classes, and per split its samples and shards."""
    path = Path(root) / SHARD_INDEX_FILE
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise Action3dError(f"data.root={root}: no {SHARD_INDEX_FILE}; pack a dataset with `action3d data pack "
                            "data=... out=DIR` and train with data=shards data.root=DIR") from None
    except (OSError, ValueError) as err:
        raise Action3dError(f"{path}: unreadable shard index ({err})") from None
    if not isinstance(index, dict) or index.get("format") != SHARDS_FORMAT:
        found = index.get("format") if isinstance(index, dict) else None
        raise Action3dError(f"{path}: not an action3d shard index (format {found!r}, expected {SHARDS_FORMAT})")
    return index
