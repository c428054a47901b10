"""Shared by the commands that run a trained model (eval, predict, export, embed, explain): the
checkpoint's model with its config in today's schema, the data config it runs on, and how its
views are described.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

from omegaconf import OmegaConf

from action3d.config import DataConfig, TrainConfig, renamed
from action3d.errors import Action3dError


def upgrade_config(stored: Mapping[str, Any], *, path: str = "the checkpoint") -> TrainConfig:
    """The training config a checkpoint stored, in today's schema: the one place an old config is
    upgraded. A renamed key's value moves to its new name, a removed key is dropped, and a key
    added since takes its default (e.g. data.autorotate, data.preset_workers)."""
    from action3d.config.validation import check_values

    plain = _dotted(dict(stored))
    for old, new in renamed.RENAMED.items():
        if old in plain:
            plain[new] = plain.pop(old)
    for old in renamed.REMOVED:
        plain.pop(old, None)
    cfg = OmegaConf.structured(TrainConfig)
    for key, value in plain.items():
        try:
            OmegaConf.update(cfg, key, value, merge=False)
        except Exception as err:  # a key no schema of this version knows, or a value of the wrong type
            raise Action3dError(f"{path}: its config key {key}={value!r} does not fit this version of action3d "
                                f"({type(err).__name__})") from None
    try:
        check_values(cfg, "train")
    except Action3dError as err:
        raise Action3dError(f"{path}: its config breaks a rule of this version of action3d: {err}") from None
    return OmegaConf.to_object(cfg)


def _dotted(node: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """{"model.depth": 18, ...}: the leaves of nested sections (lists stay values)."""
    out: Dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_trained(ckpt: str, device: Any, *, channels_last: bool = True, state: Any = None):
    """The checkpoint's model (`action3d.engine.inference.TrainedModel`), its config upgraded
    (`state`: the file's contents, when already read)."""
    from action3d.engine.inference import read_trained_checkpoint, trained_model

    state = read_trained_checkpoint(ckpt) if state is None else state
    config = upgrade_config(state["config"], path=f"ckpt={ckpt}")
    return trained_model(state, config, path=ckpt, device=device, channels_last=channels_last)


def is_training_checkpoint(state: Any) -> bool:
    """An action3d training checkpoint (its model and config), not a zoo's own file."""
    return isinstance(state, Mapping) and "config" in state and "model" in state


def with_protocol(data: DataConfig, given: DataConfig) -> DataConfig:
    """A checkpoint's data config with the test-protocol keys of `given` (zoo=: what the zoo file
    and the command line set), `action3d.config.zoo.PROTOCOL_DATA_KEYS`; all else stays."""
    import dataclasses

    from action3d.config.zoo import PROTOCOL_DATA_KEYS

    return dataclasses.replace(data, **{key: getattr(given, key) for key in PROTOCOL_DATA_KEYS})


def run_data(trained_data: DataConfig, given: DataConfig, overrides: Sequence[str]) -> DataConfig:
    """The data config a trained model is run on: the checkpoint's, with the `data.*` keys given
    on the command line on top; `data=GROUP` chooses another dataset and takes it whole."""
    from action3d.commands._hydra import override_key

    keys = [override_key(o) for o in overrides]
    if "data" in keys:
        return given
    data = OmegaConf.structured(trained_data)
    for key in keys:
        if key.startswith("data."):
            leaf = key[len("data."):]
            OmegaConf.update(data, leaf, _select(given, leaf), merge=False)
    return OmegaConf.to_object(data)


def _select(section: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        section = getattr(section, part)
    return section


def views_text(num_clips: int, num_crops: int) -> str:
    """`3 clips x 1 crop`: the views averaged per video or window."""
    return f"{num_clips} clip{'s' if num_clips > 1 else ''} x {num_crops} crop{'s' if num_crops > 1 else ''}"
