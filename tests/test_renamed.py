"""Keys that were renamed or removed: one line saying what they became, and checkpoint configs of
older versions upgraded to today's schema (`action3d.commands._checkpoint.upgrade_config`)."""
from __future__ import annotations

import dataclasses

import pytest

from action3d.commands._checkpoint import upgrade_config
from action3d.commands._hydra import compose_config
from action3d.config import TrainConfig, renamed
from action3d.errors import Action3dError


@pytest.fixture
def history(monkeypatch):
    monkeypatch.setattr(renamed, "RENAMED", {"trainer.epochs": "trainer.max_epochs"})
    monkeypatch.setattr(renamed, "REMOVED", {"data.legacy_resize": "the test resize is data.short_side"})


@pytest.mark.parametrize("override, line", [
    ("trainer.epochs=3", "trainer.epochs: renamed to trainer.max_epochs; use trainer.max_epochs=..."),
    ("+trainer.epochs=3", "trainer.epochs: renamed to trainer.max_epochs; use trainer.max_epochs=..."),
    ("data.legacy_resize=128", "data.legacy_resize: removed: the test resize is data.short_side"),
])
def test_an_old_key_on_the_command_line_says_what_it_became(history, override, line):
    with pytest.raises(Action3dError) as err:
        compose_config("train", [override])
    assert str(err.value) == line


def test_an_unknown_key_that_never_existed_still_gets_the_nearest_name(history):
    with pytest.raises(Action3dError, match=r"^trainer.max_epoch: unknown key; did you mean trainer.max_epochs\?"):
        compose_config("train", ["trainer.max_epoch=3"])


def test_a_checkpoint_config_is_upgraded_to_todays_schema(history):
    stored = dataclasses.asdict(TrainConfig())
    stored["trainer"]["epochs"] = stored["trainer"].pop("max_epochs") + 5     # written under the old name
    stored["data"]["legacy_resize"] = 128                                     # a key since removed
    del stored["data"]["autorotate"], stored["data"]["preset_workers"]        # keys added since
    upgraded = upgrade_config(stored)
    assert isinstance(upgraded, TrainConfig)
    assert upgraded.trainer.max_epochs == TrainConfig().trainer.max_epochs + 5
    assert upgraded.data.autorotate is True and upgraded.data.preset_workers == 2
    assert not hasattr(upgraded.data, "legacy_resize")


def test_a_checkpoint_config_this_version_cannot_read_is_one_line_naming_the_file():
    stored = dataclasses.asdict(TrainConfig())
    stored["model"]["depth_multiplier"] = 2
    with pytest.raises(Action3dError) as err:
        upgrade_config(stored, path="ckpt=old.pt")
    assert str(err.value).startswith("ckpt=old.pt: its config key model.depth_multiplier=2 does not fit")
    stored = dataclasses.asdict(TrainConfig())
    stored["model"]["depth"] = 19
    with pytest.raises(Action3dError, match=r"^ckpt=old.pt: its config breaks a rule .*model.depth=19"):
        upgrade_config(stored, path="ckpt=old.pt")
