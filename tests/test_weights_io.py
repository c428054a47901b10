"""Checkpoint files: broken or unsafe files give one-line errors; OpenMMLab metadata is tolerated."""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from action3d.errors import Action3dError
from action3d.models import ResNet3d
from action3d.models.weights import load_pretrained
from action3d.models.weights_io import InertObject, read_checkpoint

REPO = Path(__file__).resolve().parents[1]


class CustomConfig:
    """A user class pickled into a checkpoint: loading it would run code from the file."""

    def __init__(self) -> None:
        self.lr = 0.1


def tiny_backbone() -> ResNet3d:
    return ResNet3d(18, base_channels=4, stage_blocks=(1, 1, 1, 1))


def backbone_state() -> dict:
    torch.manual_seed(0)
    return tiny_backbone().state_dict()


def assert_one_line_error(path: Path, *fragments: str) -> str:
    with pytest.raises(Action3dError) as info:
        load_pretrained(tiny_backbone(), path, log=lambda line: None)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "nope.pth", "no such file")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_one_line_error(path, "not a PyTorch checkpoint")


def test_text_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    assert_one_line_error(path, "not a PyTorch checkpoint")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    assert_one_line_error(path, "empty file (0 bytes)")


def test_truncated_checkpoint(tmp_path):
    full = tmp_path / "full.pth"
    torch.save({"model": backbone_state(), "config": {}}, full)
    path = tmp_path / "truncated.pth"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert_one_line_error(path, "not a PyTorch checkpoint")


def test_pickled_custom_class_is_refused_and_not_run(tmp_path):
    path = tmp_path / "custom.pth"
    torch.save({"state_dict": backbone_state(), "cfg": CustomConfig()}, path)
    message = assert_one_line_error(path, "contains pickled code", "CustomConfig", "not loaded")
    assert "extract_state_dict.py" in message


def test_checkpoint_that_is_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    assert_one_line_error(path, "Tensor")


def test_unrecognised_layout(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    assert_one_line_error(path, "unrecognised checkpoint layout", "encoder.weight")


def test_checkpoint_for_another_architecture_fits_nothing(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(ResNet3d(18, base_channels=8, stage_blocks=(1, 1, 1, 1)).state_dict(), path)
    model = tiny_backbone()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(Action3dError, match="no tensor .* fits the model"):
        load_pretrained(model, path, log=lambda line: None)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _fake_mmengine(monkeypatch) -> type:
    """A stand-in for mmengine's HistoryBuffer, importable only while the checkpoint is saved."""
    module = types.ModuleType("mmengine.logging.history_buffer")

    class HistoryBuffer:
        def __init__(self) -> None:
            self._log_history = np.arange(5.0)
            self._count_history = np.ones(5)

    HistoryBuffer.__module__, HistoryBuffer.__qualname__ = module.__name__, "HistoryBuffer"
    module.HistoryBuffer = HistoryBuffer
    for name in ("mmengine", "mmengine.logging"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return HistoryBuffer


def test_mmengine_metadata_is_read_without_running_it(tmp_path, monkeypatch):
    history_buffer = _fake_mmengine(monkeypatch)
    state = {"backbone." + k: v for k, v in backbone_state().items()}
    ckpt = {"state_dict": state, "meta": {"epoch": 3, "seed": np.int64(7)},
            "message_hub": {"log_scalars": {"train/loss": history_buffer()}}}
    path = tmp_path / "mmaction2.pth"
    torch.save(ckpt, path)
    monkeypatch.undo()               # mmengine is not installed when the file is read
    assert "mmengine.logging.history_buffer" not in sys.modules
    stand_in = read_checkpoint(path)["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(stand_in, InertObject)         # data kept, class never imported or run
    model = tiny_backbone()
    report = load_pretrained(model, path, log=lambda line: None)
    assert report.kind == "mmaction2"
    assert report.missing == [] and report.mismatched == [] and report.unused == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["backbone." + key])


@pytest.mark.slow   # starts a Python process
def test_extract_script_needs_trust_for_pickled_objects(tmp_path, capsys):
    # torchvision's reference training scripts pickle their argparse options beside the weights
    src = tmp_path / "tv_reference.pth"
    state = backbone_state()
    torch.save({"model": state, "args": argparse.Namespace(lr=0.1)}, src)
    assert_one_line_error(src, "argparse.Namespace")

    dst = tmp_path / "extracted.pt"
    script = REPO / "scripts" / "extract_state_dict.py"
    spec = importlib.util.spec_from_file_location("extract_state_dict", script)
    extract_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract_script)
    assert extract_script.main([str(src), str(dst)]) == 1 and not dst.exists()
    refused = capsys.readouterr().err
    assert "contains pickled code" in refused and len(refused.splitlines()) == 1

    env = dict(os.environ, PYTHONPATH=str(REPO))
    trusted = subprocess.run([sys.executable, str(script), str(src), str(dst), "--trust"],
                             capture_output=True, text=True, env=env)
    assert trusted.returncode == 0, trusted.stderr
    model = tiny_backbone()
    report = load_pretrained(model, dst, log=lambda line: None)
    assert report.kind == "action3d" and not report.missing
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
