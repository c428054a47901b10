"""Checkpoints: atomic writes, safe loads, one-line errors."""
import errno
import os
import random

import numpy as np
import pytest
import torch

from action3d.engine import checkpoint as ckpt
from action3d.errors import Action3dError


class Payload:  # a custom class: pickling it puts code references into the file
    def __reduce__(self):
        return (os.getcwd, ())


def test_round_trip_with_rng_state(tmp_path):
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    state = {"model": {"w": torch.randn(3)}, "epoch": 2, "rng": ckpt.rng_state(), "config": {"a": [1, 2]}}
    expected = (torch.rand(2), np.random.rand(2), random.random())
    ckpt.save_checkpoint(state, tmp_path / "last.pt")
    loaded = ckpt.load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["config"] == {"a": [1, 2]}
    ckpt.set_rng_state(loaded["rng"])
    again = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "no temporary file is left behind"


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint({"epoch": 1}, path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(Action3dError, match=r"could not write checkpoint .*last\.pt: No space left on device"):
        ckpt.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("kind", ["missing", "empty", "random", "text", "truncated", "pickled_code", "not_dict"])
def test_bad_checkpoints_give_one_line_errors(tmp_path, kind):
    path = tmp_path / "bad.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "truncated":
        torch.save({"model": {"w": torch.randn(1000)}}, path)
        path.write_bytes(path.read_bytes()[:1500])
    elif kind == "pickled_code":
        torch.save({"model": Payload()}, path)
    elif kind == "not_dict":
        torch.save([1, 2, 3], path)
    with pytest.raises(Action3dError) as info:
        ckpt.load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if kind == "pickled_code":
        assert "code" in message
