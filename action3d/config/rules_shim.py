"""TEMPORARY SHIM (lead): removed at the merge of h-formats."""
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig

from action3d.config.checks import fail
from action3d.errors import Action3dError

LIST_KEYS = {"train": "train_list", "val": "val_list"}
SHARD_ONLY_KEYS = ("train_list", "val_list", "classes_file", "annotation_dir")


def check_shards(data: Any, prefix: str = "data.") -> None:
    """data.format=shards: the splits and classes are the pack's; the sampler streams."""
    if data.format != "shards":
        return
    for key in SHARD_ONLY_KEYS:
        if getattr(data, key, None) not in (None, ""):
            fail(f"{prefix}{key}", getattr(data, key), f"{prefix}format=shards reads the splits and classes "
                 f"of the packed dataset ({prefix}root/index.json); leave it unset")
    if getattr(data, "sampler", "random") == "balanced":
        fail(f"{prefix}sampler", "balanced", f"{prefix}format=shards reads each shard front to back; class-balanced "
             "draws need random access: use data.sampler=random, or train from the files")


def _existing_file(key: str, value: Any, hint: str = "") -> None:
    path = Path(str(value)).expanduser()  # as the checkpoint readers do; never stricter than them
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise Action3dError(f"{key}={value}: {what}{'; ' + hint if hint else ''}")


def _existing_dir(key: str, value: Any, data: DictConfig) -> None:
    if value in (None, ""):
        raise Action3dError(f"data.{key} is not set (data.format={data.format}): give the dataset's folder "
                            f"as data.{key}=PATH")
    if not Path(str(value)).is_dir():
        raise Action3dError(f"data.{key}={value}: no such folder (data.format={data.format})")


def check_data(data: DictConfig, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    """The folders and annotation files that `action3d.data.annotations.load_split` will open.

    required: splits that must be defined ("train", "val"); optional: splits checked only when
    their annotation key is set.
    """
    fmt = data.format
    if fmt == "shards":  # a packed dataset: its index names the splits
        _existing_dir("root", data.root, data)
        if not Path(data.root, "index.json").is_file():
            raise Action3dError(f"data.root={data.root}: no index.json (data.format=shards); pack a dataset "
                                f"there first: action3d data pack data=... out={data.root}")
        return
    if fmt in ("kinetics", "ucf101", "hmdb51", "folder"):
        _existing_dir("root", data.root, data)
    elif data.root not in (None, "") and fmt != "synthetic" and not Path(data.root).is_dir():
        raise Action3dError(f"data.root={data.root}: no such folder (data.format={fmt})")
    if fmt in ("ucf101", "hmdb51"):
        _existing_dir("annotation_dir", data.annotation_dir, data)
        return  # the official split files are named by the format, inside annotation_dir
    if data.classes_file not in (None, ""):
        _existing_file("data.classes_file", data.classes_file)
    for split in (*required, *optional):
        key = LIST_KEYS[split]
        value = data[key]
        if fmt == "folder":  # class-folder tree: the keys name sub-folders of data.root
            folder = Path(data.root, value or split)
            if split in required and not folder.is_dir():
                raise Action3dError(f"data.{key}: no folder {folder} of class folders (data.format=folder)")
        elif value not in (None, ""):
            _existing_file(f"data.{key}", value)
        elif split in required and fmt != "synthetic":
            raise Action3dError(f"data.{key} is not set (data.format={fmt}): give the {split} annotation file "
                                f"as data.{key}=PATH")



def check_num_classes(data, classes):
    if data.format == "synthetic" and classes is not None and classes != data.synthetic.num_classes:
        raise Action3dError(f"model.num_classes={classes} but the synthetic dataset has {data.synthetic.num_classes} "
                            "classes (data.synthetic.num_classes); leave model.num_classes unset to take the dataset's")
