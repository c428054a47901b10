"""data.format=folder: a class-folder tree, `data.root/{train,val}/CLASS/video.ext`; data.train_list and
data.val_list, when given, name the split folders instead of train and val. Classes: data.classes_file,
else the sorted folder names of the training split."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from action3d.data.annotation_io import VIDEO_EXTENSIONS, Sample, read_classes_file
from action3d.data.formats.base import SPLIT_KEYS, DatasetFormat, existing_files, one_label_per_video
from action3d.errors import Action3dError


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


class FolderFormat(DatasetFormat):
    """A split is a folder of class folders under data.root; its listing is the annotation."""

    name = "folder"
    summary = ("class folders: data.root/train/CLASS/video.ext and data.root/val/CLASS/video.ext "
               "(data.train_list, data.val_list: other split folder names), classes sorted by name")
    keys = ("train_list", "val_list", "classes_file")
    refuses = {"multi_label": one_label_per_video("folder", "its class folder")}

    def split_folder(self, split: str) -> Path:
        return Path(self.data.root, self.split_value(split) or split)

    def preflight(self, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        self.require_folder("root")
        self.preflight_classes_file()
        for split in required:
            if not self.split_folder(split).is_dir():
                raise Action3dError(f"data.{SPLIT_KEYS[split]}: no folder {self.split_folder(split)} of class "
                                    f"folders (data.format={self.name})")

    def has_split(self, split: str) -> bool:
        return self.data.root is not None and self.split_folder(split).is_dir()

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        self.require("root", "give the folder holding train/CLASS/*.mp4 and val/CLASS/*.mp4")
        train_dir = self.split_folder("train")
        classes = read_classes_file(self.data.classes_file) if self.data.classes_file else None
        if classes is None and split == "val" and train_dir.is_dir():
            classes = class_folder_names(train_dir)  # the training split defines the labels
        return class_folder_samples(self.split_folder(split), classes=classes)

    def annotation_files(self) -> List[Path]:
        return existing_files([Path(self.data.classes_file)] if self.data.classes_file else [])

    def listed_folders(self) -> List[Path]:
        if not self.data.root:
            return []
        return [p.absolute() for p in (self.split_folder("train"), self.split_folder("val")) if p.is_dir()]
