"""Config mistakes exit non-zero with one line naming the key, before any model is built."""
import subprocess
import sys

import pytest

from action3d.cli import main, prevalidate
from action3d.errors import Action3dError

BAD_COMMAND_LINES = [
    (["train", "model.depth=19"], "model.depth", "18, 34, 50, 101, 152"),
    (["train", "model.spatial_strides=[1,2]"], "model.spatial_strides", "4 values"),
    (["train", "model.temporal_strides=[1,1,1,1,1]"], "model.temporal_strides", "4 values"),
    (["train", "model=r3d_18", "model.inflate=[1,[1,0,1],1,1]"], "model.inflate", "stage 2 has 2 blocks"),
    (["train", "model=i3d_r50", "model.inflate=[1,[1,0,1],1,1]"], "model.inflate", "stage 2 has 4 blocks"),
    (["train", "model.inflate_style=3x2x1"], "model.inflate_style", "3x1x1, 3x3x3"),
    (["train", "model.style=tensorflow"], "model.style", "pytorch, caffe"),
    (["train", "model.dept=18"], "model.dept", "unknown key"),
    (["train", "model.depth=eighteen"], "model.depth", "eighteen"),
    (["train", "model.num_stages=5"], "model.num_stages", "[1, 4]"),
    (["train", "model.frozen_stages=7"], "model.frozen_stages", "-1"),
    (["train", "model.out_indices=[4]"], "model.out_indices", "0..3"),
    (["train", "model.conv1_kernel=[3,7]"], "model.conv1_kernel", "needs 3 values"),
    (["train", "model.conv1_stride=[1,2,2]"], "model.conv1_stride", "(temporal, spatial)"),
    (["train", "model.dropout=1.5"], "model.dropout", "[0, 1)"),
    (["train", "model=nonexistent"], "model=nonexistent", "available"),
    (["train", "trainer.precision=8"], "trainer.precision", "32, bf16, 16"),
    (["train", "trainer.max_epochs=0"], "trainer.max_epochs", ">= 1"),
    (["train", "optim.lr=-1"], "optim.lr", "> 0"),
    (["train", "optim.name=rmsprop"], "optim.name", "sgd, adamw"),
    (["train", "sched.name=poly"], "sched.name", "cosine"),
    (["train", "data.clip_len=0"], "data.clip_len", ">= 1"),
    (["train", "data.crop_size=128"], "data.short_side", "data.crop_size=128"),
    (["train", "data.mean=[1,2]"], "data.mean", "3 values"),
    (["train", "data.format=youtube"], "data.format", "kinetics"),
    (["train", "data.batch_size=abc"], "data.batch_size", "abc"),
    (["train", "unknown_section.x=1"], "unknown_section", ""),
    (["train", "-m", "model.depth=18,19"], "model.depth", "18, 34, 50, 101, 152"),
    (["eval", "eval.num_crops=2"], "eval.num_crops", "1, 3, 10"),
    (["eval", "eval.average=max"], "eval.average", "prob, score"),
    (["info", "input=[3,8,64]"], "input", "[C,T,H,W]"),
    (["data", "shuffle"], "action", "synth, check, prepare"),
]


@pytest.mark.parametrize("argv,key,allowed", BAD_COMMAND_LINES, ids=[" ".join(a) for a, _, _ in BAD_COMMAND_LINES])
def test_bad_command_line_is_one_line_naming_the_key(argv, key, allowed, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert key in err and allowed in err, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "nothing may be written for an invalid command line"


def test_valid_overrides_and_sweeps_pass_validation():
    prevalidate("train", ["model=r3d_18", "model.depth=34", "optim.lr=0.1,0.01", "data.clip_len=16"])
    prevalidate("train", ["model=i3d_r50", "model.inflate=[1,[1,0,1,0],1,1]"])
    prevalidate("train", ["model=slowfast_r50"])
    prevalidate("info", ["model=r3d_18", "input=[3,16,112,112]"])


def test_model_preset_sampling_wins_over_dataset_but_not_over_command_line():
    from hydra import compose, initialize_config_dir

    from action3d.cli import CONF_DIR
    from action3d.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", ["model=slowfast_r50"])
        assert (cfg.data.clip_len, cfg.data.frame_interval) == (32, 2)
        cfg = compose("train", ["model=slowfast_r50", "data.clip_len=16"])
        assert cfg.data.clip_len == 16


def test_validate_rejects_bad_inflate_length_directly():
    from omegaconf import OmegaConf

    from action3d.config import TrainConfig, validate

    cfg = OmegaConf.structured(TrainConfig)
    cfg.model.depth = 50
    cfg.model.inflate = [1, [1, 1], 1, 1]
    with pytest.raises(Action3dError, match=r"model\.inflate.*stage 2 has 4 blocks"):
        validate(cfg, "train")


def test_console_script_reports_depth_error_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "action3d", "train", "model.depth=19"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == ["action3d train: error: model.depth=19 is not allowed: expected one of "
                     "10, 18, 34, 50, 101, 152, 200"]
    assert not (tmp_path / "outputs").exists()


def test_top_level_help_lists_each_command_on_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "predict", "data", "info"):
        assert any(line.strip().startswith(command + " ") for line in out.splitlines()), command
