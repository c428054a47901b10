"""ModelConfig's rules on Python arguments: `ResNet3d(...)`, SlowFast's pathways, a head's or a
non-local block's argument, and `build_model`'s own, checked with the words of the `model.*` errors
and once per distinct set of values in a process (the config check of a CLI run already passed
them: `check_architecture`, the model section's rule, remembers what it checked)."""
from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any, Dict

from action3d.config.checks import ConfigError, hashable, is_int, per_block, per_stage
from action3d.config.model import ModelConfig, blocks_per_stage
from action3d.config.option import Context, check_fields

# ModelConfig fields that are ResNet3d keyword arguments with the same name and meaning.
RESNET3D_KEYS = ("depth", "stage_blocks", "num_stages", "out_indices", "spatial_strides", "temporal_strides",
                 "dilations", "conv1_kernel", "conv1_stride", "pool1_stride", "in_channels", "base_channels",
                 "frozen_stages", "style", "inflate", "inflate_style", "non_local", "non_local_mode", "shortcut_type",
                 "pool1_kernel", "shortcut_norm")


def check_resnet3d(*, prefix: str = "", **arguments: Any) -> Dict[str, Any]:
    """ResNet3d's arguments checked by ModelConfig's rules (the words of `model.*` errors, with
    `prefix` instead of `model.`); returns the per-stage lists in normal form. Absent arguments
    take ModelConfig's defaults, as ResNet3d's own are. A set of arguments that the config check
    of this process already passed (`check_architecture`) is not checked again."""
    values = _resnet3d_values(arguments)
    key = hashable(values)
    if key not in _CHECKED_RESNET3D:
        check_fields(ModelConfig, SimpleNamespace(arch="resnet3d", **values), prefix=prefix, keys=RESNET3D_KEYS)
        _remember(key, _normal_form(values))
    return _CHECKED_RESNET3D[key]


_CHECKED_RESNET3D: Dict[Any, Dict[str, Any]] = {}


def _remember(key: Any, normal: Dict[str, Any]) -> None:
    if len(_CHECKED_RESNET3D) > 256:
        _CHECKED_RESNET3D.clear()
    _CHECKED_RESNET3D[key] = normal


def _resnet3d_values(arguments: Dict[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(arguments) - set(RESNET3D_KEYS))
    if unknown:
        raise TypeError(f"check_resnet3d() got unexpected arguments {unknown}")
    defaults = ModelConfig()
    values = {key: arguments.get(key, getattr(defaults, key)) for key in RESNET3D_KEYS}
    if values["out_indices"] is None and is_int(values["num_stages"]):
        values["out_indices"] = [values["num_stages"] - 1]
    return values


def _normal_form(values: Dict[str, Any]) -> Dict[str, Any]:
    """The per-stage lists of checked ResNet3d arguments, one entry per stage (and block)."""
    section = SimpleNamespace(**values)
    n = section.num_stages
    blocks = blocks_per_stage(section)
    indices = [section.out_indices] if is_int(section.out_indices) else list(section.out_indices)
    return dict(stage_blocks=blocks, out_indices=sorted(set(indices)),
                inflate=per_block("inflate", section.inflate, blocks),
                non_local=per_block("non_local", section.non_local, blocks),
                **{name: per_stage(name, getattr(section, name), n)
                   for name in ("spatial_strides", "temporal_strides", "dilations")})


def check_model_argument(name: str, value: Any) -> None:
    """One ModelConfig key's rule on a Python argument of the same name (a head's `dropout`, a
    non-local block's `mode`), with the argument's name in the message."""
    check_fields(ModelConfig, SimpleNamespace(**{**vars(ModelConfig()), name: value}), keys=(name,))


def check_recognizer(*, arch: Any, num_classes: Any, dropout: Any) -> None:
    """The arguments `build_model` itself reads (the backbone's are ResNet3d's own), checked by
    ModelConfig's rules, once per distinct set of values in a process."""
    _check_recognizer(hashable(arch), hashable(num_classes), hashable(dropout))


@functools.lru_cache(maxsize=64)
def _check_recognizer(arch: Any, num_classes: Any, dropout: Any) -> None:
    section = SimpleNamespace(**{**vars(ModelConfig()), "arch": arch, "num_classes": num_classes, "dropout": dropout})
    check_fields(ModelConfig, section, prefix="model.", keys=("arch", "num_classes", "dropout"))


def check_architecture(model: Any, ctx: Context) -> None:
    """The model section's own rule, after each of its keys passed its own: the network it
    describes can be built. Its ResNet3d arguments were checked key by key already (remembered,
    so that `ResNet3d(...)` does not check them again); SlowFast's fast pathway, derived from
    them as the builder derives it (`derive_slowfast_pathways`), is checked here."""
    from action3d.config.backbone_args import derive_slowfast_pathways, resnet3d_kwargs

    pathways = [resnet3d_kwargs(model)] if model.arch != "slowfast" else list(derive_slowfast_pathways(model))
    slow, *fast = [{k: v for k, v in pathway.items() if k in RESNET3D_KEYS} for pathway in pathways]
    values = _resnet3d_values(slow)
    _remember(hashable(values), _normal_form(values))
    for pathway in fast:
        try:
            check_resnet3d(**pathway)
        except ConfigError as err:
            raise ConfigError(f"{ctx.key} (its fast pathway): {err}") from None
