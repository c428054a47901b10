"""Config schemas (typed dataclasses registered with Hydra) and their validation.

Nothing here imports torch: the command line composes and checks a config, and answers
`--help` or a config mistake, before any heavy import.
"""
from action3d.config.commands import (
                                      SCHEMAS,
                                      DataCommandConfig,
                                      EvalCommandConfig,
                                      InfoConfig,
                                      PredictConfig,
                                      TrainConfig,
                                      register_configs,
)
from action3d.config.data import DataConfig, SyntheticConfig
from action3d.config.model import ModelConfig
from action3d.config.rules import ConfigError
from action3d.config.train import EvalConfig, InferenceConfig, OptimConfig, SchedConfig, TrainerConfig
from action3d.config.validate import validate

__all__ = [
    "SCHEMAS", "ConfigError", "DataCommandConfig", "DataConfig", "EvalCommandConfig", "EvalConfig",
    "InferenceConfig", "InfoConfig", "ModelConfig", "OptimConfig", "PredictConfig", "SchedConfig",
    "SyntheticConfig", "TrainConfig", "TrainerConfig", "register_configs", "validate",
]
