"""TEMPORARY SHIM (lead): replaced by the format classes of branch h-formats at merge."""
from __future__ import annotations

from types import SimpleNamespace

from action3d.config import rules_shim

FORMAT_NAMES = ("synthetic", "list", "kinetics", "ucf101", "hmdb51", "folder", "shards")
_KEYS = {"annotation_dir": ("ucf101", "hmdb51"), "split": ("ucf101", "hmdb51"), "synthetic": ("synthetic",),
         "shard_shuffle": ("shards",)}


def key_owners(key):
    return _KEYS.get(key, ())


def format_of(data):
    refuses = {}
    if data.format in ("ucf101", "hmdb51"):
        refuses["classes_file"] = f"data.format={data.format} takes its classes from the official split files"
    return SimpleNamespace(name=data.format, refuses=refuses, check=lambda: rules_shim.check_shards(data),
                           preflight=lambda required, optional=(): rules_shim.check_data(data, required=required,
                                                                                            optional=optional),
                           check_num_classes=lambda n: rules_shim.check_num_classes(data, n))
