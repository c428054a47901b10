"""`validate(cfg)`: the checks OmegaConf's types cannot express, right after composition.

Allowed values, ranges and list lengths that depend on other keys. The model's rules are the
library's own (`action3d.config.rules`, which `ResNet3d` calls too), so the command line and Python
report a mistake in the same words. Runs before any model is built or any run directory written,
and imports no torch, so a rejected command line answers at once.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

from omegaconf import DictConfig

from action3d.config import rules
from action3d.config.rules import check_choice, check_range, fail

# key -> allowed values (checked wherever the key's section is present)
ALLOWED: Dict[str, Sequence[Any]] = {
    "data.format": ("synthetic", "list", "kinetics", "ucf101", "hmdb51", "folder", "shards"),
    "data.out_of_bound": ("loop", "repeat_last"),
    "data.train_crop": ("random_resized", "multiscale"),
    "data.sampler": ("random", "balanced"),
    "optim.name": ("sgd", "adamw"),
    "sched.name": ("cosine", "multistep", "constant"),
    "trainer.precision": rules.PRECISIONS,
    "trainer.device": rules.DEVICES,
    "trainer.class_weights": ("none", "auto"),
    "eval.num_crops": (1, 3, 10),
    "eval.average": ("prob", "score"),
    "action": ("synth", "check", "prepare", "pack"),
    "format": rules.EXPORT_FORMATS,
}

# key -> (low, high); None: open end. Integers unless the key is a float in its schema.
RANGES: Dict[str, tuple] = {
    "data.clip_len": (1, None), "data.frame_interval": (1, None), "data.num_clips": (1, None),
    "data.crop_size": (1, None), "data.short_side": (1, None), "data.batch_size": (1, None),
    "data.decode_threads": (1, None), "data.prefetch_factor": (1, None), "data.preset_workers": (0, None),
    "data.decode_short_side": (1, None), "data.split": (1, 3), "data.shard_shuffle": (0, None),
    "optim.momentum": (0.0, 1.0), "optim.weight_decay": (0.0, None), "optim.backbone_lr_mult": (0.0, None),
    "sched.warmup_epochs": (0.0, None), "sched.gamma": (0.0, 1.0), "sched.min_lr": (0.0, None),
    "trainer.max_epochs": (1, None), "trainer.val_every": (1, None), "trainer.accum_steps": (1, None),
    "trainer.log_every": (1, None), "trainer.ckpt_every": (0, None), "trainer.ckpt_every_minutes": (0.0, None),
    "trainer.max_steps": (0, None),
    "trainer.grad_clip": (0.0, None), "trainer.precise_bn_batches": (0, None),
    "trainer.data_wait_warn": (0.0, 1.0),
    "eval.num_clips": (1, None), "eval.batch_size": (1, None), "topk": (1, None),
    "short_side": (2, None), "gop": (1, None), "crf": (0, 51), "workers": (1, None), "min_frames": (0, None),
    "default_num_classes": (1, None),
}
# (low, high) exclusive at the marked ends
OPEN_RANGES: Dict[str, tuple] = {
    "optim.lr": ((0.0, None), (True, False)),
    "sched.warmup_start_factor": ((0.0, 1.0), (True, False)),
    "trainer.label_smoothing": ((0.0, 1.0), (False, True)),
    "data.max_fail_ratio": ((0.0, 1.0), (True, False)),
    "shard_mb": ((0.0, None), (True, False)),
}


def _get(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _present(cfg: DictConfig, key: str) -> bool:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node._get_node(part)
    return True


def validate_data(data: DictConfig, *, in_channels: int = 3) -> None:
    rules.check_num_workers(data.num_workers)  # auto or a number >= 0
    if data.short_side < data.crop_size:
        fail("data.short_side", data.short_side, f"must be >= data.crop_size={data.crop_size}")
    for name in ("mean", "std"):
        if len(data[name]) != in_channels:
            fail(f"data.{name}", data[name], f"needs {in_channels} values, one per input channel")
    if any(s <= 0 for s in data.std):
        fail("data.std", data.std, "entries must be > 0")
    low, high = data.crop_area_range
    if len(data.crop_area_range) != 2 or not 0 < low <= high <= 1:
        fail("data.crop_area_range", data.crop_area_range, "needs [low, high] with 0 < low <= high <= 1")
    if data.format == "synthetic":
        rules.check_synthetic(data.synthetic, prefix="data.synthetic.")
    rules.check_shards(data)


def validate(cfg: DictConfig) -> None:
    """Raise `ConfigError` (one line, naming the key) for the first invalid value in `cfg`."""
    for key, allowed in ALLOWED.items():
        if _present(cfg, key):
            check_choice(key, _get(cfg, key), allowed)
    for key, (low, high) in RANGES.items():
        if _present(cfg, key):
            check_range(key, _get(cfg, key), low=low, high=high)
    for key, ((low, high), (low_open, high_open)) in OPEN_RANGES.items():
        if _present(cfg, key):
            check_range(key, _get(cfg, key), low=low, high=high, low_open=low_open, high_open=high_open)
    if "model" in cfg:
        rules.check_model(cfg.model)
    if "data" in cfg:  # info has no data to normalise: its input=[C,T,H,W] may have any C
        validate_data(cfg.data, in_channels=cfg.model.in_channels if "model" in cfg and "input" not in cfg else 3)
    weighted = _present(cfg, "trainer.class_weights") and cfg.trainer.class_weights == "auto"
    if weighted and cfg.data.sampler == "balanced":
        fail("trainer.class_weights", "auto", "data.sampler=balanced already draws every class equally often; "
             "weighting the loss too would make a rare class count the imbalance ratio times more; use one")
    if "optim" in cfg and (len(cfg.optim.betas) != 2 or not all(0 <= b < 1 for b in cfg.optim.betas)):
        fail("optim.betas", cfg.optim.betas, "needs two values in [0, 1)")
    if "window" in cfg:
        rules.check_windows(window=cfg.window, stride=cfg.stride, timeline=cfg.get("timeline"))
    if "input" in cfg:
        rules.check_ints("input", cfg.input, length=4, what=" [C,T,H,W]")
    if "split" in cfg:  # eval scores one split; the data tools may take both
        check_choice("split", cfg.split, ("train", "val") if "ckpt" in cfg else ("train", "val", "all"))
    if _present(cfg, "part"):  # the data command
        rules.check_data_command(action=cfg.action, part=cfg.part, merge=cfg.merge)
