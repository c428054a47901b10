"""Typed schema of the `data` section (conf/data/*.yaml fill it in), each field with its rules.

Which dataset format reads a key (`data.annotation_dir` only UCF101/HMDB51, ...) is the format
class's declaration (`action3d.data.formats`), not the field's: a format is one module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from action3d.config.checks import fail, is_int
from action3d.config.option import READ_VIDEOS, Context, Rule, commands_with, only_when, option, section
from action3d.data.formats import FORMAT_NAMES

SYNTHETIC_MAX_CLASSES = 12  # len(action3d.data.synthetic.CLASSES); a test keeps them equal

# Which commands read each kind of data key.
DATASET = commands_with("train", "eval", "data check", "data prepare", "data pack")       # which videos
SAMPLING = commands_with("train", "eval", "export", READ_VIDEOS)                          # how a clip is made
DECODING = commands_with("train", "eval", READ_VIDEOS)
TRAINING = commands_with("train")
LOADING = commands_with("train", "eval")


def _even_size(value: Any, ctx: Context) -> None:
    if value % 2:
        fail(ctx.key, value, "an even number >= 16")


@dataclass
class SyntheticConfig:
    num_classes: int = option(8, low=2, high=SYNTHETIC_MAX_CLASSES, integer=True, help="motion classes")
    train_per_class: int = option(48, low=1, integer=True, help="training videos per class")
    val_per_class: int = option(12, low=1, integer=True, help="validation videos per class")
    num_frames: int = option(16, low=2, integer=True, help="frames per video")
    size: int = option(64, low=16, integer=True, check=_even_size, help="frame height and width in pixels")
    seed: int = option(0, low=0, integer=True, help="the generator's seed (which videos are drawn)")


def _num_workers(value: Any, ctx: Context) -> None:
    from action3d.config.runtime import check_num_workers

    check_num_workers(value, ctx.key)


def _at_least_crop(value: Any, ctx: Context) -> None:
    if is_int(ctx.section.crop_size) and value < ctx.section.crop_size:
        fail(ctx.key, value, f"must be >= data.crop_size={ctx.section.crop_size}")


def _ordered_pair(value: Any, ctx: Context) -> None:
    if value[0] > value[1]:
        fail(ctx.key, value, "needs [low, high] with 0 < low <= high <= 1")


def _split_scored(split: str):
    """eval scores one split (`split=`): the other split's list cannot apply."""
    def applies(ctx: Context) -> Optional[str]:
        if ctx.command != "eval" or ctx.root.split == split:
            return None
        return f"split={ctx.root.split} reads data.{ctx.root.split}_list"
    return applies


def _with_workers(ctx: Context) -> Optional[str]:
    return "data.num_workers=0 loads in the main process" if ctx.section.num_workers == 0 else None


_RANDOM_RESIZED = only_when("train_crop", "random_resized", reason="it sets random_resized crops")


@dataclass
class DataConfig:
    name: str = option("synthetic", commands=DATASET,
                       help="a label, named in the training log and stored with the run's config")
    format: str = option("synthetic", choices=FORMAT_NAMES, commands=DATASET,
                         help="how the dataset is read (one class per format: action3d.data.formats)")
    root: Optional[str] = option(None, commands=DATASET,
                                 help="the video root; list-file paths are relative to it (synthetic: its cache)")
    train_list: Optional[str] = option(None, commands=DATASET, applies=_split_scored("train"),
                                       help="annotation file of the training split")
    val_list: Optional[str] = option(None, commands=DATASET, applies=_split_scored("val"),
                                     help="annotation file of the validation split")
    classes_file: Optional[str] = option(None, commands=DATASET, help="class names in label order")
    annotation_dir: Optional[str] = option(None, commands=DATASET,
                                           help="UCF101/HMDB51: the folder of the official split files")
    split: int = option(1, low=1, high=3, integer=True, commands=DATASET, help="UCF101/HMDB51 official split")
    clip_len: int = option(8, low=1, integer=True, commands=(*SAMPLING, "data check"), help="frames per clip")
    frame_interval: int = option(2, low=1, integer=True, commands=(*SAMPLING, "data check"),
                                 help="step between the frames of a clip")
    num_clips: int = option(1, low=1, integer=True, commands=TRAINING,
                            help="clips per video in training (eval/predict: eval.num_clips)")
    out_of_bound: str = option("loop", choices=("loop", "repeat_last"), commands=DECODING,
                               help="clips longer than the video: wrap around, or repeat the last frame")
    short_side: int = option(72, low=1, integer=True, check=_at_least_crop, commands=SAMPLING,
                             help="test and validation resize of the short side, before the crops")
    crop_size: int = option(64, low=1, integer=True, commands=SAMPLING, help="clip height and width")
    train_crop: str = option("random_resized", choices=("random_resized", "multiscale"), commands=TRAINING,
                             help="training crop: Inception-style random_resized, or TSN's multiscale")
    crop_area_range: List[float] = option(factory=lambda: [0.08, 1.0], length=2,
                                          items=Rule(low=0.0, low_open=True, high=1.0), check=_ordered_pair,
                                          applies=_RANDOM_RESIZED,
                                          commands=TRAINING, entries="[low, high]",
                                          help="random_resized: the share of the frame's area a crop covers")
    flip: bool = option(True, commands=TRAINING, help="random horizontal flips in training")
    decode_short_side: Optional[int] = option(None, low=1, integer=True, commands=DECODING,
                                              help="resize inside the decoder, before any crop")
    decode_threads: int = option(1, low=1, integer=True, commands=DECODING, help="decoder threads per loader worker")
    autorotate: bool = option(True, commands=(*DECODING, "data check", "data prepare", "data pack"),
                              help="read phone videos upright, as their display matrix says")
    batch_size: int = option(8, low=1, integer=True, commands=TRAINING, help="clips per process and step")
    sampler: str = option("random", choices=("random", "balanced"), commands=TRAINING,
                          help="random: a seeded permutation per epoch; balanced: class-balanced draws")
    shard_shuffle: int = option(128, low=0, integer=True, commands=TRAINING,
                                help="format=shards: shuffle buffer per loader worker, in videos (0: off)")
    num_workers: Any = option(2, check=_num_workers, commands=LOADING,
                              help="loader worker processes per process: a number, or auto")
    preset_workers: int = option(2, low=0, integer=True, commands=LOADING,
                                 help="auto: this many workers, capped by the CPUs available to each process")
    pin_memory: bool = option(True, commands=LOADING, help="page-locked batches (CUDA runs only)")
    persistent_workers: bool = option(True, applies=_with_workers, commands=TRAINING,
                                      help="keep the training loader's workers between epochs")
    prefetch_factor: int = option(2, low=1, integer=True, applies=_with_workers, commands=LOADING,
                                  help="batches each loader worker prepares ahead")
    mean: List[float] = option(factory=lambda: [123.675, 116.28, 103.53], length=3, entries="(one per RGB channel)",
                               commands=SAMPLING, help="per-channel mean subtracted from uint8 pixels")
    std: List[float] = option(factory=lambda: [58.395, 57.12, 57.375], length=3, entries="(one per RGB channel)",
                              items=Rule(low=0.0, low_open=True), commands=SAMPLING,
                              help="per-channel standard deviation pixels are divided by")
    max_fail_ratio: float = option(0.5, low=0.0, low_open=True, high=1.0, commands=LOADING,
                                   help="stop when more than this share of the first 50 files fail to decode")
    synthetic: SyntheticConfig = section(SyntheticConfig, commands=(*DATASET, "data synth"),
                                         help="the built-in synthetic set's generator")
