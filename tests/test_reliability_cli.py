"""Invalid command lines and untrusted checkpoints: one line on stderr, no traceback, nothing written.

These lines are different from the ones in test_config.py (32 there, 46 here). Each is given an
existing run directory (`hydra.run.dir`, and `hydra.sweep.dir` for `-m`) holding a previous run's
files; afterwards that directory, and the working directory around it, must be unchanged. Errors
that only show once the command runs (a missing dataset root or checkpoint) are caught before
Hydra creates or touches any run directory (`action3d.preflight`).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from action3d import cli

from conftest import SMALL, run_cli

# (command line, substrings the one error line must hold); {inputs} is a folder that exists,
# holding train.txt (an empty list file) and model.pt (a file, not read by these commands).
BAD_COMMAND_LINES = [
    # unknown keys, in every group and command
    ("train data.clip_length=8", ["data.clip_length", "unknown key", "did you mean data.clip_len"]),
    ("train optim.learning_rate=0.1", ["optim.learning_rate", "unknown key", "lr"]),
    ("train sched.warmup=2", ["sched.warmup", "did you mean sched.warmup_epochs"]),
    ("train trainer.epochs=5", ["trainer.epochs", "did you mean trainer.max_epochs"]),
    ("eval ckpt={inputs}/model.pt eval.crops=3", ["eval.crops", "did you mean eval.num_crops"]),
    ("info input_size=[3,8,64,64]", ["input_size", "unknown key"]),
    ("data synth data.synthetic.frames=8", ["data.synthetic.frames", "num_frames"]),
    ("train +model.foo=1", ["model.foo", "unknown key"]),
    ("train +data.synthetic.zz=3", ["data.synthetic.zz", "unknown key"]),
    # wrong types
    ("train trainer.max_epochs=1.5", ["trainer.max_epochs", "1.5"]),
    ("train optim.lr=fast", ["optim.lr", "fast"]),
    ("train data.flip=maybe", ["data.flip", "maybe"]),
    ("train model.spatial_strides=2", ["model.spatial_strides", "list"]),
    ("train trainer.seed=[1,2]", ["trainer.seed", "[1, 2]"]),
    # bad values
    ("train trainer.device=tpu", ["trainer.device=tpu", "auto, cpu, cuda"]),
    ("train data.out_of_bound=wrap", ["data.out_of_bound=wrap", "loop, repeat_last"]),
    ("train trainer.label_smoothing=1.0", ["trainer.label_smoothing", "[0, 1)"]),
    ("train data.num_workers=-1", ["data.num_workers=-1", ">= 0"]),
    ("train data.std=[1,0,1]", ["data.std", "> 0"]),
    ("train model.shortcut_type=C", ["model.shortcut_type=C", "A, B"]),
    ("train data.max_fail_ratio=0", ["data.max_fail_ratio", "(0, 1]"]),
    ("train trainer.accum_steps=0", ["trainer.accum_steps=0", ">= 1"]),
    ("train model.num_classes=0", ["model.num_classes=0", ">= 1"]),
    ("train model.num_classes=5", ["model.num_classes=5", "8 classes"]),
    ("train data.synthetic.size=15", ["data.synthetic.size=15", "must be >= 16"]),
    ("eval ckpt={inputs}/model.pt split=test", ["split=test", "train, val"]),
    ("train trainer.device=cuda", ["trainer.device=cuda", "no CUDA device"]) if not torch.cuda.is_available() else
    ("train trainer.device=gpu", ["trainer.device=gpu", "auto, cpu, cuda"]),
    # impossible stride / inflate lists
    ("train model.spatial_strides=[1,0,2,2]", ["model.spatial_strides", ">= 1"]),
    ("train model.num_stages=3 model.out_indices=[3]", ["model.out_indices", "0..2"]),
    ("train model.dilations=[1,1,1]", ["model.dilations", "4 values"]),
    ("train model.inflate=[1,1,1]", ["model.inflate", "4 values"]),
    ("train model.inflate=[1,2,1,1]", ["model.inflate", "0 or 1"]),
    ("train model=i3d_r50 model.non_local=[0,[1,1,1],0,0]", ["model.non_local", "stage 2 has 4 blocks"]),
    ("train model=slowfast_r50 model.speed_ratio=3", ["model.speed_ratio", "resample_rate=8"]),
    # missing dataset root or annotation files
    ("train data=folder", ["data.train_list is not set", "data.format=list"]),
    ("train data=folder data.root=/nonexistent/videos", ["data.root=/nonexistent/videos", "no such folder"]),
    ("train data=folder data.train_list={inputs}/missing.txt",
     ["data.train_list={inputs}/missing.txt", "no such file"]),
    ("train data=folder data.format=folder data.root={inputs}", ["data.train_list", "{inputs}/train"]),
    ("train data=kinetics data.root=/nonexistent/k400", ["data.root=/nonexistent/k400", "data.format=kinetics"]),
    ("train data=ucf101 data.root={inputs}", ["data.annotation_dir is not set", "ucf101"]),
    # missing checkpoint, video or weights
    ("eval", ["ckpt: required", "ckpt=..."]),
    ("eval ckpt=/nonexistent/best.pt", ["ckpt=/nonexistent/best.pt", "no such file"]),
    ("eval ckpt={inputs}", ["ckpt={inputs}", "is a folder"]),
    ("predict ckpt=/nonexistent/best.pt video={inputs}", ["ckpt=/nonexistent/best.pt", "no such file"]),
    ("predict ckpt={inputs}/model.pt video=/nonexistent/clip.mp4", ["video=/nonexistent/clip.mp4", "no such file"]),
    ("train model.pretrained=/nonexistent/r50.pth", ["model.pretrained=/nonexistent/r50.pth", "no such file"]),
    ("train trainer.resume=/nonexistent/last.pt", ["trainer.resume=/nonexistent/last.pt", "trainer.resume=auto"]),
    # bad sweep values: every job is checked before the first one starts
    ("train -m optim.lr=0.1,-1", ["optim.lr=-1.0", "> 0"]),
    ("train -m trainer.precision=32,fp8", ["trainer.precision=fp8", "32, bf16, 16"]),
    ("train -m model=tiny,nonexistent", ["model=nonexistent", "available: i3d_nl_r50"]),
    # bad group options and override syntax
    ("train data=imagenet", ["data=imagenet", "available: folder, hmdb51, kinetics, shards, synthetic, ucf101"]),
    ("train optim=adam", ["optim=adam", "available: adamw, sgd"]),
    ("train sched=linear", ["sched=linear", "constant, cosine, multistep"]),
    ("train trainer=tpu", ["trainer=tpu", "default, gpu"]),
    ("train model.inflate=[1,1", ["[1,1"]),
    ("train model.depth", ["model.depth"]),
]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """cwd with an existing run directory (a previous run's files) and an inputs folder."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/config.yaml").write_text("previous: run\n")
    (run / "train.log").write_text("previous log\n")
    (run / "marker").write_text("keep me\n")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "train.txt").write_text("")
    (inputs / "model.pt").write_bytes(b"not read")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("line,expected", BAD_COMMAND_LINES, ids=[line for line, _ in BAD_COMMAND_LINES])
def test_invalid_command_line_is_one_line_and_writes_nothing(line, expected, workspace, monkeypatch, capsys):
    def hydra_must_not_start(*args):
        raise AssertionError("an invalid command line reached Hydra (which creates the run directory)")

    monkeypatch.setattr(cli, "_run_hydra", hydra_must_not_start)
    inputs = str(workspace / "inputs")
    argv = line.format(inputs=inputs).split()
    before = snapshot(workspace)
    code = cli.main([*argv, f"hydra.run.dir={workspace / 'run'}", f"hydra.sweep.dir={workspace / 'run'}"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"action3d {argv[0]}: error: "), err
    for text in expected:
        assert text.format(inputs=inputs) in lines[0], lines[0]
    assert "Traceback" not in err and "provider=" not in err, "no Python or Hydra internals in the message"
    assert snapshot(workspace) == before


def test_at_least_50_invalid_command_lines_are_covered():
    from test_config import BAD_COMMAND_LINES as CONFIG_LINES

    ours = {line for line, _ in BAD_COMMAND_LINES}
    theirs = {" ".join(argv) for argv, _, _ in CONFIG_LINES}
    assert len(ours) == len(BAD_COMMAND_LINES) and not ours & theirs
    assert len(ours | theirs) >= 50


def run_all(commands, *, cwd: Path, cache: Path) -> list:
    """Run several `action3d` command lines, two at a time (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda args: run_cli(args, cwd=cwd, cache=cache, timeout=240), commands))


def test_real_console_errors_before_and_after_composition_write_nothing(workspace, cache_dir):
    """Through the real entry point (interpreter, imports, Hydra): stderr is exactly one line."""
    run = workspace / "run"
    commands = [
        ["train", "data=folder", "data.root=/nonexistent/videos", f"hydra.run.dir={run}"],
        ["train", "-m", "optim.lr=0.1,-1", f"hydra.sweep.dir={run}"],
    ]
    before = snapshot(workspace)
    for args, result in zip(commands, run_all(commands, cwd=workspace, cache=cache_dir)):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"action3d {args[0]}: error: "), (args, result.stderr)
    assert snapshot(workspace) == before


# ------------------------------------------------------------------ untrusted checkpoints, through the CLI

class CodeCarrier:
    """Unpickling this runs `open(path, "w")`: a loader that executes pickled code creates the file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.slow
def test_pickled_code_and_truncated_checkpoints_are_refused_in_one_line(tmp_path, cache_dir):
    executed = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "config": CodeCarrier(executed)}, evil)
    honest = tmp_path / "honest.pt"
    torch.save({"model": {f"w{i}": torch.randn(256) for i in range(8)}, "config": {}, "epoch": 1}, honest)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(honest.read_bytes()[:3000])

    cases = [
        (["eval", f"ckpt={evil}"], evil, "pickled code"),
        (["train", *SMALL, f"model.pretrained={evil}"], evil, "pickled code"),
        (["eval", f"ckpt={truncated}"], truncated, "not a PyTorch checkpoint (PytorchStreamReader failed"),
    ]
    results = run_all([args + ["hydra.run.dir=out"] for args, _, _ in cases], cwd=tmp_path, cache=cache_dir)
    for (args, path, reason), result in zip(cases, results):
        assert result.returncode == 1, (args, result.stderr[-2000:])
        errors = [line for line in result.stderr.splitlines() if ": error: " in line]
        assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), (args, result.stderr[-2000:])
        assert errors[0].startswith(f"action3d {args[0]}: error: ") and str(path) in errors[0], errors
        assert reason in errors[0] and "Traceback" not in result.stderr, errors
    assert not executed.exists(), "the pickled code ran"
