"""The command layer: Hydra's overrides reach the library (eval/predict honour data.*, eval.*, trainer.*)."""
from __future__ import annotations

import json

import pytest

from action3d.commands._checkpoint import run_data as merge_data_overrides
from action3d.config import DataConfig

from conftest import SMALL, run_cli


def test_data_overrides_go_on_top_of_the_checkpoints_data_config():
    trained = DataConfig(clip_len=8, crop_size=64, short_side=72, root="/trained")
    given = DataConfig(clip_len=4, crop_size=32, short_side=40, root="/other")
    merged = merge_data_overrides(trained, given, ["data.crop_size=32", "data.short_side=40", "eval.num_clips=2"])
    assert (merged.clip_len, merged.crop_size, merged.short_side, merged.root) == (8, 32, 40, "/trained")
    assert merge_data_overrides(trained, given, ["data=ucf101"]) is given         # another dataset, whole


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, cache_dir):
    root = tmp_path_factory.mktemp("edge")
    run_cli(["train", *SMALL, "trainer.max_epochs=1", "hydra.run.dir=run"], cwd=root, cache=cache_dir, check=True)
    video = next((cache_dir).rglob("val/*/*.mp4"))
    return root, root / "run/last.pt", video


def predicted(root, ckpt, video, cache, *overrides) -> list:
    out = root / f"p{abs(hash(overrides))}.json"
    run_cli(["predict", f"ckpt={ckpt}", f"video={video}", f"json={out}", *overrides], cwd=root, cache=cache,
            check=True)
    return [item["prob"] for item in json.loads(out.read_text())[0]["top"]]


@pytest.mark.slow
def test_predict_honours_eval_trainer_and_data_overrides(checkpoint, cache_dir):
    root, ckpt, video = checkpoint
    base = predicted(root, ckpt, video, cache_dir, "eval.num_clips=2")
    assert predicted(root, ckpt, video, cache_dir, "eval.num_clips=2") == base                # deterministic
    assert predicted(root, ckpt, video, cache_dir, "eval.num_clips=2", "eval.average=score") != base
    assert predicted(root, ckpt, video, cache_dir, "eval.num_clips=2", "trainer.precision=bf16") != base
    assert predicted(root, ckpt, video, cache_dir, "eval.num_clips=2", "data.crop_size=24",
                     "data.short_side=24") != base


def test_a_library_exception_is_one_line_and_its_traceback_goes_to_the_run_directory(tmp_path, monkeypatch, capsys):
    """Whatever a library raises (here torch's own RuntimeError) reaches the user as one line
    naming it, exit status 1; the traceback is kept in RUN_DIR/error.log."""
    from action3d import cli

    def broken(cfg):
        raise RuntimeError("Given groups=1, weight of size [8, 3, 3, 7, 7], expected input to have 3 channels\nmore")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_load", lambda target: broken)
    with pytest.raises(SystemExit) as stop:
        cli.main(["info", "hydra.run.dir=run"])
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("action3d info: error: RuntimeError: Given groups=1"), err
    assert f"(traceback: {tmp_path / 'run' / 'error.log'})" in err[0]
    assert "Traceback (most recent call last)" in (tmp_path / "run/error.log").read_text()
