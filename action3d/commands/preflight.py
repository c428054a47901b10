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
from typing import Sequence

from omegaconf import DictConfig, OmegaConf

from action3d.commands._hydra import did_you_mean
from action3d.config import rules
from action3d.data.annotation_io import SPLITS
from action3d.data.formats import format_of
from action3d.data.formats.base import existing_file
from action3d.errors import Action3dError


def check_inputs(command: str, cfg: DictConfig) -> None:
    """Raise `Action3dError` (one line naming the key) for the first input `command` lacks."""
    _check_known_keys(cfg)
    _check_required(cfg)
    if command == "eval" and cfg.split not in SPLITS:
        raise Action3dError(f"split={cfg.split} is not allowed: expected one of {', '.join(SPLITS)}")
    if "ckpt" in cfg:
        existing_file("ckpt", cfg.ckpt)
    if "video" in cfg and not Path(cfg.video).exists():
        raise Action3dError(f"video={cfg.video}: no such file or folder")
    if command == "train":
        if cfg.model.pretrained:
            existing_file("model.pretrained", cfg.model.pretrained)
        if cfg.trainer.resume not in (None, "auto"):
            existing_file("trainer.resume", cfg.trainer.resume, hint="or trainer.resume=auto")
        _check_num_classes(cfg)
        check_data(cfg.data, required=("train",), optional=("val",))
    if command == "eval" and not format_of(cfg.data).generated:
        # data=GROUP replaces the checkpoint's dataset; data.* keys alone are merged into it later
        # (eval's default data section, the generated synthetic set, stands for the checkpoint's)
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


def check_data(data: DictConfig, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    """The folders and annotation files that `action3d.data.annotations.load_split` will open
    (the format of `data` knows which: `DatasetFormat.preflight`).

    required: splits that must be defined ("train", "val"); optional: splits checked only when
    their annotation key is set.
    """
    format_of(data).preflight(required=required, optional=optional)


def _check_num_classes(cfg: DictConfig) -> None:
    """A dataset whose config fixes its class count (the synthetic set) is checked against
    model.num_classes now; other datasets tell later."""
    classes, declared = cfg.model.num_classes, format_of(cfg.data).declared_classes()
    if declared is not None and classes is not None and classes != declared[0]:
        count, key = declared
        raise Action3dError(f"model.num_classes={classes} but the {cfg.data.format} dataset has {count} classes "
                            f"({key}); leave model.num_classes unset to take the dataset's")


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
