"""Composed configs for the option-matrix tests (tests/test_options_*.py), fast.

`compose(command, *overrides)` returns what `compose_config(command, overrides)` returns, the
config `action3d COMMAND OVERRIDES` runs with, but runs Hydra's composition once per set of group
choices (`model=...`, `data=...`): the `key=value` overrides are then applied the way Hydra applies
them after composing the defaults tree (its override parser, then its own update step), and the
result is checked like any command line: validated, and every key given must be one that can
take effect (`check_user_keys`), so no test relies on a command line `action3d` refuses.
A full composition costs 0.2-0.8 s on the shared CPU, this a few milliseconds;
`test_options_model.py::test_fast_compose_equals_compose_config` checks that both agree.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from action3d.commands._hydra import CONF_DIR, describe_compose_error, override_key
from action3d.config import register_configs, validate
from action3d.config.applicability import check_user_keys
from action3d.config.model_presets import PRESET_GROUP
from action3d.errors import Action3dError

_PARSER = OverridesParser.create()


def _is_group_choice(key: str) -> bool:
    """`model=r3d_18`, `data=ucf101`: a key naming a config group, a folder of conf/ or the model
    presets (Python values registered in Hydra's ConfigStore)."""
    return "." not in key and (key == PRESET_GROUP or (Path(CONF_DIR) / key).is_dir())


@functools.cache
def _composed(command: str, group_choices: tuple) -> DictConfig:
    """Hydra's composition of the defaults tree (as `compose_config`, before any validation:
    mandatory keys such as `action` or `ckpt` come with the value overrides)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=command):
        try:
            return hydra_compose(config_name=command, overrides=list(group_choices))
        except Exception as err:
            raise Action3dError(describe_compose_error(err)) from None


def compose(command: str, *overrides: str) -> DictConfig:
    """The validated config of `action3d COMMAND OVERRIDES` (a fresh copy each call)."""
    parsed = _PARSER.parse_overrides(list(overrides))
    groups = tuple(o.input_line for o in parsed if _is_group_choice(o.key_or_group))
    values = [o for o in parsed if not _is_group_choice(o.key_or_group)]
    cfg = copy.deepcopy(_composed(command, groups))
    try:
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    except Exception as err:  # as compose_config: one line naming the key
        raise Action3dError(describe_compose_error(err)) from None
    validate(cfg)
    check_user_keys(command, cfg, [override_key(o) for o in overrides])
    return cfg
