"""data.format=ucf101 | hmdb51: the official splits 1..3 (data.split) of the two datasets, their split
files in data.annotation_dir and the class folders under data.root.

- UCF101: `classInd.txt`, `trainlist0N.txt`, `testlist0N.txt` (ucfTrainTestlist).
- HMDB51: `{class}_test_split{N}.txt`, 1 = train, 2 = test, 0 = unused (testTrainMulti_7030_splits).
"""
from __future__ import annotations

import abc
import re
from pathlib import Path
from typing import List, Sequence, Tuple

from action3d.data.annotation_io import Sample, content_lines, parse_label, read_classes_file
from action3d.data.formats.base import DatasetFormat, one_label_per_video
from action3d.errors import Action3dError

OFFICIAL_SPLITS = (1, 2, 3)

def ucf101_samples(annotation_dir: str | Path, *, root: str | Path, split: int, train: bool
                   ) -> Tuple[List[Sample], List[str]]:
    """UCF101 official split N: `trainlist0N.txt` (`Class/v_x.avi label1`) or `testlist0N.txt`."""
    annotation_dir = Path(annotation_dir)
    classes = read_classes_file(annotation_dir / "classInd.txt")
    label_of = {name.lower(): i for i, name in enumerate(classes)}
    list_path = annotation_dir / f"{'train' if train else 'test'}list0{split}.txt"
    samples = []
    for number, text in content_lines(list_path):
        fields = text.split()
        if len(fields) not in (1, 2):
            raise Action3dError(f"{list_path}:{number}: expected 'Class/video.avi [label]', got {text[:80]!r}")
        folder = fields[0].split("/")[0].lower()
        if folder not in label_of:
            folder = fields[0].split("/")[0]
            raise Action3dError(f"{list_path}:{number}: class folder {folder!r} is not in classInd.txt")
        label = label_of[folder]
        if len(fields) == 2 and parse_label(fields[1], list_path, number, len(classes) + 1) - 1 != label:
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
        for number, text in content_lines(split_file):
            fields = text.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise Action3dError(f"{split_file}:{number}: expected 'video.avi 0|1|2', got {text[:80]!r}")
            if fields[1] == wanted:
                samples.append((str(Path(root).absolute() / name / fields[0]), label))
    return samples, classes


class OfficialSplitsFormat(DatasetFormat):
    """The split files name the videos and their classes; data.root holds the class folders."""

    keys = ("annotation_dir", "split")

    def preflight(self, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        """The folders only: the split files in annotation_dir are named by the format."""
        self.require_folder("root")
        self.require_folder("annotation_dir")

    def has_split(self, split: str) -> bool:
        return True  # every official split has both

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        root = self.require("root", f"give the folder holding the {self.name.upper()} class folders")
        notes = self.require("annotation_dir", "give the folder of the official split files "
                             "(UCF101: ucfTrainTestlist; HMDB51: testTrainMulti_7030_splits)")
        if self.data.split not in OFFICIAL_SPLITS:
            raise Action3dError(f"data.split={self.data.split} is not allowed: expected 1, 2 or 3")
        return self.read_official(notes, root=root, split=self.data.split, train=split == "train")

    @abc.abstractmethod
    def read_official(self, annotation_dir: str, *, root: str, split: int, train: bool
                      ) -> Tuple[List[Sample], List[str]]:
        """The samples and classes of official split `split` (its training or its test part)."""

    def annotation_files(self) -> List[Path]:
        """Every file of data.annotation_dir (which ones a split reads depends on the format)."""
        notes = self.data.annotation_dir
        if not notes or not Path(notes).is_dir():
            return []
        return sorted(p.absolute() for p in Path(notes).iterdir() if p.is_file())


class UCF101Format(OfficialSplitsFormat):
    name = "ucf101"
    summary = ("UCF101's official splits: classInd.txt, trainlist0N.txt, testlist0N.txt in data.annotation_dir "
               "(data.split=N), class folders under data.root")
    refuses = {"classes_file": "data.format=ucf101 takes its classes from the official split files",
               "multi_label": one_label_per_video("ucf101", "its class folder in the official split files")}

    def read_official(self, annotation_dir: str, *, root: str, split: int, train: bool
                      ) -> Tuple[List[Sample], List[str]]:
        return ucf101_samples(annotation_dir, root=root, split=split, train=train)


class HMDB51Format(OfficialSplitsFormat):
    name = "hmdb51"
    summary = ("HMDB51's official splits: {class}_test_split{N}.txt in data.annotation_dir (data.split=N), "
               "class folders under data.root")
    refuses = {"classes_file": "data.format=hmdb51 takes its classes from the official split files",
               "multi_label": one_label_per_video("hmdb51", "its class folder in the official split files")}

    def read_official(self, annotation_dir: str, *, root: str, split: int, train: bool
                      ) -> Tuple[List[Sample], List[str]]:
        return hmdb51_samples(annotation_dir, root=root, split=split, train=train)
