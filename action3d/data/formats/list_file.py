"""data.format=list: one list file per split, `relative/path.mp4 label` lines, or under data.multi_label
`relative/path.mp4 label [label ...]` (see docs/datasets.md)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

from action3d.data.annotation_io import Sample, read_classes_file, read_list_file
from action3d.data.formats.base import SPLIT_KEYS, DatasetFormat, existing_file, existing_files, is_set
from action3d.errors import Action3dError

LIST_HINT = "give the annotation list file ('relative/path.mp4 label' lines)"


def list_classes(data_cfg) -> List[str]:
    """Class names of a list-file dataset: data.classes_file, else classes.txt beside the training
    list, else "0".."K-1" with K one more than the largest label of the lists (of any of a line's
    labels under data.multi_label)."""
    if data_cfg.classes_file:
        return read_classes_file(data_cfg.classes_file)
    for name in (data_cfg.train_list, data_cfg.val_list):
        if name and (Path(name).parent / "classes.txt").is_file():
            return read_classes_file(Path(name).parent / "classes.txt")
    multi_label = data_cfg.multi_label
    labels = [value for name in (data_cfg.train_list, data_cfg.val_list) if name
              for _, label in read_list_file(name, root=data_cfg.root, multi_label=multi_label)
              for value in (label if multi_label else (label,))]
    return [str(i) for i in range(max(labels, default=-1) + 1)]


class ListFormat(DatasetFormat):
    """A split is the annotation file data.train_list / data.val_list names; data.root is the base of
    its relative paths (default: the list's folder). Subclasses read other kinds of per-split files."""

    name = "list"
    summary = ("list files of 'relative/path.mp4 label' lines (data.train_list, data.val_list), paths "
               "relative to data.root; classes from data.classes_file or classes.txt beside the lists; "
               "data.multi_label=true: 'relative/path.mp4 label [label ...]' lines")
    keys = ("train_list", "val_list", "classes_file", "multi_label")

    def preflight(self, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        self.preflight_root()
        self.preflight_classes_file()
        for split in (*required, *optional):
            self.preflight_split(split, required=split in required)

    def preflight_root(self) -> None:
        """data.root, where given, is a folder (the lists' paths are relative to it)."""
        root = self.data.root
        if is_set(root) and not Path(root).is_dir():
            raise Action3dError(f"data.root={root}: no such folder (data.format={self.name})")

    def preflight_split(self, split: str, *, required: bool) -> None:
        key, value = SPLIT_KEYS[split], self.split_value(split)
        if is_set(value):
            existing_file(f"data.{key}", value)
        elif required:
            raise Action3dError(f"data.{key} is not set (data.format={self.name}): give the {split} annotation "
                                f"file as data.{key}=PATH")

    def has_split(self, split: str) -> bool:
        return bool(self.split_value(split))

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        path = self.require_split_file(split, LIST_HINT)
        classes = list_classes(self.data)
        return read_list_file(path, root=self.data.root, num_classes=len(classes),
                              multi_label=self.data.multi_label), classes

    def require_split_file(self, split: str, hint: str) -> str:
        return self.require(SPLIT_KEYS[split], hint)

    def annotation_files(self) -> List[Path]:
        """The lists, the classes file, and the classes.txt beside each (`list_classes` reads one)."""
        given = [Path(v) for v in (self.data.train_list, self.data.val_list, self.data.classes_file) if v]
        return existing_files(p for path in given for p in (path, path.parent / "classes.txt"))
