"""Generated from the schemas: every key with choices, a range or a list length, in every command,
is tried with a value beyond each bound, a value of the wrong type and (lists) a list of the wrong
length. Each must be refused in one line that names the key, by the command line's own
composition and check (`compose_config`: in-process, before anything is built or written).

Keys whose rule is a custom check get hand-written bad values (`CUSTOM`); keys with no rule to
break are listed in `EXEMPT`, each with its reason, and the test fails for a key in neither.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator, List, Tuple

import pytest

from action3d.commands._hydra import compose_config
from action3d.config import SCHEMAS
from action3d.config.option import Rule, rule_of, walk
from action3d.errors import Action3dError

# What each command needs before any other key can be checked.
REQUIRED = {"eval": ["ckpt=x.pt"], "predict": ["ckpt=x.pt", "video=v.mp4"], "data": ["action=check"],
            "export": ["ckpt=x.pt", "format=onnx", "out=m.onnx"], "embed": ["ckpt=x.pt", "video=v.mp4", "out=e"],
            "explain": ["ckpt=x.pt", "video=v.mp4", "out=o.mp4"]}

# Keys whose rule is a custom check (per-stage lists, flags, another key they must agree with).
CUSTOM = {
    "model.stage_blocks": ["[2,2]", "[0,2,2,2]", "two"],
    "model.out_indices": ["[4]", "[-1]", "last"],
    "model.spatial_strides": ["[1,2]", "[0,2,2,2]", "two"],
    "model.temporal_strides": ["[1,1,1,1,1]", "[1,0,1,1]", "one"],
    "model.dilations": ["[1,1]", "[1,1,1,0]", "one"],
    "model.frozen_stages": ["-2", "5", "all"],
    "model.inflate": ["[1,[1,0,1],1,1]", "[2,1,1,1]", "[1,1]"],
    "model.non_local": ["[0,[1,0,1],0,0]", "[0,2,0,0]", "[0,0]"],
    "model.fast_inflate": ["[1,[1,0,1],1,1]", "[1,1]"],
    "data.num_workers": ["-1", "many", "1.5"],
    "part": ["3/2", "one", "0/4"],
    "merge": [],          # a boolean; its rule: not together with part= (below)
    "trainer.class_weights": [],   # choices below; its custom rule: not with data.sampler=balanced (below)
    "eval.dump": ["scores.txt"],
    "eval.protocol": [],  # choices below; its custom rule: the views its code defines (COMBINATIONS)
    "data.test_resize": [],  # length and entries below; its custom rule: >= data.crop_size (COMBINATIONS)
    "zoo.model": ["no_such_preset"],
    "zoo.architecture": ["{dropout:0.1}"],
    "zoo.refused": ["because"],
    "trainer.monitor": [],         # choices; its custom rule: map only with, top1 only without, multi-label (below)
    "trainer.loggers": ["[mlflow,mlflow]", "[tensorboard,tensorboard]"],
    "data.augmix_depth": ["0"],            # its range below; 0 ops per chain is its custom rule
    "data.color_jitter": ["[0,0,0,0.6]"],  # hue <= 0.5
    "data.train_scale_range": ["[320,256]"],
    "data.augmix_severity": [],            # its range below; its custom rule: not with RandAugment (below)
    "data.filename_tmpl": ["frame.jpg", "'{}_{:05}.jpg'", "'{name}_{:05}.jpg'", "'sub/{:05}.jpg'"],
}
# Combinations a key's custom rule refuses: (command, overrides, the key named).
COMBINATIONS = [
    ("data", ["action=prepare", "out=o", "part=1/2", "merge=true"], "merge"),
    ("train", ["data.sampler=balanced", "trainer.class_weights=auto"], "trainer.class_weights"),
    ("train", ["data.crop_size=128"], "data.short_side"),
    ("train", ["data.crop_area_range=[0.9,0.5]"], "data.crop_area_range"),
    ("train", ["model=slowfast_r50", "model.speed_ratio=3"], "model.speed_ratio"),
    ("train", ["model=slowfast_r50", "model.channel_ratio=3"], "model.channel_ratio"),
    ("train", ["model=slowfast_r50", "model.fusion_kernel=4"], "model.fusion_kernel"),
    ("predict", ["ckpt=x.pt", "video=v.mp4", "stride=2"], "stride"),
    ("predict", ["ckpt=x.pt", "video=v.mp4", "timeline=t.png"], "timeline"),
    ("data", ["action=synth"], "out"),
    ("train", ["data.synthetic.size=33"], "data.synthetic.size"),
    ("train", ["data.test_resize=[32,200]"], "data.test_resize"),
    ("eval", ["ckpt=x.pt", "eval.protocol=torchvision", "eval.num_crops=3"], "eval.protocol"),
    ("eval", ["ckpt=x.pt", "eval.protocol=ptv", "data.target_fps=30"], "eval.protocol"),
    ("eval", ["ckpt=x.pt", "eval.protocol=hara_2018", "data.frame_interval=2"], "eval.protocol"),
    ("train", ["trainer.monitor=map"], "trainer.monitor"),
    ("train", ["data.multi_label=true", "trainer.monitor=top1"], "trainer.monitor"),
    ("train", ["data.rand_augment_n=2", "data.augmix_severity=3"], "data.augmix_severity"),
    ("train", ["data.erase_prob=0.5", "data.erase_area_range=[0.3,0.1]"], "data.erase_area_range"),
    ("train", ["data.train_crop=short_side_jitter", "data.train_scale_range=[32,320]"], "data.train_scale_range"),
    ("train", ["data.format=rawframes", "data.train_list=t.txt", "data.target_fps=15"], "data.target_fps"),
]

EXEMPT = {
    "model.name": "a label shown in logs and reports",
    "model.pretrained": "a path: its preflight rule refuses a missing file (test_reliability_cli.py)",
    "data.name": "a label shown in the log and stored with the run",
    "data.root": "a folder: the dataset format's preflight refuses a missing one (test_formats.py)",
    "data.train_list": "a file or sub-folder: the format's preflight refuses a missing one (test_formats.py)",
    "data.val_list": "a file or sub-folder: the format's preflight refuses a missing one (test_formats.py)",
    "data.classes_file": "a file: the format's preflight refuses a missing one (test_formats.py)",
    "data.annotation_dir": "a folder: the format's preflight refuses a missing one (test_formats.py)",
    "trainer.resume": "auto or a file: its preflight rule refuses a missing file (test_reliability_cli.py)",
    "ckpt": "a file: its preflight rule refuses a missing one (test_reliability_cli.py)",
    "video": "a file or folder: its preflight rule refuses a missing one (test_reliability_cli.py)",
    "json": "an output file",
    "out": "an output path (required by some data actions: COMBINATIONS)",
    "timeline": "an output file (needs window=: COMBINATIONS)",
    "class_name": "a class name: explain refuses one the checkpoint does not have (test_explain.py)",
    "zoo.name": "a label the zoo file sets (never given by hand: test_applicability.py)",
}


def is_boolean(field: dataclasses.Field) -> bool:
    return field.type in ("bool", bool)


def leaf_keys() -> Iterator[Tuple[str, str, dataclasses.Field]]:
    """(command, key, field) for every leaf key of every command's schema."""
    for command, schema in SCHEMAS.items():
        for key, field, _ in walk(schema):
            yield command, key, field


def text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(text(v) for v in value) + "]"
    return str(value)


def beyond(rule: Rule, default: Any) -> List[str]:
    """Values that break `rule`: outside the choices, each bound, the list length, the entries' rule;
    and one of the wrong type."""
    values: List[str] = []
    if rule.choices:
        numbers = [c for c in rule.choices if isinstance(c, int) and not isinstance(c, bool)]
        gap = next((n for n in range(min(numbers), max(numbers)) if n not in numbers), None) if numbers else None
        values.append(str(gap if gap is not None else max(numbers) + 1) if numbers else "not_a_choice")
    if rule.low is not None:
        values.append(text(rule.low if rule.low_open else rule.low - (1 if rule.integer else 0.5)))
    if rule.high is not None:
        values.append(text(rule.high if rule.high_open else rule.high + (1 if rule.integer else 0.5)))
    sample = list(default) if isinstance(default, (list, tuple)) and default else None
    if rule.length is not None and sample:
        values.append(text(sample + sample[:1]))          # one entry too many
        values.append(text(sample[:-1]))                  # one too few
    if rule.items is not None and rule.items.bounded:
        for bad in beyond(dataclasses.replace(rule.items, items=None), None)[:-1]:
            values.append(text([bad] * (rule.length or 1)) if rule.length else f"[{bad}]")
    if rule.increasing and sample and len(sample) > 1:
        values.append(text(sorted(sample, reverse=True)))
    values.append("[1,2]" if rule.choices and all(isinstance(c, str) for c in rule.choices) else "abc")
    return values


def default_of(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


CASES = []
for _command, _key, _field in leaf_keys():
    _rule = rule_of(_field)
    if _key in CUSTOM:
        _values = CUSTOM[_key] + (beyond(_rule, default_of(_field)) if _rule.bounded else [])
    elif _rule.bounded:
        _values = beyond(_rule, default_of(_field))
    elif is_boolean(_field):
        _values = ["maybe"]
    else:
        continue
    CASES += [(_command, _key, value) for value in _values]


@pytest.mark.parametrize("command, key, value", CASES, ids=[f"{c} {k}={v}" for c, k, v in CASES])
def test_a_value_beyond_the_rules_is_refused_in_one_line_naming_the_key(command, key, value):
    with pytest.raises(Action3dError) as err:
        compose_config(command, [*REQUIRED.get(command, []), f"{key}={value}"])
    message = str(err.value)
    assert "\n" not in message and key in message, message


@pytest.mark.parametrize("command, overrides, key", COMBINATIONS, ids=[" ".join(o) for _, o, _ in COMBINATIONS])
def test_a_combination_a_rule_refuses_is_one_line_naming_the_key(command, overrides, key):
    with pytest.raises(Action3dError) as err:
        compose_config(command, overrides)
    assert "\n" not in str(err.value) and str(err.value).startswith(key), str(err.value)


def test_every_key_is_generated_custom_or_exempt_with_a_reason():
    """Booleans get the wrong-type case only ("maybe"); every other key without a bound or a
    custom case is in EXEMPT with its reason."""
    unruled = sorted({key for _, key, field in leaf_keys()
                      if not rule_of(field).bounded and key not in CUSTOM and not is_boolean(field)})
    assert unruled == sorted(EXEMPT), "keys with no bound and no custom case must be listed in EXEMPT"
    assert all(reason for reason in EXEMPT.values())


def test_the_issue_cases_are_among_them():
    """The values a fuzz of the train command found running or crashing."""
    for value, key in (("data.crop_area_range=[0.4]", "data.crop_area_range"),
                       ("sched.milestones=[-3]", "sched.milestones"), ("sched.milestones=[30,10]", "sched.milestones"),
                       ("trainer.seed=-5", "trainer.seed"), ("data.synthetic.seed=-5", "data.synthetic.seed")):
        with pytest.raises(Action3dError, match=rf"^{key}=\S+ is not allowed: "):
            compose_config("train", ["sched=multistep", value])
