"""Typed config schemas for every command, registered with Hydra's ConfigStore, and the checks
OmegaConf's types cannot express (allowed values, list lengths that depend on other keys).

OmegaConf rejects unknown keys and wrong types while Hydra composes; `validate` runs right after
composition, before any model is built or any run directory is written, and raises
`Action3dError` with one line naming the key at fault and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig

from action3d.data.config import DataConfig
from action3d.errors import Action3dError
from action3d.models.config import ModelConfig


@dataclass
class OptimConfig:
    name: str = "sgd"                     # sgd | adamw
    lr: float = 0.04                      # for the global batch (8 clips by default); scale linearly
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    no_decay_norm_bias: bool = True       # no weight decay on norm weights and biases


@dataclass
class SchedConfig:
    name: str = "cosine"                  # cosine | multistep | constant
    warmup_epochs: float = 1.0
    warmup_start_factor: float = 0.1
    milestones: List[int] = field(default_factory=lambda: [30, 40])  # multistep, in epochs
    gamma: float = 0.1
    min_lr: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 12
    precision: str = "32"                 # 32 | bf16 | 16
    seed: int = 0
    device: str = "auto"                  # auto | cpu | cuda
    val_every: int = 1
    ckpt_every: int = 0                   # also keep epoch_N.pt every k epochs (0: off)
    resume: Optional[str] = None          # auto | PATH
    compile: bool = False
    channels_last: bool = True
    sync_bn: bool = False
    precise_bn_batches: int = 0           # recompute BN statistics over this many batches per epoch (0: off)
    grad_clip: float = 0.0                # max gradient norm (0: off)
    accum_steps: int = 1
    label_smoothing: float = 0.0
    log_every: int = 10                   # steps between metrics.jsonl / TensorBoard points
    max_steps: int = 0                    # stop after this many optimiser steps (0: no limit)
    data_wait_warn: float = 0.3


@dataclass
class EvalConfig:
    num_clips: int = 1
    num_crops: int = 1                    # 1 (centre) | 3 (along the long side) | 10
    average: str = "prob"                 # prob: mean of softmax | score: mean of logits
    batch_size: int = 4


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class EvalCommandConfig:
    ckpt: str = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    split: str = "val"                    # which annotation list of the dataset to evaluate


@dataclass
class PredictConfig:
    ckpt: str = MISSING
    video: str = MISSING                  # a video file or a folder of videos
    topk: int = 5
    json: Optional[str] = None            # also write the predictions as JSON to this file
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class DataCommandConfig:
    action: str = MISSING                 # synth | check | prepare
    out: Optional[str] = None
    short_side: int = 128
    gop: int = 16
    crf: int = 23
    workers: int = 2
    min_frames: int = 0                   # check: shorter videos are reported (0: clip span)
    split: str = "all"                    # train | val | all
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class InfoConfig:
    input: List[int] = field(default_factory=lambda: [3, 8, 64, 64])   # C, T, H, W
    default_num_classes: int = 400
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)


SCHEMAS = {
    "train": TrainConfig,
    "eval": EvalCommandConfig,
    "predict": PredictConfig,
    "data": DataCommandConfig,
    "info": InfoConfig,
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    for command, schema in SCHEMAS.items():
        cs.store(name=f"{command}_schema", node=schema)


# --------------------------------------------------------------------------- validation

ALLOWED = {
    "model.arch": ("resnet3d", "slowfast"),
    "model.style": ("pytorch", "caffe"),
    "model.inflate_style": ("3x1x1", "3x3x3"),
    "model.shortcut_type": ("A", "B"),
    "model.non_local_mode": ("embedded_gaussian", "dot_product"),
    "data.format": ("synthetic", "list", "kinetics", "ucf101", "hmdb51", "folder"),
    "data.out_of_bound": ("loop", "repeat_last"),
    "data.train_crop": ("random_resized", "multiscale"),
    "optim.name": ("sgd", "adamw"),
    "sched.name": ("cosine", "multistep", "constant"),
    "trainer.precision": ("32", "bf16", "16"),
    "trainer.device": ("auto", "cpu", "cuda"),
    "eval.num_crops": (1, 3, 10),
    "eval.average": ("prob", "score"),
    "action": ("synth", "check", "prepare"),
}


def _fail(key: str, value: Any, allowed: str) -> None:
    raise Action3dError(f"{key}={_show(value)} is not allowed: {allowed}")


def _show(value: Any) -> str:
    if isinstance(value, (ListConfig, DictConfig)):
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _get(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _check_allowed(cfg: DictConfig) -> None:
    for key, allowed in ALLOWED.items():
        if key.split(".")[0] not in cfg:
            continue
        value = _get(cfg, key)
        if value not in allowed:
            _fail(key, value, "expected one of " + ", ".join(str(a) for a in allowed))


def _check_positive(cfg: DictConfig, keys: List[str], minimum: float = 1) -> None:
    for key in keys:
        section = key.split(".")[0]
        if section in cfg and _get(cfg, key) is not None and _get(cfg, key) < minimum:
            _fail(key, _get(cfg, key), f"must be >= {minimum}")


def validate_model(model: DictConfig, key: str = "model") -> None:
    """Check a `ModelConfig` node against the backbone's rules (mmaction2's asserts, as messages)."""
    from action3d.models.resnet3d import ResNet3d  # the depths and block counts live there

    depths = sorted(ResNet3d.arch_settings)
    if model.depth not in ResNet3d.arch_settings:
        _fail(f"{key}.depth", model.depth, "allowed depths: " + ", ".join(map(str, depths)))
    if not 1 <= model.num_stages <= 4:
        _fail(f"{key}.num_stages", model.num_stages, "must be 1..4")
    n = model.num_stages
    blocks = list(model.stage_blocks) if model.stage_blocks is not None else list(ResNet3d.arch_settings[model.depth][1])
    if len(blocks) not in (n, 4) or any(b < 1 for b in blocks):
        _fail(f"{key}.stage_blocks", blocks, f"needs {n} positive block counts (num_stages={n}), or 4 cut to {n}")
    blocks = blocks[:n]
    for name in ("spatial_strides", "temporal_strides", "dilations"):
        values = list(model[name])
        if len(values) != n:
            _fail(f"{key}.{name}", values, f"needs one entry per stage: {n} values (num_stages={n})")
        if any(v < 1 for v in values):
            _fail(f"{key}.{name}", values, "entries must be >= 1")
    for name, length in (("conv1_kernel", 3), ("conv1_stride", 2), ("pool1_stride", 2)):
        values = list(model[name])
        if len(values) != length or any(v < 1 for v in values):
            what = "(temporal, height, width)" if length == 3 else "(temporal, spatial)"
            _fail(f"{key}.{name}", values, f"needs {length} positive values {what}")
    if any(i < 0 or i >= n for i in model.out_indices) or len(model.out_indices) == 0:
        _fail(f"{key}.out_indices", model.out_indices, f"entries must be stage indices 0..{n - 1}")
    if not -1 <= model.frozen_stages <= n:
        _fail(f"{key}.frozen_stages", model.frozen_stages, f"must be -1 (none) .. {n}")
    for name in ("inflate", "non_local") + (("fast_inflate",) if model.arch == "slowfast" else ()):
        _check_per_block(model[name], blocks, f"{key}.{name}")
    _check_positive(DictConfig({"m": model}), ["m.base_channels", "m.in_channels"])
    if model.num_classes is not None and model.num_classes < 1:
        _fail(f"{key}.num_classes", model.num_classes, "must be >= 1")
    if not 0.0 <= model.dropout < 1.0:
        _fail(f"{key}.dropout", model.dropout, "must be in [0, 1)")
    if model.arch == "slowfast":
        _validate_slowfast(model, key)


def _check_per_block(flags: Any, blocks: List[int], key: str) -> None:
    """`inflate`/`non_local`: one entry per stage, each an int or a list with one flag per block."""
    flags = list(flags)
    if len(flags) < len(blocks):
        _fail(key, flags, f"needs one entry per stage: {len(blocks)} entries (int or per-block list)")
    for stage, (entry, count) in enumerate(zip(flags, blocks)):
        if isinstance(entry, (list, tuple, ListConfig)):
            if len(entry) != count:
                _fail(key, flags, f"stage {stage + 1} has {count} blocks, so its list needs {count} flags, got {len(entry)}")
            entries = list(entry)
        else:
            entries = [entry]
        if any(e not in (0, 1) for e in entries):
            _fail(key, flags, "flags must be 0 or 1")


def _validate_slowfast(model: DictConfig, key: str) -> None:
    if model.speed_ratio < 1 or model.resample_rate % model.speed_ratio != 0:
        _fail(f"{key}.speed_ratio", model.speed_ratio, f"must divide model.resample_rate={model.resample_rate}")
    if model.channel_ratio < 1 or model.base_channels % model.channel_ratio != 0:
        _fail(f"{key}.channel_ratio", model.channel_ratio, f"must divide model.base_channels={model.base_channels}")
    if model.fusion_kernel < 1 or model.fusion_kernel % 2 == 0:
        _fail(f"{key}.fusion_kernel", model.fusion_kernel, "must be an odd number >= 1")
    if len(model.fast_conv1_kernel) != 3:
        _fail(f"{key}.fast_conv1_kernel", model.fast_conv1_kernel, "needs 3 values (temporal, height, width)")


def validate_data(data: DictConfig, in_channels: int = 3) -> None:
    _check_positive(
        DictConfig({"data": data}),
        ["data.clip_len", "data.frame_interval", "data.num_clips", "data.crop_size", "data.short_side",
         "data.batch_size", "data.decode_threads", "data.prefetch_factor"],
    )
    _check_positive(DictConfig({"data": data}), ["data.num_workers"], minimum=0)
    if data.short_side < data.crop_size:
        _fail("data.short_side", data.short_side, f"must be >= data.crop_size={data.crop_size}")
    for name in ("mean", "std"):
        if len(data[name]) != in_channels:
            _fail(f"data.{name}", data[name], f"needs {in_channels} values, one per input channel")
    if any(s <= 0 for s in data.std):
        _fail("data.std", data.std, "entries must be > 0")
    if not 0.0 < data.max_fail_ratio <= 1.0:
        _fail("data.max_fail_ratio", data.max_fail_ratio, "must be in (0, 1]")


def validate(cfg: DictConfig) -> None:
    """Raise `Action3dError` (one line, naming the key) for the first invalid value in `cfg`."""
    _check_allowed(cfg)
    if "model" in cfg:
        validate_model(cfg.model)
    if "data" in cfg:
        validate_data(cfg.data, in_channels=cfg.model.in_channels if "model" in cfg else 3)
    _check_positive(
        cfg,
        ["trainer.max_epochs", "trainer.val_every", "trainer.accum_steps", "trainer.log_every",
         "eval.num_clips", "eval.batch_size", "topk"],
    )
    _check_positive(cfg, ["trainer.ckpt_every", "trainer.max_steps", "trainer.grad_clip",
                          "trainer.precise_bn_batches"], minimum=0)
    if "optim" in cfg and cfg.optim.lr <= 0:
        _fail("optim.lr", cfg.optim.lr, "must be > 0")
    if "trainer" in cfg and not 0.0 <= cfg.trainer.label_smoothing < 1.0:
        _fail("trainer.label_smoothing", cfg.trainer.label_smoothing, "must be in [0, 1)")
    if "input" in cfg and (len(cfg.input) != 4 or any(v < 1 for v in cfg.input)):
        _fail("input", cfg.input, "needs 4 positive values [C,T,H,W]")
