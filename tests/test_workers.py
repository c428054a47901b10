"""`data.num_workers=auto`: the preset's number of loader workers, capped by the CPUs per process.

The real-dataset presets (folder, ucf101, hmdb51: 4; kinetics: 8) default to auto, so a 2-core
machine no longer gets PyTorch's "worker processes" warning at every start; an explicit number
is still obeyed (and still warned about by PyTorch when it is too many).
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from torch.utils.data import SequentialSampler

from action3d.commands._hydra import CONF_DIR, compose_config, typed_config
from action3d.config import runtime as rules
from action3d.config.checks import ConfigError
from action3d.engine import data as engine_data
from action3d.errors import Action3dError

WORKER_WARNING = "worker processes in total"  # PyTorch's "This DataLoader will create N worker processes ..."


@pytest.fixture
def two_cpus(monkeypatch):
    """This process may run on 2 CPUs (its affinity mask), whatever the machine has."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    engine_data._logged_worker_choices.clear()


def loader(data_cfg):
    dataset = list(range(4))
    return engine_data.make_loader(dataset, data_cfg, sampler=SequentialSampler(dataset), batch_size=2,
                                   drop_last=False, persistent=False)


def test_auto_takes_the_preset_number_capped_by_the_cpus_per_process(two_cpus, monkeypatch):
    assert rules.cpus_per_process() == 2
    assert rules.resolve_num_workers("auto", preset=8, cpus_per_process=2) == 2
    assert rules.resolve_num_workers("auto", preset=1, cpus_per_process=2) == 1
    assert rules.resolve_num_workers("auto", preset=0, cpus_per_process=2) == 0
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")       # torchrun: 2 processes share the 2 CPUs
    assert rules.cpus_per_process() == 1
    assert rules.resolve_num_workers("auto", preset=8, cpus_per_process=rules.cpus_per_process()) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")       # more processes than CPUs: still one each
    assert rules.cpus_per_process() == 1


def test_an_explicit_number_is_obeyed(two_cpus):
    assert rules.resolve_num_workers(6, preset=8, cpus_per_process=2) == 6
    assert rules.resolve_num_workers("3", preset=8, cpus_per_process=2) == 3   # quoted in a YAML file
    cfg = compose_config("train", ["data=kinetics", "data.num_workers=0"])
    assert loader(cfg.data).num_workers == 0


def test_real_dataset_presets_default_to_auto_and_synthetic_to_2():
    presets = {"folder": 4, "ucf101": 4, "hmdb51": 4, "kinetics": 8}
    for name, number in presets.items():
        data = OmegaConf.load(Path(CONF_DIR) / "data" / f"{name}.yaml")
        assert (data.num_workers, data.preset_workers) == ("auto", number), name
    assert OmegaConf.load(Path(CONF_DIR) / "data" / "synthetic.yaml").num_workers == 2


def test_the_log_names_the_number_it_chose_once(two_cpus, caplog):
    cfg = compose_config("train", ["data=kinetics"])
    with caplog.at_level(logging.INFO, logger="action3d"):
        assert loader(cfg.data).num_workers == 2
        assert loader(cfg.data).num_workers == 2      # the validation loader: no second line
    lines = [r.getMessage() for r in caplog.records if "data.num_workers=auto" in r.getMessage()]
    assert lines == ["data.num_workers=auto: using 2 loader workers (preset 8, 2 CPUs per process)"]


def test_kinetics_preset_on_this_machine_starts_no_worker_warning():
    """With this machine's real CPU count: auto stays within it, so PyTorch does not warn; the
    preset's old explicit 8 does warn here (when this machine has fewer than 8 CPUs)."""
    cpus = rules.cpus_per_process()
    cfg = typed_config("train", ["data=kinetics"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = loader(cfg.data)
    assert built.num_workers == min(8, cpus)
    assert not [w for w in caught if WORKER_WARNING in str(w.message)]
    if cpus < 8:
        with pytest.warns(UserWarning, match=WORKER_WARNING):
            loader(typed_config("train", ["data=kinetics", "data.num_workers=8"]).data)


@pytest.mark.parametrize("value, words", [(-1, "must be >= 0 (or auto)"), ("many", "expected auto or a whole number"),
                                          (2.5, "expected auto or a whole number"),
                                          (True, "expected auto or a whole number")])
def test_bad_values_are_one_line_naming_the_key(value, words):
    with pytest.raises(ConfigError) as error:
        rules.check_num_workers(value)
    assert str(error.value) == f"data.num_workers={value} is not allowed: {words}" + (
        "" if value == -1 else " >= 0")


def test_the_command_line_refuses_bad_values_before_anything_runs():
    with pytest.raises(Action3dError) as error:
        compose_config("train", ["data=kinetics", "data.num_workers=-1"])
    assert str(error.value) == "data.num_workers=-1 is not allowed: must be >= 0 (or auto)"
    with pytest.raises(Action3dError, match="data.preset_workers=-1 is not allowed"):
        compose_config("train", ["data=kinetics", "data.preset_workers=-1"])
