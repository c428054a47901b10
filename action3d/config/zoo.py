"""`zoo=SOURCE/NAME`: a published checkpoint's model, sampling, test protocol and class list in one
config choice (conf/zoo/SOURCE/NAME.yaml; docs/zoo.md lists them).

A zoo file selects the model preset (`override /model: NAME`), sets the data keys its figures depend
on (normalisation, clip length, frame interval, target frame rate, test resize, crop size), the
test views (`eval.protocol`, `eval.num_clips`, `eval.num_crops`) and this section: which preset it
is, the model preset its checkpoints fit, and its class list in the order of its head.

- Fine-tuning (`train zoo=...`) takes the zoo's model, normalisation and sampling; augmentation
  stays the dataset's. A model= or model.* architecture key that changes the zoo's model is
  refused (the rule on `zoo.model`).
- `eval zoo=... ckpt=FILE`: a foreign file (the zoo's own) gets the zoo's model, its data keys and
  classes; an action3d checkpoint keeps its own model, normalisation and classes, and the zoo sets
  only the test protocol (`PROTOCOL_DATA_KEYS` and eval.*).

Torch-free, like every schema.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional

from action3d.config.checks import ConfigError
from action3d.config.option import Context, option

SOURCES = ("tv", "ptv", "pyslowfast", "mmaction2", "hara")
CLASS_LISTS = ("kinetics400",)   # offline, in head order: action3d.data.zoo_classes

# ModelConfig fields that do not change the network's architecture: a zoo's model may get them.
NOT_ARCHITECTURE = ("name", "num_classes", "pretrained", "pretrained2d", "frozen_stages", "norm_eval", "with_cp",
                    "zero_init_residual", "dropout")

# The data keys of a zoo's test protocol: all that zoo= changes for an action3d checkpoint (with
# eval.protocol, eval.num_clips and eval.num_crops). Every zoo file sets each of them.
PROTOCOL_DATA_KEYS = ("test_resize", "short_side", "crop_size", "resize_antialias")


def _set_by_the_zoo_file(ctx: Context) -> Optional[str]:
    return "zoo.* keys are set by zoo=SOURCE/NAME (the files of conf/zoo/; docs/zoo.md)"


def _same_architecture(value: Any, ctx: Context) -> None:
    """With zoo=, the model is the zoo's: a model= or model.* architecture key may not change it."""
    from action3d.config.model import ModelConfig
    from action3d.config.model_presets import PRESETS

    preset = PRESETS.get(value)
    if preset is None:
        raise ConfigError(f"{ctx.key}={value}: no such model preset (zoo={ctx.section.name}); "
                          f"presets: {', '.join(sorted(PRESETS))}")
    model = getattr(ctx.root, "model", None)
    if model is None:
        return
    zoo = ctx.section.name
    if model.name != preset.name:
        raise ConfigError(f"model: zoo={zoo} selects model {preset.name}; give no model= with zoo= "
                          f"(here model={model.name})")
    for f in dataclasses.fields(ModelConfig):
        if f.name in NOT_ARCHITECTURE:
            continue
        given = _plain(getattr(model, f.name))
        wanted = _plain(ctx.section.architecture.get(f.name, getattr(preset.model, f.name)))
        if given != wanted:
            raise ConfigError(f"model.{f.name}: zoo={zoo} selects model {preset.name}, whose {f.name} is {wanted}; "
                              f"give no model.* architecture key with zoo= (here model.{f.name}={given})")


def _architecture_keys(value: Any, ctx: Context) -> None:
    from action3d.config.model import ModelConfig

    known = {f.name for f in dataclasses.fields(ModelConfig)} - set(NOT_ARCHITECTURE)
    bad = sorted(set(value) - known)
    if bad:
        raise ConfigError(f"{ctx.key}: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} no model architecture key "
                          f"(expected model keys other than {', '.join(NOT_ARCHITECTURE)})")


def _refuse(value: Any, ctx: Context) -> None:
    raise ConfigError(f"zoo={ctx.section.name} is not available, as its zoo.refused says: {value}")


def _plain(value: Any) -> Any:
    """A ListConfig/tuple as a plain list, recursively (for comparing a composed value with a preset's)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_plain(v) for v in value]
    return value


@dataclass
class ZooConfig:
    """Set by the zoo file, never on the command line."""
    name: Optional[str] = option(None, applies=_set_by_the_zoo_file,
                                 help="the zoo preset chosen with zoo=SOURCE/NAME (unset: no zoo)")
    model: Optional[str] = option(None, check=_same_architecture, applies=_set_by_the_zoo_file,
                                  help="the model preset the zoo's checkpoints fit (model=NAME); a model= or "
                                       "model.* architecture key that changes it is refused")
    classes: Optional[str] = option(None, choices=CLASS_LISTS, applies=_set_by_the_zoo_file,
                                    help="the zoo's class names in the order of its head: kinetics400 (torchvision's "
                                         "Kinetics-400 list, which mmaction2, PySlowFast and PyTorchVideo share); "
                                         "unset: none offline, so eval needs data.classes_file listing them")
    num_classes: Optional[int] = option(None, low=1, integer=True, applies=_set_by_the_zoo_file,
                                        help="the outputs of the zoo's head")
    architecture: Dict[str, Any] = option(factory=dict, check=_architecture_keys, applies=_set_by_the_zoo_file,
                                          help="model keys the zoo file sets on top of zoo.model's preset (Hara's "
                                               "2018 ResNet-18/34: shortcut_type A); the zoo's model is the preset "
                                               "with these")
    refused: Optional[str] = option(None, check=_refuse, applies=_set_by_the_zoo_file,
                                    help="a zoo checkpoint action3d cannot build: why, and the nearest preset that "
                                         "it can (choosing such a zoo= is refused with this line)")
