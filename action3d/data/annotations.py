"""A data section -> `(samples, classes)`: samples are `(absolute video path, label)`.

`load_split(data_cfg, split)` and `has_split(data_cfg, split)` ask the section's format
(`action3d.data.formats`): list files, Kinetics CSVs, UCF101/HMDB51 official splits, class folders,
the synthetic set once resolved (see data/README.md for examples). The readers of the annotation
files are re-exported here for the callers that name this module (`read_list_file`,
`read_kinetics_csv`, `ucf101_samples`, ...); they live in `action3d.data.annotation_io` and in the
format modules.

Class names come back in a stable order: the label of class `classes[i]` is `i`. The trainer saves
them in checkpoints.
"""
from __future__ import annotations

from typing import List, Tuple

from action3d.data.annotation_io import (
    SHARD_INDEX_FILE,
    SHARDS_FORMAT,
    SPLITS,
    VIDEO_EXTENSIONS,
    Sample,
    find_videos,
    read_classes_file,
    read_list_file,
    read_shard_index,
    write_classes_file,
    write_list_file,
)
from action3d.data.formats import format_of
from action3d.data.formats.folder import class_folder_names, class_folder_samples
from action3d.data.formats.kinetics import (
    KINETICS_COLUMNS,
    index_videos,
    kinetics_samples,
    kinetics_stem,
    read_kinetics_csv,
)
from action3d.data.formats.list_file import list_classes
from action3d.data.formats.official_splits import hmdb51_samples, ucf101_samples


def has_split(data_cfg, split: str) -> bool:
    """Whether `data_cfg` defines `split` ("train" | "val") without reading any annotation."""
    return format_of(data_cfg).has_split(split)


def load_split(data_cfg, split: str) -> Tuple[List[Sample], List[str]]:
    """The samples of split "train" or "val" of the dataset `data_cfg` describes, and its classes."""
    return format_of(data_cfg).load_split(split)


__all__ = [
    "KINETICS_COLUMNS", "SHARDS_FORMAT", "SHARD_INDEX_FILE", "SPLITS", "VIDEO_EXTENSIONS", "Sample",
    "class_folder_names", "class_folder_samples", "find_videos", "has_split", "hmdb51_samples", "index_videos",
    "kinetics_samples", "kinetics_stem", "list_classes", "load_split", "read_classes_file", "read_kinetics_csv",
    "read_list_file", "read_shard_index", "ucf101_samples", "write_classes_file", "write_list_file",
]
