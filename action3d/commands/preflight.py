"""What a command will read must be there: checked before Hydra creates any run directory.

`action3d.cli.prevalidate` calls `check_inputs` for every job of a command line, after the config
checks (`action3d.config.validate`). Without it a missing dataset root, annotation list, checkpoint
or video, a required key
left out, or a CUDA-only setting on a machine without CUDA would be found only after Hydra had
created the run directory (or written its config and log into an existing one, e.g. the run a
user meant to resume). Only existence and cheap facts are checked here; reading the files
(annotation lists, checkpoints) stays with the command, which reports its own errors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from action3d.commands._hydra import did_you_mean
from action3d.config import rules
from action3d.errors import Action3dError

LIST_KEYS = {"train": "train_list", "val": "val_list"}


def check_inputs(command: str, cfg: DictConfig) -> None:
    """Raise `Action3dError` (one line naming the key) for the first input `command` lacks."""
    _check_known_keys(cfg)
    _check_required(cfg)
    if command == "eval" and cfg.split not in LIST_KEYS:
        raise Action3dError(f"split={cfg.split} is not allowed: expected one of {', '.join(LIST_KEYS)}")
    if "ckpt" in cfg:
        _existing_file("ckpt", cfg.ckpt)
    if "video" in cfg and not Path(cfg.video).exists():
        raise Action3dError(f"video={cfg.video}: no such file or folder")
    if command == "train":
        if cfg.model.pretrained:
            _existing_file("model.pretrained", cfg.model.pretrained)
        if cfg.trainer.resume not in (None, "auto"):
            _existing_file("trainer.resume", cfg.trainer.resume, hint="or trainer.resume=auto")
        _check_num_classes(cfg)
        check_data(cfg.data, required=("train",), optional=("val",))
    if command == "eval" and cfg.data.format != "synthetic":
        # data=GROUP replaces the checkpoint's dataset; data.* keys alone are merged into it later
        check_data(cfg.data, required=(cfg.split,))
    if "trainer" in cfg:
        _check_device(cfg.trainer)


def _check_known_keys(node: DictConfig, prefix: str = "") -> None:
    """`+key=value` makes Hydra add a key that no schema has (nothing would read it): a typo."""
    fields = getattr(OmegaConf.get_type(node), "__dataclass_fields__", None)
    if fields is None:
        return
    for key in node.keys():
        if key not in fields:
            raise Action3dError(f"{prefix}{key}: unknown key{did_you_mean(f'{prefix}{key}', list(fields))}")
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _check_known_keys(child, f"{prefix}{key}.")


def _check_required(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        raise Action3dError(f"{key}: required, give it on the command line as {key}=...")


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


def _check_num_classes(cfg: DictConfig) -> None:
    """The synthetic dataset's class count is known before it exists; other datasets tell later."""
    data, classes = cfg.data, cfg.model.num_classes
    if data.format == "synthetic" and classes is not None and classes != data.synthetic.num_classes:
        raise Action3dError(f"model.num_classes={classes} but the synthetic dataset has {data.synthetic.num_classes} "
                            "classes (data.synthetic.num_classes); leave model.num_classes unset to take the dataset's")


def _check_device(trainer: DictConfig) -> None:
    """CUDA-only settings on a machine without CUDA. torch is imported only when one is asked for."""
    needs_cuda = trainer.device == "cuda" or trainer.get("sync_bn", False)
    if not needs_cuda:
        return
    import torch

    cuda = torch.cuda.is_available()
    rules.check_device(trainer.device, cuda_available=cuda)
    rules.check_sync_bn(trainer.get("sync_bn", False),
                        device_type=rules.resolve_device_type(trainer.device, cuda_available=cuda))
