"""data.format=kinetics: the official CSVs (`label,youtube_id,time_start,time_end,split[,is_cc]`) and
videos named `{youtube_id}_{time_start:06d}_{time_end:06d}.ext` anywhere under data.root, as the
common downloaders name them. Classes: data.classes_file, else the sorted labels of the training CSV.
"""
from __future__ import annotations

import csv
import functools
import logging
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from action3d.data.annotation_io import VIDEO_EXTENSIONS, Sample, read_classes_file
from action3d.data.formats.base import one_label_per_video
from action3d.data.formats.list_file import ListFormat
from action3d.errors import Action3dError

log = logging.getLogger("action3d.data")

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def kinetics_stem(youtube_id: str, time_start: str | float, time_end: str | float) -> str:
    """The file name (no extension) used by the common Kinetics downloaders."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def read_kinetics_csv(csv_path: str | Path) -> List[Tuple[str, str]]:
    """(class name, file stem) per row of a Kinetics annotation CSV."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise Action3dError(f"{csv_path}:1: header lacks column(s) {', '.join(missing)}; "
                                    f"expected {','.join(KINETICS_COLUMNS)},split")
            rows = []
            for row in reader:
                number = reader.line_num
                if any(not (row.get(c) or "").strip() for c in KINETICS_COLUMNS):
                    expected = ",".join(KINETICS_COLUMNS)
                    raise Action3dError(f"{csv_path}:{number}: empty field; expected {expected},split")
                try:
                    stem = kinetics_stem(row["youtube_id"].strip(), row["time_start"], row["time_end"])
                except ValueError:
                    raise Action3dError(f"{csv_path}:{number}: time_start/time_end must be numbers, "
                                        f"got {row['time_start']!r}, {row['time_end']!r}") from None
                rows.append((row["label"].strip(), stem))
    except FileNotFoundError:
        raise Action3dError(f"{csv_path}: annotation file not found") from None
    return rows


@functools.lru_cache(maxsize=4)
def index_videos(root: str) -> Dict[str, str]:
    """Map file stem -> path of every video file under `root` (any depth, first one wins)."""
    found: Dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.join(folder, name))
    return found


def kinetics_samples(csv_path: str | Path, *, root: str | Path, classes: Sequence[str]) -> List[Sample]:
    """Samples of a Kinetics CSV whose video exists under `root`; missing ones are logged, skipped."""
    rows = read_kinetics_csv(csv_path)
    label_of = {name: i for i, name in enumerate(classes)}
    videos = index_videos(str(Path(root).absolute()))
    samples, missing = [], []
    for name, stem in rows:
        if name not in label_of:
            raise Action3dError(f"{csv_path}: class {name!r} is not in the class list ({len(classes)} classes)")
        if stem in videos:
            samples.append((videos[stem], label_of[name]))
        else:
            missing.append(stem)
    if not samples:
        raise Action3dError(f"{csv_path}: none of its {len(rows)} videos was found under data.root={root} "
                            f"(expected names like {rows[0][1] if rows else 'ID_000010_000020'}.mp4)")
    if missing:
        log.warning("%s: %d of %d videos not found under %s (skipped), e.g. %s",
                    csv_path, len(missing), len(rows), root, ", ".join(missing[:3]))
    return samples


class KineticsFormat(ListFormat):
    """A split is the CSV data.train_list / data.val_list names; its videos are found by name."""

    name = "kinetics"
    summary = ("Kinetics CSVs (label,youtube_id,time_start,time_end,split) in data.train_list/val_list, videos "
               "named {youtube_id}_{start:06d}_{end:06d}.ext anywhere under data.root")
    keys = ("train_list", "val_list", "classes_file")
    refuses = {"multi_label": one_label_per_video("kinetics", "each CSV row names one class")}

    def preflight_root(self) -> None:
        self.require_folder("root")  # listed to find the videos

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        root = self.require("root", "give the folder holding the Kinetics videos")
        csv_path = self.require_split_file(split, "give the Kinetics annotation CSV (e.g. train.csv, validate.csv)")
        if self.data.classes_file:
            classes = read_classes_file(self.data.classes_file)
        else:  # the training CSV defines the classes, so train and val agree
            source = self.data.train_list or csv_path
            classes = sorted({name for name, _ in read_kinetics_csv(source)})
        return kinetics_samples(csv_path, root=root, classes=classes), classes

    def listed_folders(self) -> List[Path]:
        return [Path(self.data.root).absolute()] if self.data.root else []
