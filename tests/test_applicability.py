"""A key the user sets that cannot take effect is refused in one line naming it, before anything runs.

Each case is a real command line through `action3d.cli.main` (in-process: the refusal comes before
Hydra or torch), and each refused key is paired with a command line where the same key applies.
"""
from __future__ import annotations

import dataclasses

import pytest

from action3d.cli import main
from action3d.commands._hydra import compose_config
from action3d.config import SCHEMAS
from action3d.config.option import COMMANDS, rule_of, walk
from action3d.errors import Action3dError

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
    ("train data.split=2", "data.split", "data.format=ucf101|hmdb51"),
    ("train data=ucf101 data.root={tmp} data.annotation_dir={tmp} data.classes_file={tmp}/c.txt",
     "data.classes_file", "official split files"),
    ("train data=kinetics data.root={tmp} data.synthetic.size=32", "data.synthetic.size", "data.format=synthetic"),
    ("train data.num_workers=0 data.prefetch_factor=4", "data.prefetch_factor", "main process"),
    ("train model.fusion_kernel=3", "model.fusion_kernel", "SlowFast setting"),
    ("train model.non_local_mode=dot_product", "model.non_local_mode", "no non-local block"),
    ("train model.pretrained2d=false", "model.pretrained2d", "no model.pretrained"),
    ("train model.shortcut_type=A model.advanced=true", "model.advanced", "shortcut_type=A"),
    ("train model.inflate_style=3x3x3", "model.inflate_style", "basic blocks"),
    ("train model.in_channels=1", "model.in_channels", "3 RGB channels"),
    ("train trainer.sync_bn=true", "trainer.sync_bn", "one process"),
    (f"eval {CKPT} data.batch_size=2", "data.batch_size", "eval.batch_size"),
    (f"eval {CKPT} split=val data.train_list={{tmp}}/t.txt", "data.train_list", "reads data.val_list"),
    (f"eval {CKPT} split=train data.val_list={{tmp}}/v.txt", "data.val_list", "reads data.train_list"),
    (f"eval {CKPT} model.depth=50", "model.depth", "rebuilds the model"),
    (f"predict {CKPT} {VIDEO} data.root={{tmp}}", "data.root", "predict reads the videos"),
    (f"predict {CKPT} {VIDEO} eval.batch_size=2", "eval.batch_size", "one at a time"),
    ("info data.clip_len=4", "data.clip_len", "info summarises the model"),
    ("info model.num_classes=3 default_num_classes=7", "default_num_classes", "model.num_classes=3"),
    ("data synth out={tmp}/s short_side=100", "short_side", "data synth does not read it"),
    ("data prepare out={tmp}/p crf=20 data.clip_len=4", "data.clip_len", "clip sampling"),
    ("data check data.batch_size=4", "data.batch_size", "data check does not read it"),
    ("train data.shard_shuffle=16", "data.shard_shuffle", "shards"),
    ("train data.num_workers=0 data.persistent_workers=false", "data.persistent_workers", "main process"),
    ("train model.channel_ratio=4", "model.channel_ratio", "SlowFast setting"),
    ("train model.speed_ratio=4", "model.speed_ratio", "SlowFast setting"),
    ("train model.resample_rate=4", "model.resample_rate", "SlowFast setting"),
    ("train model.fast_conv1_kernel=[3,7,7]", "model.fast_conv1_kernel", "SlowFast setting"),
    ("train model.fast_inflate=[1,1,1,1]", "model.fast_inflate", "SlowFast setting"),
    ("train model.non_local_sub_sample=true", "model.non_local_sub_sample", "no non-local block"),
    ("train model.non_local_use_scale=true", "model.non_local_use_scale", "no non-local block"),
    ("train model.style=caffe", "model.style", "basic blocks"),
    ("train optim.nesterov=true optim=adamw", "optim.nesterov", "SGD setting"),
    ("train data.mix_prob=0.5", "data.mix_prob", "data.cutmix_alpha are 0"),
    ("train data.cutmix_alpha=1.0 data.mix_switch_prob=0.3", "data.mix_switch_prob", "only data.cutmix_alpha is on"),
    ("train trainer.early_stop_min_delta=0.01", "trainer.early_stop_min_delta", "early stopping is off"),
    ("train sched.gamma=0.5", "sched.gamma", "multistep setting"),
    ("train sched=multistep sched.milestones=[5,30]", "sched.milestones", "not before the end of training"),
    (f"eval {CKPT} eval.protocol=hara data.frame_interval=1 eval.num_clips=3", "eval.num_clips",
     "scores every window"),
    (f"predict {CKPT} {VIDEO} eval.dump=p.npz", "eval.dump", "writes no per-video score file"),
    (f"eval {CKPT} zoo.name=mine", "zoo.name", "set by zoo=SOURCE/NAME"),
    ("train zoo.model=tiny", "zoo.model", "set by zoo=SOURCE/NAME"),
    (f"eval {CKPT} zoo.classes=kinetics400", "zoo.classes", "set by zoo=SOURCE/NAME"),
    ("train zoo.num_classes=400", "zoo.num_classes", "set by zoo=SOURCE/NAME"),
    ("train zoo.architecture={{}}", "zoo.architecture", "set by zoo=SOURCE/NAME"),
    ("train zoo=tv/r3d_18 zoo.refused=no", "zoo.refused", "is not available"),   # its value rule: always
    # model families (issue 20)
    ("train model.with_pool1=false model.pool1_kernel=[3,3,3]", "model.pool1_kernel", "no stem max-pool"),
    ("train model.shortcut_type=A model.shortcut_norm=widening", "model.shortcut_norm", "shortcut_type=A"),
    ("train model.lateral_norm=true", "model.lateral_norm", "SlowFast setting"),
    ("train model.slow_sampling=linspace", "model.slow_sampling", "SlowFast setting"),
    ("train model=ptv/x3d_xs model.conv_type=2plus1d", "model.conv_type", "model.arch=x3d"),
    ("train model.temporal_first=true", "model.temporal_first", "(2+1)D"),
    ("train model.mid_channels_rule=out", "model.mid_channels_rule", "(2+1)D"),
    ("train model.conv1_mid_channels=45", "model.conv1_mid_channels", "(2+1)D"),
    ("train model.bottleneck_mode=ir", "model.bottleneck_mode", "basic blocks"),
    ("train model=ptv/x3d_xs model.bottleneck_mode=ir", "model.bottleneck_mode", "model.arch=x3d"),
    ("train model=ptv/x3d_xs model.style=caffe", "model.style", "model.arch=x3d"),
    ("train model.bottleneck_ratio=2", "model.bottleneck_ratio", "X3D setting"),
    ("train model.se_ratio=0.1", "model.se_ratio", "X3D setting"),
    ("train model.head_channels=512", "model.head_channels", "X3D setting"),
    # augmentation in the loader (issue 21, data side)
    ("train data.train_scale_range=[256,288]", "data.train_scale_range", "short_side_jitter"),
    ("train data.rand_augment_m=7", "data.rand_augment_m", "data.rand_augment_n=0"),
    ("train data.rand_augment_mstd=1", "data.rand_augment_mstd", "data.rand_augment_n=0"),
    ("train data.augmix_width=2", "data.augmix_width", "data.augmix_severity=0"),
    ("train data.augmix_depth=2", "data.augmix_depth", "data.augmix_severity=0"),
    ("train data.augmix_alpha=0.5", "data.augmix_alpha", "data.augmix_severity=0"),
    ("train data.erase_area_range=[0.1,0.2]", "data.erase_area_range", "data.erase_prob=0"),
    # frame folders (issue 21): their keys apply to data.format=rawframes only
    ("train data.fps=30", "data.fps", "data.format=rawframes"),
    ("train data=kinetics data.root={tmp} data.start_index=0", "data.start_index", "data.format=rawframes"),
    ("data extract out={tmp}/f data.fps=25", "data.fps", "data extract does not read it"),
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
    "eval ckpt=x.pt eval.num_clips=3 eval.dump=scores.npz zoo=tv/r3d_18",
    "train model=hara/resnet50 model.pool1_kernel=[3,3,1]", "train model=ptv/x3d_m model.shortcut_norm=always",
    "train model=ptv/slowfast_r50 model.lateral_norm=false model.slow_sampling=stride",
    "train model=r2plus1d_18 model.temporal_first=true model.mid_channels_rule=conv model.conv1_mid_channels=32",
    "train model.conv_type=2plus1d", "train model=ptv/csn_r101 model.bottleneck_mode=ip",
    "train model=ptv/x3d_s model.bottleneck_ratio=2 model.se_ratio=0 model.head_channels=512",
    "train data.mixup_alpha=0.2 data.mix_prob=0.5",
    "train data.mixup_alpha=0.2 data.cutmix_alpha=1 data.mix_switch_prob=0.3",
    "train trainer.early_stop_patience=2 trainer.early_stop_min_delta=0.01",
    "train data.train_crop=short_side_jitter data.train_scale_range=[64,80]",
    "train data.rand_augment_n=2 data.rand_augment_m=7 data.rand_augment_mstd=1",
    "train data.augmix_severity=3 data.augmix_width=2 data.augmix_depth=2 data.augmix_alpha=0.5",
    "train data.erase_prob=0.25 data.erase_area_range=[0.1,0.2]",
    "train data.format=rawframes data.train_list=t.txt data.fps=30 data.target_fps=15 data.start_index=0",
    "data extract data.synthetic.size=32 short_side=16 quality=90 workers=1 split=val",
]


@pytest.mark.parametrize("line", APPLIES)
def test_the_same_keys_pass_where_they_apply(line):
    command, *overrides = line.split()
    if command == "data":
        overrides = ["action=" + overrides[0], "out=somewhere", *overrides[1:]]
    compose_config(command, overrides)   # composes and checks, the refusal of keys that cannot apply included


def test_every_condition_has_a_refusal_case():
    """Each key whose field declares when it cannot apply (`applies=`) is refused above."""
    named = {key for _, key, _ in REFUSED}
    conditional = {key for schema in SCHEMAS.values() for key, field, _ in walk(schema) if rule_of(field).applies}
    assert not conditional - named, sorted(conditional - named)


# What each command needs before any other key can be checked.
REQUIRED = {"eval": ["ckpt=x.pt"], "predict": ["ckpt=x.pt", "video=v.mp4"], "export": ["ckpt=x.pt", "format=onnx",
            "out=m.onnx"], "embed": ["ckpt=x.pt", "video=v.mp4", "out=e"], "explain": ["ckpt=x.pt", "video=v.mp4",
            "out=o.mp4"]}


def command_keys(command: str):
    """(key, its default) for every leaf key of `command`'s schema that its `commands=` (or its
    section's) leaves out: a key the command has but does not read."""
    schema = SCHEMAS[command.split()[0]]
    sections = {f.name: rule_of(f) for f in dataclasses.fields(schema)}
    for key, field, parents in walk(schema):
        owners = [rule_of(field).commands, *(sections[p].commands for p in parents[:1] if p in sections)]
        if any(c is not None and command not in c for c in owners) and field.default is not dataclasses.MISSING:
            yield key, field.default


UNREAD = [(command, key, default) for command in COMMANDS for key, default in command_keys(command)
          if default is not None and not isinstance(default, str) or isinstance(default, str) and default]


@pytest.mark.parametrize("command, key, value", UNREAD, ids=[f"{c} {k}" for c, k, _ in UNREAD])
def test_a_key_a_command_does_not_read_is_refused_in_one_line(command, key, value):
    """Generated: every key of a command's schema whose field says it does not apply to that
    command (`commands=`) is refused, naming the key, even when set to its default."""
    name, _, action = command.partition(" ")
    extra = [f"action={action}", "out=somewhere"] if action else REQUIRED.get(name, [])
    text = str(value).lower() if isinstance(value, bool) else value
    if isinstance(text, str) and set("{}[]") & set(text):
        text = f"'{text}'"   # Hydra's grammar: a string with braces is quoted (data.filename_tmpl)
    with pytest.raises(Action3dError) as err:
        compose_config(name, [*extra, f"{key}={text}"])
    assert str(err.value).startswith(f"{key} does not apply here: ") and "\n" not in str(err.value)
