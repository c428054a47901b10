"""A key the user sets that cannot take effect is refused in one line naming it, before anything runs.

Each case is a real command line through `action3d.cli.main` (in-process: the refusal comes before
Hydra or torch), and each refused key is paired with a command line where the same key applies.
"""
from __future__ import annotations

import pytest

from action3d.cli import main
from action3d.config.applicability import RULES

CKPT = "ckpt={tmp}/model.pt"
VIDEO = "video={tmp}/clip.mp4"

# (command line, the key named, words of the reason)
REFUSED = [
    ("train optim=adamw optim.momentum=0.5", "optim.momentum", "SGD setting"),
    ("train optim=adamw optim.nesterov=true", "optim.nesterov", "SGD setting"),
    ("train optim.betas=[0.8,0.9]", "optim.betas", "AdamW setting"),
    ("train sched.milestones=[5]", "sched.milestones", "multistep setting"),
    ("train sched=multistep sched.min_lr=0.001", "sched.min_lr", "cosine setting"),
    ("train data.train_crop=multiscale data.crop_area_range=[0.5,1]", "data.crop_area_range", "multiscale"),
    ("train data.split=2", "data.split", "UCF101/HMDB51"),
    ("train data=ucf101 data.root={tmp} data.annotation_dir={tmp} data.classes_file={tmp}/c.txt",
     "data.classes_file", "official split files"),
    ("train data=kinetics data.root={tmp} data.synthetic.size=32", "data.synthetic.size", "synthetic set"),
    ("train data.num_workers=0 data.prefetch_factor=4", "data.prefetch_factor", "main process"),
    ("train model.fusion_kernel=3", "model.fusion_kernel", "SlowFast setting"),
    ("train model.non_local_mode=dot_product", "model.non_local_mode", "no non-local block"),
    ("train model.pretrained2d=false", "model.pretrained2d", "no model.pretrained"),
    ("train model.shortcut_type=A model.advanced=true", "model.advanced", "shortcut_type=A"),
    ("train model.inflate_style=3x3x3", "model.inflate_style", "basic blocks"),
    ("train model.in_channels=1 data.mean=[0] data.std=[1]", "model.in_channels", "3 RGB channels"),
    ("train trainer.sync_bn=true", "trainer.sync_bn", "one process"),
    (f"eval {CKPT} data.batch_size=2", "data.batch_size", "eval.batch_size"),
    (f"eval {CKPT} split=val data.train_list={{tmp}}/t.txt", "data.train_list", "reads data.val_list"),
    (f"eval {CKPT} split=train data.val_list={{tmp}}/v.txt", "data.val_list", "reads data.train_list"),
    (f"eval {CKPT} model.depth=50", "model.depth", "rebuilds the model"),
    (f"predict {CKPT} {VIDEO} data.root={{tmp}}", "data.root", "predict reads the videos"),
    (f"predict {CKPT} {VIDEO} eval.batch_size=2", "eval.batch_size", "one video at a time"),
    ("info data.clip_len=4", "data.clip_len", "info summarises the model"),
    ("info model.num_classes=3 default_num_classes=7", "default_num_classes", "model.num_classes=3"),
    ("data synth out={tmp}/s short_side=100", "short_side", "data synth does not read it"),
    ("data prepare out={tmp}/p crf=20 data.clip_len=4", "data.clip_len", "clip sampling does not apply"),
    ("data check data.batch_size=4", "data.batch_size", "do not load batches"),
    ("train data.shard_shuffle=16", "data.shard_shuffle", "shards"),
]


@pytest.mark.parametrize("line, key, words", REFUSED)
def test_a_key_that_cannot_apply_is_refused_in_one_line(line, key, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(line.format(tmp=tmp_path).split() + ["hydra.run.dir=run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f" {key}" in err and words in err, err
    assert not (tmp_path / "run").exists()


# The same keys where they do apply: the check lets them through (composition only, nothing runs).
APPLIES = [
    "train optim.momentum=0.5", "train optim=adamw optim.betas=[0.8,0.9]",
    "train sched=multistep sched.milestones=[5]", "train sched.min_lr=0.001",
    "train data.crop_area_range=[0.5,1]", "train data.num_workers=2 data.prefetch_factor=4",
    "train model=slowfast_r50 model.fusion_kernel=3",
    "train model=i3d_nl_r50 model.non_local_mode=dot_product", "train model=i3d_r50 model.inflate_style=3x3x3",
    "train model.shortcut_type=B model.advanced=true", "info model.in_channels=1 input=[1,8,32,32]",
    "info default_num_classes=7", "data synth data.synthetic.size=32",
    "train data=shards data.root=/tmp data.shard_shuffle=16",
]


@pytest.mark.parametrize("line", APPLIES)
def test_the_same_keys_pass_where_they_apply(line):
    from action3d.commands._hydra import compose_config, override_key
    from action3d.config.applicability import check_user_keys

    command, *overrides = line.split()
    if command == "data":
        overrides = ["action=" + overrides[0], "out=somewhere", *overrides[1:]]
    check_user_keys(command, compose_config(command, overrides), [override_key(o) for o in overrides])


def test_every_rule_has_a_refusal_case():
    named = {key for _, key, _ in REFUSED}
    for _, prefixes, _ in RULES:
        assert any(any(k == p or k.startswith(p + ".") for k in named) for p in prefixes), prefixes
