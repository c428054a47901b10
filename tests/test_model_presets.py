"""The model presets as Python values (action3d.config.model_presets): Hydra registration, nested
names, users' own YAML presets, and the one derivation of SlowFast's pathways."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from action3d.commands._hydra import CONF_DIR, command_help, compose_config
from action3d.config.backbone_args import derive_slowfast_pathways, resnet3d_kwargs
from action3d.config.model import ModelConfig
from action3d.config.model_presets import PRESET_GROUP, PRESETS, ModelPreset, register_model_presets

NESTED = ModelPreset(
    model=ModelConfig(name="test/nested", depth=34, base_channels=8, with_pool2=False),
    clip_len=5, frame_interval=3, source="A test preset in a sub-folder of the model group.")

USER_PRESET = """\
# @package _global_
# My preset: the tiny model with ResNet-34 depth, on 6-frame clips.
model:
  name: mine
  depth: 34
  base_channels: 8
data:
  clip_len: 6
"""


@pytest.fixture
def nested_preset():
    """`model=test/nested` registered for one test, as a later `ptv/...` preset will be."""
    store = ConfigStore.instance()
    register_model_presets(store, {NESTED.name: NESTED})
    yield NESTED
    del store.repo[PRESET_GROUP]["test"]


def test_a_nested_preset_composes_like_a_top_level_one(nested_preset):
    cfg = compose_config("train", ["model=test/nested", "model.dropout=0.1"])
    assert OmegaConf.to_container(cfg.model) == dataclasses.asdict(nested_preset.model_config(dropout=0.1))
    assert (cfg.data.clip_len, cfg.data.frame_interval) == (5, 3)
    assert cfg.data.name == compose_config("train").data.name      # the dataset itself is untouched


def test_model_name_selects_the_preset_value_and_help_lists_every_preset():
    cfg = compose_config("info", ["model=i3d_nl_r50"])
    assert OmegaConf.to_container(cfg.model) == dataclasses.asdict(PRESETS["i3d_nl_r50"].model)
    [line] = [line for line in command_help("train", []).splitlines() if line.startswith("model: ")]
    assert line == f"model: {', '.join(sorted(PRESETS))}"


def test_each_preset_is_named_once_and_documented():
    for name, preset in PRESETS.items():
        assert preset.name == name and len(preset.source) > 40


def test_a_preset_hands_out_copies():
    config = PRESETS["i3d_r50"].model_config(depth=101)
    config.inflate[0][0] = 0
    assert PRESETS["i3d_r50"].model.depth == 50 and PRESETS["i3d_r50"].model.inflate[0][0] == 1
    with pytest.raises(TypeError):
        PRESETS["i3d_r50"].model_config(depht=101)


def _slowfast_configs(**fields):
    """The same SlowFast config as a dataclass, a structured node and a composed node."""
    dataclass = PRESETS["slowfast_r50_8x8"].model_config(**fields)
    composed = compose_config("train", ["model=slowfast_r50_8x8", *(f"model.{k}={v}" for k, v in fields.items())])
    return dataclass, OmegaConf.structured(dataclass), composed.model


def test_slowfast_pathways_are_derived_from_the_config_in_any_form():
    fields = dict(base_channels=32, channel_ratio=4, fast_conv1_kernel=[3, 7, 7], frozen_stages=1)
    results = [derive_slowfast_pathways(cfg) for cfg in _slowfast_configs(**fields)]
    assert results[0] == results[1] == results[2]
    slow, fast = results[0]
    assert slow["lateral"] is True and fast["lateral"] is False
    assert (slow["base_channels"], fast["base_channels"]) == (32, 8)        # 32 // channel_ratio
    assert (slow["conv1_kernel"], fast["conv1_kernel"]) == ([1, 7, 7], [3, 7, 7])
    assert (slow["inflate"], fast["inflate"]) == ([0, 0, 1, 1], [1, 1, 1, 1])
    assert fast["non_local"] == 0 and slow["out_indices"] == fast["out_indices"] == (3,)
    assert slow["frozen_stages"] == fast["frozen_stages"] == 1
    assert type(slow["conv1_kernel"]) is list                            # plain values, no OmegaConf
    same = {k for k in slow if slow[k] == fast[k]}
    assert same == set(slow) - {"lateral", "base_channels", "conv1_kernel", "inflate", "non_local"}


def test_resnet3d_kwargs_resolve_the_last_stage():
    assert resnet3d_kwargs(ModelConfig(num_stages=3))["out_indices"] == (2,)
    assert resnet3d_kwargs(OmegaConf.structured(ModelConfig(out_indices=[1, 3])))["out_indices"] == (1, 3)


def test_build_backbone_builds_the_derived_fast_pathway():
    from action3d.models import build_backbone

    cfg = PRESETS["slowfast_r50"].model_config(depth=18, base_channels=16, channel_ratio=4,
                                               stage_blocks=[1, 1, 1, 1])
    backbone = build_backbone(cfg)
    assert backbone.channel_ratio == 4 and backbone.fast_path.base_channels == 4
    assert backbone.fast_path.conv1.conv.kernel_size == (5, 7, 7)


def _action3d(args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "action3d", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, **(env or {})})


def test_a_user_yaml_preset_in_a_copy_of_the_config_tree_composes(tmp_path):
    """`ACTION3D_CONF=DIR` (a copy of conf/ with DIR/model/mine.yaml): the user's file and the
    Python presets are options of the same group."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / PRESET_GROUP).mkdir()
    (conf / PRESET_GROUP / "mine.yaml").write_text(USER_PRESET)
    done = _action3d(["train", "model=mine", "--cfg", "job"], env={"ACTION3D_CONF": str(conf)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cfg = OmegaConf.create(done.stdout)
    assert (cfg.model.name, cfg.model.depth, cfg.model.base_channels, cfg.data.clip_len) == ("mine", 34, 8, 6)
    assert cfg.model.dropout == ModelConfig.dropout                     # unset keys: the schema's defaults
    assert _action3d(["train", "model=r3d_18", "--cfg", "job"], env={"ACTION3D_CONF": str(conf)},
                     cwd=tmp_path).returncode == 0


def test_a_user_yaml_preset_on_the_config_dir_flag_composes(tmp_path):
    (tmp_path / "mine" / PRESET_GROUP).mkdir(parents=True)
    (tmp_path / "mine" / PRESET_GROUP / "mine.yaml").write_text(USER_PRESET)
    done = _action3d(["train", "--config-dir", str(tmp_path / "mine"), "model=mine", "--cfg", "job"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "name: mine" in done.stdout
