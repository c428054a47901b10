"""Annotation formats -> `(samples, classes)`: samples are `(absolute video path, label)`.

Formats (see data/README.md for examples):
- list file: `relative/path.mp4 label` per line, whitespace separated, `#` starts a comment line,
  paths may not contain spaces; paths are relative to `data.root` (default: the list's folder).
- Kinetics CSV: `label,youtube_id,time_start,time_end,split[,is_cc]`; videos named
  `{youtube_id}_{time_start:06d}_{time_end:06d}.ext` anywhere under `data.root`; classes sorted.
- UCF101: `classInd.txt`, `trainlist0N.txt`, `testlist0N.txt` in `data.annotation_dir`.
- HMDB51: `{class}_test_split{N}.txt` (1 = train, 2 = test, 0 = unused) in `data.annotation_dir`.
- class folders: `root/{train,val}/{class}/video.ext`, classes sorted by name.

Class names come back in a stable order: the label of class `classes[i]` is `i`. The trainer saves
them in checkpoints.
"""
from __future__ import annotations

import csv
import functools
import json
import logging
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from action3d.errors import Action3dError
from action3d.files import atomic_write

log = logging.getLogger("action3d.data")

Sample = Tuple[str, int]  # (absolute video path, label; -1 = unknown)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".wmv", ".3gp", ".ogv", ".ts")
SPLITS = ("train", "val")


def _content_lines(path: str | Path) -> Iterable[Tuple[int, str]]:
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


def _parse_label(text: str, path, number: int, num_classes: Optional[int]) -> int:
    try:
        label = int(text)
    except ValueError:
        raise Action3dError(f"{path}:{number}: label {text!r} is not an integer") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        allowed = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise Action3dError(f"{path}:{number}: label {label} is out of range (allowed: {allowed})")
    return label


# --------------------------------------------------------------------------- list files

def read_list_file(path: str | Path, *, root: Optional[str | Path] = None,
                   num_classes: Optional[int] = None) -> List[Sample]:
    """Parse `relative/path label` lines; paths are joined to `root` (default: the list's folder)."""
    base = Path(root) if root is not None else Path(path).resolve().parent
    samples = []
    for number, text in _content_lines(path):
        fields = text.split()
        if len(fields) != 2:
            raise Action3dError(
                f"{path}:{number}: expected 'relative/path label' (2 fields, paths without spaces), "
                f"got {len(fields)} fields: {text[:80]!r}")
        samples.append((str((base / fields[0]).absolute()), _parse_label(fields[1], path, number, num_classes)))
    return samples


def write_list_file(path: str | Path, samples: Sequence[Sample], root: str | Path) -> None:
    """Write `path label` lines, paths relative to `root` where they lie under it (atomic write)."""
    root = Path(root).absolute()
    lines = []
    for video, label in samples:
        video_path = Path(video).absolute()
        shown = os.path.relpath(video_path, root) if video_path.is_relative_to(root) else str(video_path)
        if any(ch.isspace() for ch in shown):
            raise Action3dError(f"{video}: list files cannot hold paths with whitespace; rename the file")
        lines.append(f"{shown} {int(label)}\n")
    atomic_write(path, "".join(lines))


def read_classes_file(path: str | Path) -> List[str]:
    """One class name per line, or `index name` lines (UCF101's classInd.txt), in file order."""
    classes = []
    for _number, text in _content_lines(path):
        first, _, rest = text.partition(" ")
        classes.append(rest.strip() if first.isdigit() and rest.strip() else text)
    if len(set(classes)) != len(classes):
        raise Action3dError(f"{path}: class names must be unique")
    return classes


def write_classes_file(path: str | Path, classes: Sequence[str]) -> None:
    atomic_write(path, "".join(f"{name}\n" for name in classes))


# --------------------------------------------------------------------------- Kinetics

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


# --------------------------------------------------------------------------- UCF101 and HMDB51

def ucf101_samples(annotation_dir: str | Path, *, root: str | Path, split: int, train: bool
                   ) -> Tuple[List[Sample], List[str]]:
    """UCF101 official split N: `trainlist0N.txt` (`Class/v_x.avi label1`) or `testlist0N.txt`."""
    annotation_dir = Path(annotation_dir)
    classes = read_classes_file(annotation_dir / "classInd.txt")
    label_of = {name.lower(): i for i, name in enumerate(classes)}
    list_path = annotation_dir / f"{'train' if train else 'test'}list0{split}.txt"
    samples = []
    for number, text in _content_lines(list_path):
        fields = text.split()
        if len(fields) not in (1, 2):
            raise Action3dError(f"{list_path}:{number}: expected 'Class/video.avi [label]', got {text[:80]!r}")
        folder = fields[0].split("/")[0].lower()
        if folder not in label_of:
            folder = fields[0].split("/")[0]
            raise Action3dError(f"{list_path}:{number}: class folder {folder!r} is not in classInd.txt")
        label = label_of[folder]
        if len(fields) == 2 and _parse_label(fields[1], list_path, number, len(classes) + 1) - 1 != label:
            raise Action3dError(f"{list_path}:{number}: label {fields[1]} does not match class folder {folder!r}")
        samples.append((str(Path(root).absolute() / fields[0]), label))
    return samples, classes


_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<n>\d)\.txt$")


def hmdb51_samples(annotation_dir: str | Path, *, root: str | Path, split: int, train: bool
                   ) -> Tuple[List[Sample], List[str]]:
    """HMDB51 official split N: `{class}_test_split{N}.txt` lines `video.avi id`, 1=train 2=test 0=unused."""
    annotation_dir = Path(annotation_dir)
    by_class = {m["cls"]: p for p in annotation_dir.glob(f"*_test_split{split}.txt")
                if (m := _HMDB_SPLIT.match(p.name))}
    if not by_class:
        raise Action3dError(f"data.annotation_dir={annotation_dir}: no HMDB51 split files "
                            f"'*_test_split{split}.txt' found")
    classes = sorted(by_class)
    files = [by_class[name] for name in classes]
    wanted = "1" if train else "2"
    samples = []
    for label, (name, split_file) in enumerate(zip(classes, files)):
        for number, text in _content_lines(split_file):
            fields = text.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise Action3dError(f"{split_file}:{number}: expected 'video.avi 0|1|2', got {text[:80]!r}")
            if fields[1] == wanted:
                samples.append((str(Path(root).absolute() / name / fields[0]), label))
    return samples, classes


# --------------------------------------------------------------------------- class folders

def class_folder_names(folder: str | Path) -> List[str]:
    folder = Path(folder)
    if not folder.is_dir():
        raise Action3dError(f"{folder}: class folder tree not found (expected {folder}/CLASS/video.mp4)")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def class_folder_samples(folder: str | Path, *, classes: Optional[Sequence[str]] = None
                         ) -> Tuple[List[Sample], List[str]]:
    """`folder/{class}/*.ext`: classes are the sorted sub-folder names unless given."""
    folder = Path(folder)
    found = class_folder_names(folder)
    classes = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise Action3dError(f"{folder}: class folder(s) {', '.join(unknown[:5])} not among the training classes")
    samples = []
    for label, name in enumerate(classes):
        for dirpath, dirs, files in os.walk(folder / name):
            dirs.sort()
            samples += [(str(Path(dirpath, f).absolute()), label) for f in sorted(files)
                        if os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS]
    if not samples:
        raise Action3dError(f"{folder}: no video files ({', '.join(VIDEO_EXTENSIONS[:5])}, ...) in its class folders")
    return samples, classes


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

SHARD_INDEX_FILE = "index.json"         # written by `action3d data pack` (action3d.data.shards)
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


# --------------------------------------------------------------------------- one entry point

def _require(data_cfg, key: str, hint: str) -> str:
    value = getattr(data_cfg, key)
    if value in (None, ""):
        raise Action3dError(f"data.{key} is not set (data.format={data_cfg.format}): {hint}")
    return str(value)


def _split_file(data_cfg, split: str, hint: str) -> str:
    return _require(data_cfg, "train_list" if split == "train" else "val_list", hint)


def list_classes(data_cfg) -> List[str]:
    """Class names of a list-file dataset: data.classes_file, else classes.txt beside the training
    list, else "0".."K-1" with K one more than the largest label of the lists."""
    if data_cfg.classes_file:
        return read_classes_file(data_cfg.classes_file)
    for name in (data_cfg.train_list, data_cfg.val_list):
        if name and (Path(name).parent / "classes.txt").is_file():
            return read_classes_file(Path(name).parent / "classes.txt")
    labels = [label for name in (data_cfg.train_list, data_cfg.val_list) if name
              for _, label in read_list_file(name, root=data_cfg.root)]
    return [str(i) for i in range(max(labels, default=-1) + 1)]


def has_split(data_cfg, split: str) -> bool:
    """Whether `data_cfg` defines `split` ("train" | "val") without reading any annotation."""
    if data_cfg.format == "shards":  # the packed splits, listed in data.root/index.json
        root = data_cfg.root
        return bool(root) and (Path(root) / SHARD_INDEX_FILE).is_file() and split in read_shard_index(root)["splits"]
    if data_cfg.format in ("synthetic", "ucf101", "hmdb51"):
        return True  # the synthetic set and the official splits always have both
    if data_cfg.format == "folder":
        default = "train" if split == "train" else "val"
        name = (data_cfg.train_list if split == "train" else data_cfg.val_list) or default
        return data_cfg.root is not None and Path(data_cfg.root, name).is_dir()
    return bool(data_cfg.train_list if split == "train" else data_cfg.val_list)


def load_split(data_cfg, split: str) -> Tuple[List[Sample], List[str]]:
    """The samples of split "train" or "val" of the dataset `data_cfg` describes, and its classes."""
    if split not in SPLITS:
        raise Action3dError(f"split={split} is not allowed: expected one of {', '.join(SPLITS)}")
    fmt = data_cfg.format
    if fmt == "synthetic" and not data_cfg.train_list:
        raise Action3dError("data.format=synthetic: the synthetic set is not generated yet; resolve the data "
                            "config first (action3d.engine.data.resolve_data)")
    if fmt in ("list", "synthetic"):  # a resolved synthetic set is a list-file dataset
        path = _split_file(data_cfg, split, "give the annotation list file ('relative/path.mp4 label' lines)")
        classes = list_classes(data_cfg)
        return read_list_file(path, root=data_cfg.root, num_classes=len(classes)), classes
    if fmt == "kinetics":
        root = _require(data_cfg, "root", "give the folder holding the Kinetics videos")
        csv_path = _split_file(data_cfg, split, "give the Kinetics annotation CSV (e.g. train.csv, validate.csv)")
        if data_cfg.classes_file:
            classes = read_classes_file(data_cfg.classes_file)
        else:  # the training CSV defines the classes, so train and val agree
            source = data_cfg.train_list or csv_path
            classes = sorted({name for name, _ in read_kinetics_csv(source)})
        return kinetics_samples(csv_path, root=root, classes=classes), classes
    if fmt in ("ucf101", "hmdb51"):
        root = _require(data_cfg, "root", f"give the folder holding the {fmt.upper()} class folders")
        notes = _require(data_cfg, "annotation_dir", "give the folder of the official split files "
                         "(UCF101: ucfTrainTestlist; HMDB51: testTrainMulti_7030_splits)")
        if data_cfg.split not in (1, 2, 3):
            raise Action3dError(f"data.split={data_cfg.split} is not allowed: expected 1, 2 or 3")
        read = ucf101_samples if fmt == "ucf101" else hmdb51_samples
        return read(notes, root=root, split=data_cfg.split, train=split == "train")
    if fmt == "folder":
        root = _require(data_cfg, "root", "give the folder holding train/CLASS/*.mp4 and val/CLASS/*.mp4")
        train_dir = Path(root, data_cfg.train_list or "train")
        classes = read_classes_file(data_cfg.classes_file) if data_cfg.classes_file else None
        if classes is None and split == "val" and train_dir.is_dir():
            classes = class_folder_names(train_dir)  # the training split defines the labels
        folder = train_dir if split == "train" else Path(root, data_cfg.val_list or "val")
        return class_folder_samples(folder, classes=classes)
    raise Action3dError(f"data.format={fmt} is not allowed: expected one of synthetic, list, kinetics, "
                        "ucf101, hmdb51, folder")
