"""Which keys a user may set for a command, given the rest of the config.

A key the user sets (on the command line) that cannot take effect is refused with one line
naming it: SGD's momentum under AdamW, SlowFast keys under a ResNet3d, training augmentation in
`eval`, dataset keys in `predict`, and so on. Preset defaults that do not apply are fine: only keys
the user set are checked. Plain Python, no torch: `action3d.cli.prevalidate` calls
`check_user_keys` for every job before anything runs.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, List, Optional, Tuple

from omegaconf import DictConfig

from action3d.config.rules import ARCH_SETTINGS, ConfigError

# Data keys that define which videos a dataset holds (not how each is sampled).
DATASET_KEYS = ("data.format", "data.root", "data.train_list", "data.val_list", "data.classes_file",
                "data.annotation_dir", "data.split", "data.name", "data.synthetic")
# Data keys of training only: its augmentation, its batches and its loader.
TRAINING_DATA_KEYS = ("data.batch_size", "data.num_clips", "data.train_crop", "data.crop_area_range", "data.flip",
                      "data.persistent_workers", "data.shard_shuffle", "data.sampler")
LOADER_KEYS = ("data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor")
SLOWFAST_KEYS = ("model.resample_rate", "model.speed_ratio", "model.channel_ratio", "model.fusion_kernel",
                 "model.fast_conv1_kernel", "model.fast_inflate")
# The data keys export takes: the input shape, the normalisation inside the model, the sidecar's sampling.
EXPORT_DATA_KEYS = ("data.clip_len", "data.frame_interval", "data.short_side", "data.crop_size", "data.mean",
                    "data.std")
NON_LOCAL_KEYS = ("model.non_local_mode", "model.non_local_sub_sample", "model.non_local_use_scale")

Condition = Callable[[DictConfig], Optional[str]]  # cfg -> why the key cannot apply, or None


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _always(reason: str) -> Condition:
    return lambda cfg: reason


def _flags(values) -> List[int]:
    out: List[int] = []
    for v in values:
        out += list(v) if isinstance(v, (list, tuple)) or hasattr(v, "__len__") else [v]
    return out


# (commands, key prefixes, condition): the key cannot apply when the condition gives a reason.
RULES: List[Tuple[Tuple[str, ...], Tuple[str, ...], Condition]] = [
    (("train",), ("optim.momentum", "optim.nesterov"),
     lambda c: None if c.optim.name == "sgd" else f"it is an SGD setting and optim.name={c.optim.name}"),
    (("train",), ("optim.betas",),
     lambda c: None if c.optim.name == "adamw" else f"it is an AdamW setting and optim.name={c.optim.name}"),
    (("train",), ("sched.milestones", "sched.gamma"),
     lambda c: None if c.sched.name == "multistep" else f"it is a multistep setting and sched.name={c.sched.name}"),
    (("train",), ("sched.min_lr",),
     lambda c: None if c.sched.name == "cosine" else f"it is a cosine setting and sched.name={c.sched.name}"),
    (("train",), ("data.crop_area_range",),
     lambda c: None if c.data.train_crop == "random_resized"
     else f"it sets random_resized crops and data.train_crop={c.data.train_crop}"),
    (("train", "eval", "data"), ("data.annotation_dir", "data.split"),
     lambda c: None if c.data.format in ("ucf101", "hmdb51")
     else f"it selects UCF101/HMDB51 official splits and data.format={c.data.format}"),
    (("train", "eval", "data"), ("data.classes_file",),
     lambda c: None if c.data.format not in ("ucf101", "hmdb51")
     else f"data.format={c.data.format} takes its classes from the official split files"),
    (("train", "eval", "data"), ("data.synthetic",),
     lambda c: None if c.data.format == "synthetic"
     else f"it configures the synthetic set and data.format={c.data.format}"),
    (("train",), ("data.shard_shuffle",),
     lambda c: None if c.data.format == "shards"
     else f"it sizes the shuffle buffer of data.format=shards and data.format={c.data.format}"),
    (("train",), ("data.persistent_workers", "data.prefetch_factor"),
     lambda c: None if c.data.num_workers != 0 else "data.num_workers=0 loads in the main process"),
    (("train", "info"), SLOWFAST_KEYS,
     lambda c: None if c.model.arch == "slowfast" else f"it is a SlowFast setting and model.arch={c.model.arch}"),
    (("train", "info"), NON_LOCAL_KEYS,
     lambda c: None if 1 in _flags(c.model.non_local) else "model.non_local places no non-local block"),
    (("train", "info"), ("model.pretrained2d",),
     lambda c: None if c.model.pretrained else "no model.pretrained is given"),
    (("train", "info"), ("model.advanced",),
     lambda c: None if c.model.shortcut_type == "B" else "shortcut_type=A has no convolution to average-pool for"),
    (("train", "info"), ("model.style", "model.inflate_style"),
     lambda c: None if ARCH_SETTINGS.get(c.model.depth, ("",))[0] == "bottleneck"
     else f"it shapes bottleneck blocks and model.depth={c.model.depth} uses basic blocks"),
    (("eval",), ("data.train_list",),
     lambda c: None if c.split == "train" else f"split={c.split} reads data.val_list"),
    (("eval",), ("data.val_list",),
     lambda c: None if c.split == "val" else f"split={c.split} reads data.train_list"),
    (("eval",), TRAINING_DATA_KEYS,
     _always("it is a training setting; eval uses eval.batch_size, eval.num_clips and eval.num_crops")),
    (("predict",), DATASET_KEYS + TRAINING_DATA_KEYS + LOADER_KEYS + ("data.max_fail_ratio",),
     _always("predict reads the videos given by video=, one at a time in this process; only sampling, crop "
             "and normalisation keys of data.* apply")),
    (("info",), ("data",),
     _always("info summarises the model for input=[C,T,H,W]; data settings do not apply")),
    (("info",), ("default_num_classes",),
     lambda c: None if c.model.num_classes is None else f"model.num_classes={c.model.num_classes} is set"),
    (("train",), ("model.in_channels",),
     lambda c: None if c.model.in_channels == 3 else "videos decode to 3 RGB channels; other input channels "
                                                      "apply to `action3d info` and to Python use of the backbones"),
    (("train",), ("trainer.sync_bn",),
     lambda c: None if not c.trainer.sync_bn or int(os.environ.get("WORLD_SIZE", "1")) > 1
     else "it synchronises BatchNorm across DDP processes and this is one process (start it with torchrun)"),
    (("predict",), ("eval.batch_size",),
     _always("predict scores one video at a time")),
    (("embed", "explain"), DATASET_KEYS + TRAINING_DATA_KEYS + LOADER_KEYS + ("data.max_fail_ratio", "eval.batch_size"),
     _always("it reads the videos given by video=, one window or clip at a time in this process; only sampling, "
             "crop, decoding and normalisation keys of data.* apply")),
    (("data",), TRAINING_DATA_KEYS + LOADER_KEYS,
     _always("the data tools do not load batches")),
]


def not_applicable(command: str, key: str, cfg: DictConfig) -> Optional[str]:
    """Why `key`, set by the user, cannot take effect in `command` (None: it applies)."""
    for commands, prefixes, condition in RULES:
        if command in commands and _under(key, prefixes):
            reason = condition(cfg)
            if reason:
                return reason
    if command == "data":
        return _data_action_reason(key, cfg)
    if command == "export" and key.startswith("data.") and not _under(key, EXPORT_DATA_KEYS):
        return f"export records the sampling and normalises inside the model; only {', '.join(EXPORT_DATA_KEYS)} apply"
    return None


# data command: which top-level keys each action reads
DATA_ACTION_KEYS = {
    "synth": ("out", "data.synthetic"),
    "check": ("out", "workers", "min_frames", "split", "data"),
    "prepare": ("out", "workers", "short_side", "gop", "crf", "split", "part", "merge", "data"),
    "pack": ("out", "shard_mb", "split", "data"),
}
DATA_ACTION_SAMPLING = ("data.clip_len", "data.frame_interval")  # check: the clip span


def _data_action_reason(key: str, cfg: DictConfig) -> Optional[str]:
    action = cfg.action
    if action not in DATA_ACTION_KEYS or key == "action":
        return None
    allowed = DATA_ACTION_KEYS[action]
    if action in ("prepare", "pack") and _under(key, DATA_ACTION_SAMPLING):
        verb = "re-encodes" if action == "prepare" else "copies"
        return f"{action} {verb} whole videos; clip sampling does not apply"
    if action in ("check", "prepare", "pack") and key.startswith("data.") and not (
            _under(key, DATASET_KEYS) or _under(key, DATA_ACTION_SAMPLING) or key == "data.autorotate"):
        return f"data {action} reads the dataset's files; clip transforms and loading do not apply"
    if not _under(key, allowed):
        return f"data {action} does not read it"
    return None


def check_user_keys(command: str, cfg: DictConfig, keys: Iterable[str]) -> None:
    """Raise `ConfigError` for the first user-set key that cannot take effect."""
    for key in keys:
        reason = not_applicable(command, key, cfg)
        if reason:
            raise ConfigError(f"{key} does not apply here: {reason}")
