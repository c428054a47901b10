"""Video data path: files -> decode (PyAV) -> sample frames -> transform -> batch.

Public names are imported lazily (PEP 562): importing one module of the package does not pull
in torch, torchvision and PyAV through the others.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "sample_frames": "sampling",
    "normalize": "transforms", "build_train_transform": "train_transforms", "build_test_transform": "test_transforms",
    "load_split": "annotations", "has_split": "annotations", "read_list_file": "annotations",
    "write_list_file": "annotations", "read_classes_file": "annotations", "write_classes_file": "annotations",
    "VideoDataset": "dataset", "DatasetBrokenError": "load_failures", "build_dataset": "dataset",
    "make_synthetic": "synthetic", "ensure_synthetic": "synthetic",
    "check_dataset": "check", "CheckReport": "check",
    "VideoReader": "decode", "DecodeError": "decode", "read_all_frames": "decode",
    "write_video": "video_writer",
    "SampleIndex": "index", "resolve_index": "index",
    "ShardDataset": "shards", "load_shard_split": "shards", "pack_dataset": "shard_pack",
    "DatasetFormat": "formats", "FORMATS": "formats", "FORMAT_NAMES": "formats", "format_of": "formats",
    "key_owners": "formats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'action3d.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"action3d.data.{_EXPORTS[name]}"), name)


def __dir__():
    return __all__
