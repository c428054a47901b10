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
from action3d.data.formats.rawframes import DEFAULT_FILENAME_TMPL, DEFAULT_START_INDEX, frame_template_problem

SYNTHETIC_MAX_CLASSES = 12  # len(action3d.data.synthetic.CLASSES); a test keeps them equal

# Which commands read each kind of data key.
DATASET = commands_with("train", "eval", "data check", "data prepare", "data pack", "data extract")   # which videos
SAMPLING = commands_with("train", "eval", "export", READ_VIDEOS)                          # how a clip is made
DECODING = commands_with("train", "eval", READ_VIDEOS)
TRAINING = commands_with("train")
READ_VIDEO_FILES = ("data check", "data prepare", "data pack", "data extract")              # whole videos
LOADING = commands_with("train", "eval")


def _frame_template(value: Any, ctx: Context) -> None:
    """A file name of frame N: `value.format(N, video=FOLDER)` works and changes with N."""
    problem = frame_template_problem(value)
    if problem:
        fail(ctx.key, value, problem)


def _even_size(value: Any, ctx: Context) -> None:
    if value % 2:
        fail(ctx.key, value, "an even number >= 16")


@dataclass
class SyntheticConfig:
    num_classes: int = option(8, low=2, high=SYNTHETIC_MAX_CLASSES, integer=True,
                              help="motion classes of the set (moving shapes whose class is the motion)")
    train_per_class: int = option(48, low=1, integer=True, help="training videos per class")
    val_per_class: int = option(12, low=1, integer=True, help="validation videos per class")
    num_frames: int = option(16, low=2, integer=True, help="frames per video")
    size: int = option(64, low=16, integer=True, check=_even_size,
                       help="frame height and width in pixels (an even number)")
    seed: int = option(0, low=0, integer=True,
                       help="the generator's seed: another seed draws other pixels in the same layout (classes, "
                            "counts)")


def _num_workers(value: Any, ctx: Context) -> None:
    from action3d.config.runtime import check_num_workers

    check_num_workers(value, ctx.key)


def _at_least_crop(value: Any, ctx: Context) -> None:
    if is_int(ctx.section.crop_size) and value < ctx.section.crop_size:
        fail(ctx.key, value, f"must be >= data.crop_size={ctx.section.crop_size}")


def _each_at_least_crop(value: Any, ctx: Context) -> None:
    crop = ctx.section.crop_size
    if is_int(crop) and min(value) < crop:
        fail(ctx.key, value, f"both sides must be >= data.crop_size={crop}")


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


def _mixing_on(ctx: Context) -> Optional[str]:
    if ctx.section.mixup_alpha > 0 or ctx.section.cutmix_alpha > 0:
        return None
    return "it sets batch mixing and data.mixup_alpha and data.cutmix_alpha are 0 (off)"


def _both_mixes_on(ctx: Context) -> Optional[str]:
    on = [key for key in ("mixup_alpha", "cutmix_alpha") if getattr(ctx.section, key) > 0]
    if len(on) == 2:
        return None
    what = f"only data.{on[0]} is on" if on else "data.mixup_alpha and data.cutmix_alpha are 0 (off)"
    return f"it chooses between mixup and CutMix and {what}"


# video-consistent augmentation in the loader (issue 21, data side: action3d.data.augment)
_SHORT_SIDE_JITTER = only_when("train_crop", "short_side_jitter", reason="it sets short_side_jitter crops")


def _scale_range(value: Any, ctx: Context) -> None:
    if value[0] > value[1]:
        fail(ctx.key, value, "needs [low, high] with low <= high")
    crop = ctx.section.crop_size
    if ctx.section.train_crop == "short_side_jitter" and is_int(crop) and value[0] < crop:
        fail(ctx.key, value, f"both sides must be >= data.crop_size={crop}")


def _turned_on(key: str, what: str):
    """`applies=`: the key tunes a part that data.KEY > 0 turns on."""
    def applies(ctx: Context) -> Optional[str]:
        return None if getattr(ctx.section, key) > 0 else f"it sets {what} and data.{key}=0 (off)"
    return applies


_RAND_AUGMENT = _turned_on("rand_augment_n", "RandAugment")
_AUGMIX = _turned_on("augmix_severity", "AugMix")
_ERASING = _turned_on("erase_prob", "random erasing")


def _not_with_rand_augment(value: Any, ctx: Context) -> None:
    if value > 0 and ctx.section.rand_augment_n > 0:
        fail(ctx.key, value, f"AugMix and RandAugment (data.rand_augment_n={ctx.section.rand_augment_n}) are "
                             "alternatives, as in timm and PySlowFast (one --aa policy): set one of them to 0")


def _augmix_depth(value: Any, ctx: Context) -> None:
    if value == 0:
        fail(ctx.key, value, "ops per chain: -1 (1 to 3 at random, timm's default) or >= 1")


def _hue_at_most_half(value: Any, ctx: Context) -> None:
    if value[3] > 0.5:
        fail(ctx.key, value, "the hue shift (4th entry) must be <= 0.5")


def _multi_label(value: Any, ctx: Context) -> None:
    if value and ctx.command == "train" and ctx.section.sampler == "balanced":
        fail("data.sampler", "balanced", "class-balanced draws need one class per video and data.multi_label=true "
                                         "gives several: use data.sampler=random")


@dataclass
class DataConfig:
    name: str = option("synthetic", commands=DATASET,
                       help="a label: named in the training log's first line (`data: NAME (data.format=...), N "
                            "training videos, ...`) and stored with the run's config")
    format: str = option("synthetic", choices=FORMAT_NAMES, commands=DATASET,
                         help="how the dataset is read: synthetic (generated, then list files), list "
                              "(`relative/path.mp4 label` lines), kinetics (annotation CSVs), ucf101 and hmdb51 "
                              "(official split files), folder (class folders), rawframes (folders of extracted "
                              "frames, `VIDEO total_frames label` lists) or shards (tar shards written by `action3d "
                              "data pack`)")
    root: Optional[str] = option(None, commands=DATASET,
                                 help="the dataset's folder: list-file paths are relative to it (unset: the list's "
                                      "folder); the class folders (folder, ucf101, hmdb51), the videos (kinetics), "
                                      "the frame folders (rawframes) or the packed shards (shards) are under it; "
                                      "synthetic: where the set is generated (unset: $ACTION3D_CACHE or "
                                      "~/.cache/action3d)")
    train_list: Optional[str] = option(None, commands=DATASET, applies=_split_scored("train"),
                                       help="the training split: its list file (list, synthetic, rawframes), its CSV "
                                            "(kinetics), or its folder of class folders under data.root (folder; "
                                            "unset: train)")
    val_list: Optional[str] = option(None, commands=DATASET, applies=_split_scored("val"),
                                     help="the validation split, as data.train_list (folder; unset: val); a dataset "
                                          "without one trains without validation and best.pt is the last epoch's")
    classes_file: Optional[str] = option(None, commands=DATASET,
                                         help="class names in label order (one per line, or `index name` lines); "
                                              "unset: classes.txt beside the training list, else 0..K-1 (list files), "
                                              "the sorted class folders of the training split (folder) or the training "
                                              "CSV's sorted labels (kinetics)")
    # frame folders (data.format=rawframes, mmaction2's RawframeDataset)
    filename_tmpl: str = option(DEFAULT_FILENAME_TMPL, check=_frame_template, commands=LOADING,
                                help="rawframes: the file name of frame N in a video's folder, a Python format "
                                     "string of N (mmaction2's filename_tmpl); `{video}` stands for the folder's own "
                                     "name, e.g. Charades' `{video}-{:06}.jpg` (quote braces on the command line: "
                                     "'data.filename_tmpl=\"{video}-{:06}.jpg\"')")
    start_index: int = option(DEFAULT_START_INDEX, low=0, integer=True, commands=LOADING,
                              help="rawframes: the number N of a folder's first frame (mmaction2's start_index: 1 for "
                                   "img_00001.jpg first, 0 for frames numbered from 0)")
    fps: Optional[float] = option(None, low=0.0, low_open=True, commands=LOADING,
                                  help="rawframes: the frame rate the folders were extracted at (they carry no "
                                       "timestamps); data.target_fps, eval.protocol=pyslowfast and ptv need it; unset: "
                                       "unknown")
    multi_label: bool = option(False, check=_multi_label, commands=(*DATASET, "data synth"),
                               help="several labels per video: list lines `path label label ...` (mmaction2's "
                                    "multi-class lists; rawframes: `VIDEO total_frames label label ...`), the dataset "
                                    "gives multi-hot float32 vectors (K,), an unreadable video in evaluation a vector "
                                    "of -1; not with data.sampler=balanced. The synthetic set (and `action3d data "
                                    "synth`) becomes the multi-label set: two motions overlaid in one clip")
    annotation_dir: Optional[str] = option(None, commands=DATASET,
                                           help="the folder of the official split files: UCF101's classInd.txt, "
                                                "trainlist0N.txt and testlist0N.txt; HMDB51's CLASS_test_splitN.txt")
    split: int = option(1, low=1, high=3, integer=True, commands=DATASET,
                        help="which official split (1-3) is read: its training part for training, its test part for "
                             "validation")
    clip_len: int = option(8, low=1, integer=True, commands=(*SAMPLING, "data check"),
                           help="frames per clip (mmaction2's SampleFrames); a clip spans (clip_len - 1) x "
                                "frame_interval + 1 frames of the video")
    frame_interval: int = option(2, low=1, integer=True, commands=(*SAMPLING, "data check"),
                                 help="step between the frames of a clip (every frame_interval-th frame)")
    num_clips: int = option(1, low=1, integer=True, commands=TRAINING,
                            help="clips per video in training: each drawn independently anywhere in the video, with "
                                 "its own crop and flip and the video's label; validation during training spreads this "
                                 "many evenly over each video (`action3d eval`, predict, embed, explain: "
                                 "eval.num_clips)")
    target_fps: Optional[float] = option(None, low=0.0, low_open=True, commands=DECODING,
                                         help="resample every video to this frame rate before sampling clips: "
                                              "frame j of the resampled video is native frame floor(j x native fps / "
                                              "target_fps) (torchvision's rule; variable-rate videos by their "
                                              "timestamps), so data.clip_len and data.frame_interval count frames at "
                                              "this rate, whatever each video's own (e.g. 15, as torchvision's "
                                              "video models were trained); frame folders need data.fps; unset: "
                                              "native frames. `action3d data prepare ... target_fps=F` stores videos "
                                              "at that rate")
    out_of_bound: str = option("loop", choices=("loop", "repeat_last"), commands=DECODING,
                               help="clips that run past the end of the video: loop wraps around to its start, "
                                    "repeat_last repeats the clip's last frame inside the video")
    short_side: int = option(72, low=1, integer=True, check=_at_least_crop, commands=SAMPLING,
                             help="test and validation: the short side a frame is resized to before the centre, three "
                                  "or ten crops of data.crop_size (so >= data.crop_size); explain resizes whole frames "
                                  "to it. Training crops are chosen relative to the frame, so it does not change them "
                                  "(short_side_jitter: data.train_scale_range sets their scale)")
    test_resize: Optional[List[int]] = option(None, length=2, items=Rule(low=1, integer=True),
                                              check=_each_at_least_crop, entries="[height, width]", commands=SAMPLING,
                                              help="test and validation: resize every frame to [height, width] "
                                                   "(aspect not kept) instead of its short side to data.short_side, "
                                                   "then crop, e.g. torchvision's [128, 171]; unset: data.short_side")
    resize_antialias: bool = option(True, commands=SAMPLING,
                                    help="test and validation resizes are antialiased bilinear (false: plain "
                                         "bilinear, align_corners=False, as torchvision's video presets, PySlowFast, "
                                         "PyTorchVideo and mmaction2's cv2 resize do)")
    crop_size: int = option(64, low=1, integer=True, commands=SAMPLING,
                            help="clip height and width: the test crops' size, and the size training crops are resized "
                                 "to")
    train_crop: str = option("random_resized", choices=("random_resized", "multiscale", "short_side_jitter"),
                             commands=TRAINING,
                             help="training crop: random_resized (Inception-style: a random share of the frame's area "
                                  "in data.crop_area_range, aspect ratio 3/4 to 4/3) or multiscale (TSN's: height and "
                                  "width each 1, 0.875, 0.75 or 0.66 of the short side, at most one step apart, at one "
                                  "of 5 fixed spots: the corners and the centre), then resized to data.crop_size; or "
                                  "short_side_jitter (PySlowFast's: the short side resized to a random whole number in "
                                  "data.train_scale_range, then a random data.crop_size square)")
    train_scale_range: List[int] = option(factory=lambda: [256, 320], length=2, items=Rule(low=1, integer=True),
                                          check=_scale_range, applies=_SHORT_SIDE_JITTER, commands=TRAINING,
                                          entries="[low, high]",
                                          help="short_side_jitter: the range [low, high] (pixels, both ends included) "
                                               "of the short side a training clip is resized to before its random "
                                               "crop, each >= data.crop_size (PySlowFast's TRAIN_JITTER_SCALES, "
                                               "[256, 320] for 224 crops); data.short_side then sets only the test "
                                               "resize")
    crop_area_range: List[float] = option(factory=lambda: [0.08, 1.0], length=2,
                                          items=Rule(low=0.0, low_open=True, high=1.0), check=_ordered_pair,
                                          applies=_RANDOM_RESIZED,
                                          commands=TRAINING, entries="[low, high]",
                                          help="random_resized: the share [low, high] of the frame's area a training "
                                               "crop covers, 0 < low <= high <= 1")
    flip: bool = option(True, commands=TRAINING,
                        help="random horizontal flips (half the clips) in training; leave it off where a mirror image "
                             "changes the class (the synthetic set's move_left and move_right)")
    decode_short_side: Optional[int] = option(None, low=1, integer=True, commands=DECODING,
                                              help="scale frames inside the decoder (with the RGB conversion) to this "
                                                   "short side, before any crop: cheaper for large raw videos (frame "
                                                   "folders: the decoded JPEGs resized, antialiased bilinear); unset: "
                                                   "the stored size")
    decode_threads: int = option(1, low=1, integer=True, commands=DECODING,
                                 help="decoder threads per loader worker (or per process without workers); frame "
                                      "folders: threads decoding the JPEGs of a clip")
    autorotate: bool = option(True, commands=(*DECODING, *commands_with(READ_VIDEO_FILES)),
                              help="read phone videos stored sideways upright, as their display matrix says (90, 180 "
                                   "or 270 degrees, mirrored too), like players and ffmpeg's autorotate; sizes, crops "
                                   "and the output of `data prepare` and `data extract` refer to the upright frames; "
                                   "frame folders: JPEGs turned as their EXIF orientation says. false: the frames as "
                                   "stored")
    batch_size: int = option(8, low=1, integer=True, commands=TRAINING,
                             help="training videos per process and micro-batch (each gives data.num_clips clips), and "
                                  "videos per batch in its validation; the global batch is batch_size x processes x "
                                  "trainer.accum_steps (`action3d eval`: eval.batch_size)")
    sampler: str = option("random", choices=("random", "balanced"), commands=TRAINING,
                          help="random: a seeded permutation per epoch, split across processes; balanced: "
                               "class-balanced draws with replacement (a class drawn uniformly, then one of its "
                               "videos; as many draws per epoch as there are videos); format=shards streams and takes "
                               "random only")
    shard_shuffle: int = option(128, low=0, integer=True, commands=TRAINING,
                                help="training: the shuffle buffer of each loader worker, in videos, mixing its part "
                                     "of the epoch's shard order (the shards are permuted every epoch); 0: shard order "
                                     "only")
    num_workers: Any = option(2, check=_num_workers, commands=LOADING,
                              help="loader worker processes per process: a number >= 0 (always obeyed; 0 loads in the "
                                   "process itself), or auto: data.preset_workers capped by the CPUs available to each "
                                   "process (its CPU affinity divided by torchrun's LOCAL_WORLD_SIZE), the number "
                                   "chosen named in the log. With 0 in every job of a one-process command line the CLI "
                                   "leaves OMP_WAIT_POLICY unset (OpenMP threads may spin); otherwise it sets it to "
                                   "PASSIVE, unless it is set already")
    preset_workers: int = option(2, low=0, integer=True, commands=LOADING,
                                 help="what data.num_workers=auto aims for (a dataset group's number), capped by the "
                                      "CPUs available to each process")
    pin_memory: bool = option(True, commands=LOADING,
                              help="page-locked batches, for faster copies to the GPU (only where CUDA is available)")
    persistent_workers: bool = option(True, applies=_with_workers, commands=TRAINING,
                                      help="keep the training loader's workers alive between epochs (with workers "
                                           "only)")
    prefetch_factor: int = option(2, low=1, integer=True, applies=_with_workers, commands=LOADING,
                                  help="batches each loader worker prepares ahead (with workers only)")
    mean: List[float] = option(factory=lambda: [123.675, 116.28, 103.53], length=3, entries="(one per RGB channel)",
                               commands=SAMPLING,
                               help="per-channel mean on the 0-255 scale (RGB), subtracted on the device from uint8 "
                                    "batches (default: ImageNet's x 255); export normalises inside the model")
    std: List[float] = option(factory=lambda: [58.395, 57.12, 57.375], length=3, entries="(one per RGB channel)",
                              items=Rule(low=0.0, low_open=True), commands=SAMPLING,
                              help="per-channel standard deviation on the 0-255 scale the pixels are divided by, after "
                                   "the mean (default: ImageNet's x 255)")
    max_fail_ratio: float = option(0.5, low=0.0, low_open=True, high=1.0, commands=LOADING,
                                   help="stop, naming a few files, when more than this share of the first 50 files a "
                                        "process tries fail to decode (training also stops after 20 failures in a "
                                        "row); other unreadable files are skipped: replaced by another sample in "
                                        "training, counted apart in evaluation")
    # batch mixing on the training device (issue 21, training side)
    mixup_alpha: float = option(0.0, low=0.0, commands=TRAINING,
                                help="mixup (Zhang et al.): each training batch on the device becomes lam x batch + "
                                     "(1 - lam) x the batch in reverse order, targets likewise, lam ~ Beta(alpha, "
                                     "alpha) once per batch (0: off; timm and PySlowFast use 0.8). Partners come from "
                                     "the same process's batch: a run keeps exact resume but no longer equals one "
                                     "process with the global batch")
    cutmix_alpha: float = option(0.0, low=0.0, commands=TRAINING,
                                 help="CutMix (Yun et al.): a box of each clip, the same box on every frame, is "
                                      "replaced by the reversed batch's; the box's share 1 - lam, lam ~ Beta(alpha, "
                                      "alpha), and the targets mix by the box's actual area (0: off; timm and "
                                      "PySlowFast use 1.0)")
    mix_prob: float = option(1.0, low=0.0, high=1.0, applies=_mixing_on, commands=TRAINING,
                             help="the share of training batches that are mixed (mixup or CutMix); the others keep "
                                  "their clips and (smoothed) targets")
    mix_switch_prob: float = option(0.5, low=0.0, high=1.0, applies=_both_mixes_on, commands=TRAINING,
                                    help="with both data.mixup_alpha and data.cutmix_alpha > 0: the chance that a "
                                         "mixed batch takes CutMix rather than mixup (timm's switch_prob)")
    # video-consistent augmentation in the loader (issue 21, data side: action3d.data.augment): each part off by
    # default, drawn once per clip from the sample's seeded generator and applied to every frame; order: crop, flip,
    # RandAugment or AugMix, colour jitter, grayscale, erasing
    rand_augment_n: int = option(0, low=0, integer=True, commands=TRAINING,
                                 help="RandAugment (Cubuk et al.; timm's rand-mM-nN-mstdS-inc1): N ops per clip, drawn "
                                      "with replacement from timm's 15 (auto-contrast, equalize, invert, rotate, "
                                      "posterize, solarize, solarize-add, colour, contrast, brightness, sharpness, "
                                      "shear and translate x/y), each applied with probability 0.5 to every frame "
                                      "alike (0: off; PySlowFast's MViTv2 and VideoMAE use 4)")
    rand_augment_m: float = option(9.0, low=0.0, high=10.0, applies=_RAND_AUGMENT, commands=TRAINING,
                                   help="RandAugment's magnitude on timm's 0-10 scale (m / 10 of each op's range, "
                                        "e.g. rotations up to 30 x m / 10 degrees; the ops grow stronger with it); "
                                        "timm's example 9, PySlowFast's MViTv2 and VideoMAE 7")
    rand_augment_mstd: float = option(0.5, low=0.0, applies=_RAND_AUGMENT, commands=TRAINING,
                                      help="RandAugment's magnitude noise: each op's magnitude ~ "
                                           "N(data.rand_augment_m, this), clipped to [0, 10], drawn per op and clip "
                                           "(0: always m)")
    augmix_severity: int = option(0, low=0, high=10, integer=True, check=_not_with_rand_augment, commands=TRAINING,
                                  help="AugMix (Hendrycks et al.; timm's augmix-mM-wW-dD-aA): the largest op magnitude "
                                       "on the 0-10 scale, each op's ~ U(0, this) (0: off; timm's default 3); the "
                                       "transform only, without the Jensen-Shannon loss; not with RandAugment")
    augmix_width: int = option(3, low=1, integer=True, applies=_AUGMIX, commands=TRAINING,
                               help="AugMix: the chains of ops mixed per clip, with Dirichlet(data.augmix_alpha) "
                                    "weights")
    augmix_depth: int = option(-1, low=-1, integer=True, check=_augmix_depth, applies=_AUGMIX, commands=TRAINING,
                               help="AugMix: ops per chain (-1: 1 to 3 at random per chain, as timm and the paper)")
    augmix_alpha: float = option(1.0, low=0.0, low_open=True, applies=_AUGMIX, commands=TRAINING,
                                 help="AugMix: the Dirichlet parameter of the chain weights and the Beta(alpha, alpha) "
                                      "of the final blend with the clip")
    color_jitter: List[float] = option(factory=lambda: [0.0, 0.0, 0.0, 0.0], length=4, items=Rule(low=0.0),
                                       check=_hue_at_most_half, entries="[brightness, contrast, saturation, hue]",
                                       commands=TRAINING,
                                       help="colour jitter (torchvision's ColorJitter) per clip, the four in a random "
                                            "order: brightness, contrast and saturation factors ~ U(max(0, 1 - s), "
                                            "1 + s), a hue shift ~ U(-h, h) with h <= 0.5; 0 leaves one out (all 0: "
                                            "off)")
    grayscale_prob: float = option(0.0, low=0.0, high=1.0, commands=TRAINING,
                                   help="the share of training clips turned to grayscale (luma in all 3 channels, "
                                        "torchvision's RandomGrayscale)")
    erase_prob: float = option(0.0, low=0.0, high=1.0, commands=TRAINING,
                               help="random erasing (Zhong et al.; timm's mode=pixel, PySlowFast's cube): the share of "
                                    "training clips in which one box, the same on every frame, becomes noise drawn "
                                    "once per clip (data.mean + data.std x N(0, 1) per pixel and channel, on the "
                                    "0-255 scale); 0: off, PySlowFast and VideoMAE use 0.25")
    erase_area_range: List[float] = option(factory=lambda: [0.02, 1 / 3], length=2,
                                           items=Rule(low=0.0, low_open=True, high=1.0), check=_ordered_pair,
                                           applies=_ERASING, commands=TRAINING, entries="[low, high]",
                                           help="random erasing: the share [low, high] of the frame the box covers "
                                                "(timm's [0.02, 1/3]), its aspect ratio 0.3 to 1/0.3")
    synthetic: SyntheticConfig = section(SyntheticConfig, commands=(*DATASET, "data synth"),
                                         help="the built-in synthetic set's generator: the set is generated on first "
                                              "use (into data.root, else $ACTION3D_CACHE or ~/.cache/action3d), or by "
                                              "`action3d data synth out=DIR`")
