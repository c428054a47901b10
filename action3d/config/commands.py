"""The top-level schema of each command, registered with Hydra's ConfigStore as `COMMAND_schema`.

`conf/COMMAND.yaml` lists `COMMAND_schema` first in its defaults, so OmegaConf rejects unknown
keys and wrong types while Hydra composes; each field's own rules (`action3d.config.option`) are
checked by `action3d.config.validation` right after. `NOT_READ` says, per command, why a key whose
`commands=` leaves that command out cannot take effect there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import MISSING

from action3d.config.checks import fail
from action3d.config.data import DataConfig
from action3d.config.model import ModelConfig
from action3d.config.model_checks import check_architecture
from action3d.config.model_presets import register_model_presets
from action3d.config.option import DATA_ACTIONS, Context, Rule, option, section
from action3d.config.train import EvalConfig, InferenceConfig, OptimConfig, SchedConfig, TrainerConfig
from action3d.config.zoo import ZooConfig

_SAMPLING_KEYS = ", ".join(f"data.{k}" for k in ("clip_len", "frame_interval", "short_side", "crop_size",
                                                  "mean", "std"))
NOT_READ = {
    "train": "train does not read it",
    "eval": "it is a training setting; eval uses eval.batch_size, eval.num_clips and eval.num_crops",
    "predict": "predict reads the videos given by video=, one at a time in this process; only sampling, crop "
               "and normalisation keys of data.* apply",
    "embed": "it reads the videos given by video=, one window or clip at a time in this process; only sampling, "
             "crop, decoding and normalisation keys of data.* apply",
    "explain": "it reads the video given by video=, one clip at a time in this process; only sampling, crop, "
               "decoding and normalisation keys of data.* apply",
    "info": "info summarises the model for input=[C,T,H,W]; data settings do not apply",
    "export": f"export records the sampling and normalises inside the model; only {_SAMPLING_KEYS} apply",
    "data synth": "data synth does not read it: it writes the synthetic set of data.synthetic.* into out=",
    "data check": "data check does not read it: it reads the dataset's files and the clip span (data.clip_len, "
                  "data.frame_interval); clip transforms and loading do not apply",
    "data prepare": "data prepare does not read it: it re-encodes whole videos, so clip sampling, transforms and "
                    "loading do not apply",
    "data pack": "data pack does not read it: it copies whole videos into shards, so clip sampling, transforms "
                 "and loading do not apply",
    "data extract": "data extract does not read it: it writes every frame of whole videos as JPEGs, so clip "
                    "sampling, transforms and loading do not apply",
}


def _existing_file(value: Any, ctx: Context) -> None:
    from action3d.config.paths import existing_file

    existing_file(ctx.key, value)


def _existing_path(value: Any, ctx: Context) -> None:
    from action3d.config.paths import existing_path

    existing_path(ctx.key, value)


def _a_file(value: Any, ctx: Context) -> None:
    from action3d.config.paths import existing_path

    existing_path(ctx.key, value)
    if Path(value).is_dir():
        fail(ctx.key, value, "explain writes one video; give a video file, not a folder")


def _needs_window(value: Any, ctx: Context) -> None:
    if ctx.section.window is None:
        what = "the step between windows" if ctx.key == "stride" else "a plot of each window's probabilities"
        fail(ctx.key, value, f"needs window=SECONDS ({ctx.key} is {what})")


_SECONDS = dict(low=0.0, low_open=True)
PREPARE_SHORT_SIDE = 128   # `data prepare`'s short side when short_side= is not given


@dataclass
class TrainConfig:
    model: ModelConfig = section(ModelConfig, check=check_architecture, help="the network")
    data: DataConfig = section(DataConfig, help="the dataset, its sampling, transforms and loading")
    optim: OptimConfig = section(OptimConfig, help="the optimiser")
    sched: SchedConfig = section(SchedConfig, help="the learning-rate schedule")
    trainer: TrainerConfig = section(TrainerConfig, help="the training loop")
    zoo: ZooConfig = section(ZooConfig, commands=("train", "eval"),
                             help="zoo=SOURCE/NAME: a published model's architecture, sampling, test protocol and "
                                  "classes (conf/zoo/; docs/zoo.md); fine-tuning takes its model, normalisation, clip "
                                  "length, frame interval and frame rate")
    eval: EvalConfig = section(EvalConfig, commands=(),
                               help="not read by train: the test views `action3d eval` uses, which zoo= sets; stored "
                                    "with the run")


@dataclass
class CheckpointRun:
    """A trained model run over videos: its checkpoint, the data overrides on top of the
    checkpoint's data config, how it runs (`trainer`) and the views per video (`eval`)."""
    ckpt: str = option(MISSING, preflight=_existing_file,
                       help="the training checkpoint (best.pt, last.pt): its model, class names and data config are "
                            "used, the data.* keys given on the command line on top (data=GROUP: that dataset whole)")
    data: DataConfig = section(DataConfig,
                               help="overrides of the checkpoint's data config (only the keys given on the command "
                                    "line apply)")
    trainer: InferenceConfig = section(InferenceConfig, help="how the model runs")
    eval: EvalConfig = section(EvalConfig, help="the views per video")


@dataclass
class EvalCommandConfig(CheckpointRun):
    split: str = option("val", choices=("train", "val"), help="which split of the dataset is scored: train or val")
    zoo: ZooConfig = section(ZooConfig,
                             help="zoo=SOURCE/NAME: the test protocol of a published model; a ckpt= that is no "
                                  "action3d checkpoint (the zoo's own file) also gets its model, normalisation, "
                                  "sampling and classes (docs/zoo.md)")
    model: ModelConfig = section(ModelConfig, commands=(), check=check_architecture,
                                 help="set by zoo=SOURCE/NAME, never on the command line: the architecture of a ckpt= "
                                      "that is no action3d checkpoint (an action3d checkpoint holds its own)")


@dataclass
class PredictConfig(CheckpointRun):
    video: str = option(MISSING, preflight=_existing_path,
                        help="a video file, or a folder (every video under it, sorted)")
    topk: int = option(5, low=1, integer=True, help="classes listed per video (or window)")
    json: Optional[str] = option(None,
                                 help="also write the predictions (with window: the windows and the merged segments) "
                                      "as JSON to this file")
    window: Optional[float] = option(None, **_SECONDS,
                                     help="seconds: score every window of this length of one long video (a file) "
                                          "instead, one starting every stride seconds and a last one ending with the "
                                          "video, each sampled as eval samples a whole video; prints the merged "
                                          "segments (consecutive windows of one top class)")
    stride: Optional[float] = option(None, **_SECONDS, check=_needs_window,
                                     help="seconds between window starts (unset: window, back to back); needs window")
    timeline: Optional[str] = option(None, check=_needs_window,
                                     help="with window: plot the per-class probabilities over time to this PNG")


def _action_reads(*actions: str) -> tuple:
    return tuple(f"data {a}" for a in actions)


def _out_required(ctx: Context) -> Optional[str]:
    action = ctx.section.action
    return None if action == "check" else f"data {action} needs out=DIR (the folder to write)"


def _part(value: Any, ctx: Context) -> None:
    from action3d.config.checks import is_int

    fields = str(value).strip().split("/")
    if len(fields) != 2 or not all(f.strip().isdigit() for f in fields):
        fail(ctx.key, value, "expected I/N, the I-th of N parts (e.g. part=1/8; a SLURM array: "
                             "part=$SLURM_ARRAY_TASK_ID/8 with --array=1-8)")
    index, count = (int(f) for f in fields)
    if not (is_int(index) and 1 <= index <= count):
        fail(ctx.key, value, f"expected I/N with 1 <= I <= N (here N={count})")


def parse_part(part: Optional[str]) -> Optional[tuple]:
    """`I/N` (validated by the field's rule) as (I, N); None: all the work."""
    if part is None:
        return None
    index, count = (int(f) for f in str(part).strip().split("/"))
    return index, count


def _not_with_part(value: bool, ctx: Context) -> None:
    if value and ctx.section.part is not None:
        fail(ctx.key, value, f"merge=true writes the lists of all finished parts; give it without "
                             f"part={ctx.section.part}")


@dataclass
class DataCommandConfig:
    action: str = option(MISSING, choices=DATA_ACTIONS,
                         help="the tool: synth writes the synthetic set of data.synthetic.* into out; check decodes "
                              "every video and lists the unreadable and the short ones (with out: SPLIT_clean.txt "
                              "lists of the good ones there); prepare re-encodes the videos into out, with list files "
                              "and classes.txt; pack writes them into tar shards in out (data=shards reads them); "
                              "extract writes their frames as JPEG folders in out, with rawframes lists and "
                              "classes.txt (data.format=rawframes reads them)")
    out: Optional[str] = option(None, required=_out_required,
                                help="the folder to write: required by synth, prepare, pack and extract; check: where "
                                     "the cleaned lists go (unset: none written)")
    short_side: Optional[int] = option(None, low=2, integer=True, commands=_action_reads("prepare", "extract"),
                                       help="prepare: the short side of the re-encoded videos, scaled down, never up "
                                            f"(unset: {PREPARE_SHORT_SIDE}); extract: the frames resized so that their "
                                            "short side is this, up or down, as in the video reader "
                                            "(data.decode_short_side) (unset: the stored size)")
    gop: int = option(16, low=1, integer=True, commands=_action_reads("prepare"),
                      help="prepare: frames between keyframes (short: cheap seeks for random access)")
    crf: int = option(23, low=0, high=51, integer=True, commands=_action_reads("prepare"),
                      help="prepare: x264 quality (lower: better and larger)")
    target_fps: Optional[float] = option(None, low=0.0, low_open=True, commands=_action_reads("prepare"),
                                         help="prepare: store every video at this frame rate, its frames the ones "
                                              "data.target_fps=F picks (torchvision's rule), so that clips sampled at "
                                              "that rate decode no frame the resampling throws away; unset: the "
                                              "native rate")
    quality: int = option(95, low=1, high=100, integer=True, commands=_action_reads("extract"),
                          help="extract: the JPEG quality of the frames, 1-100 (libjpeg's scale; 95 is OpenCV's "
                               "default, which mmaction2's frame extraction writes with)")
    workers: int = option(2, low=1, integer=True, commands=_action_reads("check", "prepare", "extract"),
                          help="processes that read, re-encode or extract videos (1: in this process)")
    min_frames: int = option(0, low=0, integer=True, commands=_action_reads("check"),
                             help="check: videos with fewer frames are listed as short (0: the clip span, "
                                  "(data.clip_len - 1) x data.frame_interval + 1)")
    split: str = option("all", choices=("train", "val", "all"),
                        commands=_action_reads("check", "prepare", "pack", "extract"),
                        help="which split the tool reads: train, val or all (both, where defined)")
    part: Optional[str] = option(None, check=_part, commands=_action_reads("prepare"),
                                 help="prepare: I/N, only the I-th of N deterministic parts of the videos (e.g. a "
                                      "SLURM array: part=$SLURM_ARRAY_TASK_ID/8); when every part is done, merge=true "
                                      "writes the lists")
    merge: bool = option(False, check=_not_with_part, commands=_action_reads("prepare"),
                         help="prepare: write the final lists from the finished parts (not with part=)")
    shard_mb: float = option(200.0, low=0.0, low_open=True, commands=_action_reads("pack"),
                             help="pack: the size of each tar shard in MB (aim for more shards than GPUs x loader "
                                  "workers)")
    data: DataConfig = section(DataConfig, help="the dataset the tool reads")


def _model_num_classes_unset(ctx: Context) -> Optional[str]:
    classes = ctx.root.model.num_classes
    return None if classes is None else f"model.num_classes={classes} is set"


@dataclass
class InfoConfig:
    input: List[int] = option(factory=lambda: [3, 8, 64, 64], length=4, items=Rule(low=1, integer=True),
                              entries="[C,T,H,W]",
                              help="the clip shape summarised, [C,T,H,W]: channels, frames, height, width")
    default_num_classes: int = option(400, low=1, integer=True, applies=_model_num_classes_unset,
                                      help="classifier outputs when model.num_classes is unset (info reads no dataset)")
    model: ModelConfig = section(ModelConfig, check=check_architecture, help="the network")
    data: DataConfig = section(DataConfig, commands=(), help="not read: info takes input=[C,T,H,W]")


@dataclass
class ExportConfig:
    """Always fp32 on the CPU: no trainer section (its device and precision could not apply)."""
    ckpt: str = option(MISSING, preflight=_existing_file,
                       help="the training checkpoint to export (its model, class names and data config)")
    format: str = option(MISSING, choices=("onnx", "torchscript"), help="onnx or torchscript")
    out: str = option(MISSING,
                      help="the model file: fp32, uint8 clips (N, C, T, H, W) in, (logits, probabilities) out, "
                           "normalised inside; the sidecar OUT.json beside it holds the class names and the sampling")
    data: DataConfig = section(DataConfig,
                               help="the sampling the sidecar records and the input shape (data.* overrides on top of "
                                    "the checkpoint's)")


@dataclass
class EmbedConfig(CheckpointRun):
    video: str = option(MISSING, preflight=_existing_path,
                        help="a video file, or a folder (every video under it, sorted)")
    out: str = option(MISSING,
                      help="the folder to write: one .npy of pooled backbone features per video (its path below the "
                           "given folder, .npy appended) and index.csv listing every row")
    window: Optional[float] = option(None, **_SECONDS,
                                     help="seconds: one row per window of this length instead of one per video "
                                          "(windows as in predict)")
    stride: Optional[float] = option(None, **_SECONDS, check=_needs_window,
                                     help="seconds between window starts (unset: window, back to back); needs window")


@dataclass
class ExplainConfig(CheckpointRun):
    """`eval` here: the views that choose the top class."""
    video: str = option(MISSING, preflight=_a_file, help="one video file (not a folder)")
    out: str = option(MISSING,
                      help="the video to write: the input with the Grad-CAM heat map of the class over every frame")
    class_name: Optional[str] = option(None,
                                       help="the class to explain (unset: the video's top class, scored with "
                                            "eval.num_clips x eval.num_crops views); on the command line also "
                                            "class=NAME")


SCHEMAS = {
    "train": TrainConfig,
    "eval": EvalCommandConfig,
    "predict": PredictConfig,
    "data": DataCommandConfig,
    "info": InfoConfig,
    "export": ExportConfig,
    "embed": EmbedConfig,
    "explain": ExplainConfig,
}


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for command, schema in SCHEMAS.items():
        store.store(name=f"{command}_schema", node=schema)
    register_model_presets(store)


# --------------------------------------------------------------------------- the same rules, from Python

def check_windows(*, window: Any, stride: Any) -> None:
    """`window`/`stride` seconds of the library's windowed predict and embed (`engine.windows`)."""
    from types import SimpleNamespace

    from action3d.config.option import check_fields

    check_fields(EmbedConfig, SimpleNamespace(window=window, stride=stride), keys=("window", "stride"))


def check_export_format(format: str) -> None:
    from types import SimpleNamespace

    from action3d.config.option import check_fields

    check_fields(ExportConfig, SimpleNamespace(format=format), keys=("format",))
