"""The top-level schema of each command, registered with Hydra's ConfigStore as `COMMAND_schema`.

`conf/COMMAND.yaml` lists `COMMAND_schema` first in its defaults, so OmegaConf rejects unknown
keys and wrong types while Hydra composes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING

from action3d.config.data import DataConfig
from action3d.config.model import ModelConfig
from action3d.config.model_presets import register_model_presets
from action3d.config.train import EvalConfig, InferenceConfig, OptimConfig, SchedConfig, TrainerConfig


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class CheckpointRun:
    """A trained model run over videos: its checkpoint, the data overrides on top of the
    checkpoint's data config, how it runs (`trainer`) and the views per video (`eval`)."""
    ckpt: str = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    trainer: InferenceConfig = field(default_factory=InferenceConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class EvalCommandConfig(CheckpointRun):
    split: str = "val"                    # which annotation list of the dataset to evaluate


@dataclass
class PredictConfig(CheckpointRun):
    video: str = MISSING                  # a video file or a folder of videos
    topk: int = 5
    json: Optional[str] = None            # also write the predictions as JSON to this file
    window: Optional[float] = None        # seconds: score every window of one long video (a timeline)
    stride: Optional[float] = None        # seconds between window starts (default: window)
    timeline: Optional[str] = None        # with window: draw the per-class probabilities to this PNG


@dataclass
class DataCommandConfig:
    action: str = MISSING                 # synth | check | prepare | pack
    out: Optional[str] = None
    short_side: int = 128
    gop: int = 16
    crf: int = 23
    workers: int = 2
    min_frames: int = 0                   # check: shorter videos are reported (0: clip span)
    split: str = "all"                    # train | val | all
    part: Optional[str] = None            # prepare: I/N, only the I-th of N deterministic parts of the videos
    merge: bool = False                   # prepare: write the final lists from the finished parts
    shard_mb: float = 200.0               # pack: size of each tar shard in MB (aim for more shards than GPUs x workers)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class InfoConfig:
    input: List[int] = field(default_factory=lambda: [3, 8, 64, 64])   # C, T, H, W
    default_num_classes: int = 400
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class ExportConfig:
    """Always fp32 on the CPU: no trainer section (its device and precision could not apply)."""
    ckpt: str = MISSING
    format: str = MISSING                 # onnx | torchscript
    out: str = MISSING                    # the model file; the sidecar JSON goes to OUT.json
    data: DataConfig = field(default_factory=DataConfig)  # the sampling the sidecar records


@dataclass
class EmbedConfig(CheckpointRun):
    video: str = MISSING                  # a video file or a folder of videos
    out: str = MISSING                    # folder: one .npy per video and index.csv
    window: Optional[float] = None        # seconds: one embedding per window instead of per video
    stride: Optional[float] = None        # seconds between window starts (default: window)


@dataclass
class ExplainConfig(CheckpointRun):
    """`eval` here: the views that choose the top class."""
    video: str = MISSING                  # one video file
    out: str = MISSING                    # the video with the Grad-CAM heat map over every frame
    class_name: Optional[str] = None      # explain this class (default: the video's top class)


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
