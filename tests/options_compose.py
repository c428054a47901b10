"""Composed configs for the option-matrix tests (tests/test_options_*.py), fast.

`compose(command, *overrides)` is `action3d.commands._hydra.compose_config`: the one composition
path of the command line's pre-check (Hydra composes the config groups once per set of choices,
then each `key=value` is applied and every rule checked, the refusal of keys that cannot take
effect included), so no test relies on a command line `action3d` refuses.
"""
from __future__ import annotations

from omegaconf import DictConfig

from action3d.commands._hydra import compose_config


def compose(command: str, *overrides: str) -> DictConfig:
    """The checked config of `action3d COMMAND OVERRIDES` (a fresh copy each call)."""
    return compose_config(command, list(overrides))
