"""data.format=rawframes: folders of extracted frames, mmaction2's RawframeDataset layout.

A video is a folder of JPEGs, `data.root/VIDEO/img_00001.jpg ...`; a split is a list of
`VIDEO total_frames label` lines (`VIDEO total_frames label label ...` under data.multi_label),
VIDEO relative to data.root (default: the list's folder). Frame i of a video (0-based, as clips
are sampled) is the file `data.filename_tmpl.format(i + data.start_index, video=NAME)`, NAME the
folder's own name: mmaction2's `img_{:05}.jpg` from 1, or Charades' `{video}-{:06}.jpg`. The list's
total_frames is trusted, as mmaction2 does: a frame it promises that is missing or unreadable
makes the video fail when a clip needs it (`action3d.data.frames`), like a corrupt video file.

The folders carry no timestamps: data.fps gives their rate, which data.target_fps needs (refused
here without it, before anything runs). `action3d data extract` writes such a dataset from videos.

No torch here (the config check imports the registry); the reader is `action3d.data.frames`.
"""
from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any, List, Optional, Tuple

from action3d.data.annotation_io import Label, Sample, content_lines, parse_labels, read_classes_file
from action3d.data.formats.list_file import ListFormat
from action3d.errors import Action3dError, fail
from action3d.files import atomic_write

DEFAULT_FILENAME_TMPL = "img_{:05}.jpg"   # mmaction2's RawframeDataset defaults
DEFAULT_START_INDEX = 1
RAWFRAMES_HINT = "give the list file ('VIDEO total_frames label' lines, VIDEO a folder of frames under data.root)"
Entry = Tuple[str, int, Label]   # (absolute folder path, total_frames, label)


def frame_template_problem(template: Any) -> Optional[str]:
    """Why `template` cannot name frame N (`template.format(N, video=NAME)`), or None when it can."""
    example = "expected a Python format string of the frame number, e.g. img_{:05}.jpg or {video}-{:06}.jpg"
    if not isinstance(template, str):
        return example
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        first, second = (template.format(n, video="VIDEO") for n in (1, 2))
    except (IndexError, KeyError, ValueError, TypeError, AttributeError):
        return f"{example} (fields: one for the number, and {{video}} for the folder's name)"
    if any(name not in ("", "0", "video") for name in fields):
        return f"{example} (fields: one for the number, and {{video}} for the folder's name)"
    if first == second:
        return f"{example}: the frame number must appear in it"
    if os.sep in first or (os.altsep and os.altsep in first):
        return "a file name inside the video's folder, without a folder part"
    return None


def frame_name(template: str, number: int, video: str) -> str:
    """The file name of the frame numbered `number` (start_index already added) in folder `video`."""
    return template.format(number, video=video)


def read_rawframe_list(path: str | Path, *, root: Optional[str | Path] = None, num_classes: Optional[int] = None,
                       multi_label: bool = False) -> List[Entry]:
    """Parse `VIDEO total_frames label [label ...]` lines; VIDEO joined to `root` (default: the list's folder).

    A folder listed twice with different frame counts is an error (which count would hold?).
    """
    base = Path(root) if root is not None else Path(path).resolve().parent
    entries: List[Entry] = []
    counts: dict = {}   # folder -> (total_frames, line): transient, the parse's own
    for number, text in content_lines(path):
        fields = text.split()
        if len(fields) < 3:
            raise Action3dError(f"{path}:{number}: expected 'VIDEO total_frames label' (at least 3 fields, paths "
                                f"without spaces), got {len(fields)} fields: {text[:80]!r}")
        try:
            total = int(fields[1])
        except ValueError:
            total = 0
        if total < 1:
            raise Action3dError(f"{path}:{number}: total_frames {fields[1]!r} is not a positive integer "
                                "(rawframes lines are 'VIDEO total_frames label')")
        folder = str((base / fields[0]).absolute())
        label = parse_labels(fields[2:], path, number, num_classes, multi_label=multi_label)
        seen = counts.setdefault(folder, (total, number))
        if seen[0] != total:
            raise Action3dError(f"{path}:{number}: {fields[0]} has total_frames {total} here and {seen[0]} on line "
                                f"{seen[1]}")
        entries.append((folder, total, label))
    return entries


def write_rawframe_list(path: str | Path, entries: List[Entry], root: str | Path) -> None:
    """Write `VIDEO total_frames label ...` lines, VIDEO relative to `root` (atomic write)."""
    root = Path(root).absolute()
    lines = []
    for folder, total, label in entries:
        shown = os.path.relpath(Path(folder).absolute(), root)
        if any(ch.isspace() for ch in shown):
            raise Action3dError(f"{folder}: list files cannot hold paths with whitespace; rename the video")
        labels = " ".join(str(int(x)) for x in (label if isinstance(label, tuple) else (label,)))
        lines.append(f"{shown} {int(total)} {labels}\n")
    atomic_write(path, "".join(lines))


def rawframe_classes(data) -> List[str]:
    """data.classes_file, else classes.txt beside a list, else "0".."K-1" (K: one more than the
    largest label of the lists)."""
    if data.classes_file:
        return read_classes_file(data.classes_file)
    lists = [name for name in (data.train_list, data.val_list) if name]
    for name in lists:
        if (Path(name).parent / "classes.txt").is_file():
            return read_classes_file(Path(name).parent / "classes.txt")
    largest = -1
    for name in lists:
        for _, _, label in read_rawframe_list(name, root=data.root, multi_label=data.multi_label):
            largest = max(largest, *(label if isinstance(label, tuple) else (label,)))
    return [str(i) for i in range(largest + 1)]


class RawframesFormat(ListFormat):
    """A split is the list data.train_list / data.val_list names; its samples are `(folder, label)`
    and the frame counts are read from the same list by the reader's side (`action3d.data.frames`)."""

    name = "rawframes"
    summary = ("folders of extracted frames (mmaction2's rawframes: data.root/VIDEO/img_00001.jpg ...) and list "
               "files of 'VIDEO total_frames label' lines; frame names data.filename_tmpl from data.start_index, "
               "their rate data.fps")
    keys = ("train_list", "val_list", "classes_file", "multi_label", "filename_tmpl", "start_index", "fps")
    frames = True

    def check(self) -> None:
        """data.target_fps needs the folders' rate (they have no timestamps)."""
        if self.data.target_fps is not None and self.data.fps is None:
            fail("data.target_fps", self.data.target_fps,
                 "frame folders carry no frame rate: give theirs as data.fps=F (the rate they were extracted at), "
                 "or leave data.target_fps unset")

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        path = self.require_split_file(split, RAWFRAMES_HINT)
        classes = rawframe_classes(self.data)
        entries = read_rawframe_list(path, root=self.data.root, num_classes=len(classes),
                                     multi_label=self.data.multi_label)
        return [(folder, label) for folder, _, label in entries], classes
