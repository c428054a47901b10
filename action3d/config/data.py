"""Typed schema of the `data` config group (conf/data/*.yaml fill it in)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional


@dataclass
class SyntheticConfig:
    num_classes: int = 8
    train_per_class: int = 48
    val_per_class: int = 12
    num_frames: int = 16
    size: int = 64                        # frame height and width in pixels
    seed: int = 0


@dataclass
class DataConfig:
    name: str = "synthetic"
    format: str = "synthetic"             # synthetic | list | kinetics | ucf101 | hmdb51 | folder | shards
    root: Optional[str] = None            # video root (synthetic: cache folder, generated on first use)
    train_list: Optional[str] = None      # annotation file of the training split
    val_list: Optional[str] = None        # annotation file of the validation/test split
    classes_file: Optional[str] = None    # ordered class names (e.g. UCF101 classInd.txt)
    annotation_dir: Optional[str] = None  # UCF101/HMDB51: folder of the official split files
    split: int = 1                        # UCF101/HMDB51 official split 1..3
    clip_len: int = 8
    frame_interval: int = 2
    num_clips: int = 1
    out_of_bound: str = "loop"            # loop | repeat_last
    short_side: int = 72                  # training/test resize of the short side before cropping
    crop_size: int = 64
    train_crop: str = "random_resized"    # random_resized | multiscale
    crop_area_range: List[float] = field(default_factory=lambda: [0.08, 1.0])  # random_resized: share of the area
    flip: bool = True
    decode_short_side: Optional[int] = None  # resize inside the decoder (YUV scaling)
    decode_threads: int = 1
    autorotate: bool = True               # apply the video's display rotation (phone videos)
    batch_size: int = 8                   # per process
    sampler: str = "random"               # random | balanced: class-balanced, with replacement
    shard_shuffle: int = 128              # format=shards: shuffle buffer per loader worker, in videos (0: off)
    num_workers: Any = 2                  # loader workers per process: a number, or auto (see preset_workers)
    preset_workers: int = 2               # auto: this many, capped by the CPUs available to each process
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2
    mean: List[float] = field(default_factory=lambda: [123.675, 116.28, 103.53])
    std: List[float] = field(default_factory=lambda: [58.395, 57.12, 57.375])
    max_fail_ratio: float = 0.5           # stop when more than this share of the first 50 files fail
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
