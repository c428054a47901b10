"""Config schemas (typed dataclasses registered with Hydra), each field with its own rules, and
the one validator that reads them.

Nothing here imports torch: the command line composes and checks a config, and answers
`--help` or a config mistake, before any heavy import.
"""
from action3d.config import renamed
from action3d.config.checks import ConfigError
from action3d.config.commands import (
                                      SCHEMAS,
                                      DataCommandConfig,
                                      EmbedConfig,
                                      EvalCommandConfig,
                                      ExplainConfig,
                                      ExportConfig,
                                      InfoConfig,
                                      PredictConfig,
                                      TrainConfig,
                                      register_configs,
)
from action3d.config.data import DataConfig, SyntheticConfig
from action3d.config.model import ModelConfig
from action3d.config.option import Rule, option
from action3d.config.train import EvalConfig, InferenceConfig, OptimConfig, SchedConfig, TrainerConfig
from action3d.config.validation import check_values, preflight, refuse_inapplicable, validate

__all__ = [
    "SCHEMAS", "ConfigError", "DataCommandConfig", "DataConfig", "EmbedConfig", "EvalCommandConfig", "EvalConfig",
    "ExplainConfig", "ExportConfig", "InferenceConfig", "InfoConfig", "ModelConfig", "OptimConfig",
    "PredictConfig", "Rule", "SchedConfig", "SyntheticConfig", "TrainConfig", "TrainerConfig", "check_values",
    "option", "preflight", "refuse_inapplicable", "register_configs", "renamed", "validate",
]
