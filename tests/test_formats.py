"""Dataset formats as objects (action3d.data.formats): one class per data.format, one registry.

The string dispatch stays gone (a scan of the source), and each class does what the old branches
did: its preflight messages, its splits, what the index cache hashes and watches, its config
checks, and the resolution of the synthetic set.
"""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

import action3d
import action3d.data
from action3d.config import ConfigError, DataConfig, SyntheticConfig, TrainConfig
from action3d.data.annotation_io import SHARDS_FORMAT
from action3d.data.formats import FORMAT_NAMES, FORMATS, format_class, format_of, key_owners
from action3d.data.formats.base import DatasetFormat
from action3d.data.index import resolve_index
from action3d.errors import Action3dError

PACKAGE = Path(action3d.__file__).parent
REGISTRY = PACKAGE / "data" / "formats" / "__init__.py"

# --------------------------------------------------------------------------- no string dispatch

_NAMES = "|".join(FORMAT_NAMES)
_FORMAT_WORD = r"\b(?:\w*format|fmt)\b"
DISPATCH = [
    re.compile(r"\.format\s*(?:==|!=|\bnot\s+in\b|\bin\b)"),                   # data.format == / in (...)
    re.compile(r"(?:==|!=)\s*[\w.]*\.format\b"),                               # "x" == data.format
    re.compile(rf"[\"'](?:{_NAMES})[\"']\s*(?:==|!=)"),                         # "shards" != fmt
    re.compile(rf"{_FORMAT_WORD}\s*(?:==|!=|\bnot\s+in\b|\bin\s*[(\[{{])"      # fmt == ... / fmt in (...)
               rf"[^#\n]*[\"'](?:{_NAMES})[\"']"),
    re.compile(rf"{_FORMAT_WORD}[\"']?\s*:\s*[(\[{{][^#\n]*[\"'](?:{_NAMES})[\"']"),  # "data.format": ("list", ...)
    re.compile(r"\bmatch\s+[\w.]*(?:format|fmt)\b"),                            # match data.format:
    re.compile(r"\[[\w.]*\.format\]"),                                           # {...}[data.format]
    re.compile(rf"[\"'](?:{_NAMES})[\"']\s*,\s*[\"'](?:{_NAMES})[\"']"),   # LISTING = ("kinetics", "folder")
]


def dispatch_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each line of `text` that compares a format with a name."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.lstrip().startswith("#") and any(p.search(line) for p in DISPATCH):
            found.append((number, line.strip()))
    return found


@pytest.mark.parametrize("line", [
    'if data.format == "synthetic":', 'if data_cfg.format != "shards":', 'if fmt in ("kinetics", "folder"):',
    'lambda c: None if c.data.format not in ("ucf101", "hmdb51")', 'if "shards" == cfg.data.format:',
    'read = ucf101_samples if fmt == "ucf101" else hmdb51_samples', 'if format == "list":',
    '"data.format": ("synthetic", "list", "kinetics"),', "match data.format:", "reader = READERS[data.format]",
    'if data.format in FOLDER_FORMATS:', '_FOLDER_FORMATS = ("kinetics", "folder")',
])
def test_the_scan_finds_string_dispatch(line):
    assert dispatch_lines(line), line


@pytest.mark.parametrize("line", [
    'writer = export_onnx if format == "onnx" else export_torchscript',   # the export format, not data's
    "by_count = container.format.name in DECODE_ORDER_TIMESTAMP_FORMATS",
    'if not isinstance(index, dict) or index.get("format") != SHARDS_FORMAT:',
    'raise Action3dError(f"data.{key} is not set (data.format={self.name}): {hint}")',
    "if format_of(cfg.data).streams:", '    # data.format == "shards" in a comment',
])
def test_the_scan_leaves_other_code_alone(line):
    assert not dispatch_lines(line), line


def test_no_code_outside_the_registry_compares_data_format_with_a_name():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path == REGISTRY:
            continue
        offenders += [f"action3d/{relative}:{n}: {line}" for n, line in dispatch_lines(path.read_text())]
    assert not offenders, ("ask the format (action3d.data.formats: format_of(data).ATTRIBUTE) instead of comparing "
                           "data.format with a name:\n" + "\n".join(offenders))



# --------------------------------------------------------------------------- the registry


def test_the_registry_names_every_class_once_and_every_preset_format():
    assert FORMAT_NAMES == ("synthetic", "list", "kinetics", "ucf101", "hmdb51", "folder", "rawframes", "shards")
    assert all(issubclass(f, DatasetFormat) and "name" in vars(f) and "summary" in vars(f) for f in FORMATS)
    presets = {yaml.safe_load(p.read_text())["format"] for p in (PACKAGE.parent / "conf" / "data").glob("*.yaml")}
    assert presets <= set(FORMAT_NAMES)
    cfg = DataConfig(format="kinetics", root="/videos")
    bound = format_of(cfg)
    assert type(bound) is format_class("kinetics") and bound.data is cfg
    with pytest.raises(ConfigError, match=r"^data.format=imagenet is not allowed: expected one of synthetic, list, "
                                          r"kinetics, ucf101, hmdb51, folder, rawframes, shards$"):
        format_of(DataConfig(format="imagenet"))


def test_keys_and_refusals_name_data_keys_that_only_some_formats_read():
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    every_key = {key for f in FORMATS for key in f.keys}
    for fmt in FORMATS:
        assert set(fmt.keys) <= fields and set(fmt.refuses) <= fields, fmt.name
        assert not set(fmt.refuses) & set(fmt.keys), fmt.name
        assert set(fmt.refuses) <= every_key, f"{fmt.name} refuses a key every format reads"
        assert all(why and "\n" not in why for why in fmt.refuses.values()) and "\n" not in fmt.summary
    assert key_owners("data.split") == key_owners("split") == ("ucf101", "hmdb51")
    assert key_owners("synthetic.num_classes") == ("synthetic",)
    assert key_owners("data.shard_shuffle") == ("shards",)
    assert key_owners("train_list") == ("synthetic", "list", "kinetics", "folder", "rawframes")
    assert key_owners("fps") == key_owners("data.filename_tmpl") == key_owners("start_index") == ("rawframes",)
    assert key_owners("root") == key_owners("clip_len") == ()
    assert format_class("ucf101").refuses["classes_file"] == "data.format=ucf101 takes its classes from the " \
                                                             "official split files"
    assert set(format_class("shards").refuses) == {"train_list", "val_list", "classes_file", "annotation_dir"}


def test_only_shards_stream_and_only_the_synthetic_set_is_generated():
    assert [f.name for f in FORMATS if f.streams] == ["shards"]
    assert [f.name for f in FORMATS if f.generated] == ["synthetic"]
    assert format_of(DataConfig()).declared_classes() == (8, "data.synthetic.num_classes")
    assert all(format_of(DataConfig(format=n)).declared_classes() is None for n in FORMAT_NAMES[1:])


def test_the_registry_and_the_classes_import_no_torch():
    code = ("import sys; from action3d.config import DataConfig; from action3d.data.formats import FORMAT_NAMES, "
            "format_of\nfor name in FORMAT_NAMES: format_of(DataConfig(format=name)).check()\n"
            "format_of(DataConfig()).preflight(required=('train',))\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'av', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_package_exports_every_name_it_lists():
    for name in action3d.data.__all__:
        assert getattr(action3d.data, name) is not None, name
    assert action3d.data.pack_dataset.__module__ == "action3d.data.shard_pack"
    assert action3d.data.format_of is format_of and action3d.data.FORMAT_NAMES == FORMAT_NAMES


# --------------------------------------------------------------------------- config checks


def test_shards_refuse_lists_and_balanced_draws_on_any_data_section():
    for section in (DataConfig(format="shards", classes_file="c.txt"),
                    OmegaConf.structured(DataConfig(format="shards", classes_file="c.txt"))):
        with pytest.raises(ConfigError, match=r"^data.classes_file=c.txt is not allowed: data.format=shards reads the "
                                              r"splits and classes of the packed dataset \(data.root/index.json\); "
                                              r"leave it unset$"):
            format_of(section).check()
    with pytest.raises(ConfigError, match=r"^data.sampler=balanced is not allowed: data.format=shards"):
        format_of(DataConfig(format="shards", sampler="balanced")).check()
    format_of(DataConfig(format="list", sampler="balanced", classes_file="c.txt")).check()   # fine elsewhere


def test_the_synthetic_generator_ranges_are_the_fields_own():
    """The generator's ranges are SyntheticConfig's field rules (checked with every other key),
    not the format's: its check() has nothing more to say."""
    from action3d.config import check_values

    with pytest.raises(ConfigError, match=r"^data.synthetic.size=17 is not allowed: an even number >= 16"):
        check_values(TrainConfig(data=DataConfig(synthetic=SyntheticConfig(size=17))), "train")
    format_of(DataConfig(synthetic=SyntheticConfig(size=17))).check()


# --------------------------------------------------------------------------- preflight


def preflight(cfg: DataConfig, *required: str, optional=()) -> None:
    format_of(cfg).preflight(required=required, optional=optional)


def test_preflight_names_the_missing_key_or_path_per_format(tmp_path):
    folder, missing = str(tmp_path), str(tmp_path / "nope")
    cases = [
        (DataConfig(format="list"), r"^data.train_list is not set \(data.format=list\): give the train annotation "
                                    r"file as data.train_list=PATH$"),
        (DataConfig(format="list", root=missing, train_list="t.txt"), rf"^data.root={missing}: no such folder "
                                                                      r"\(data.format=list\)$"),
        (DataConfig(format="kinetics", train_list="t.csv"), r"^data.root is not set \(data.format=kinetics\): give "
                                                            r"the dataset's folder as data.root=PATH$"),
        (DataConfig(format="folder", root=folder), rf"^data.train_list: no folder {folder}/train of class folders "
                                                   r"\(data.format=folder\)$"),
        (DataConfig(format="ucf101", root=folder), r"^data.annotation_dir is not set \(data.format=ucf101\)"),
        (DataConfig(format="hmdb51", root=folder, annotation_dir=missing),
         rf"^data.annotation_dir={missing}: no such folder \(data.format=hmdb51\)$"),
        (DataConfig(format="shards", root=folder), rf"^data.root={folder}: no index.json \(data.format=shards\); "
                                                   rf"pack a dataset there first: action3d data pack data=\.\.\. "
                                                   rf"out={folder}$"),
        (DataConfig(format="list", train_list=missing), rf"^data.train_list={missing}: no such file$"),
        (DataConfig(format="kinetics", root=folder, classes_file=folder, train_list="t.csv"),
         rf"^data.classes_file={folder}: is a folder, not a file$"),
        (DataConfig(val_list=missing), rf"^data.val_list={missing}: no such file$"),       # synthetic: what is set
    ]
    for cfg, message in cases:
        with pytest.raises(Action3dError, match=message):
            preflight(cfg, "train", optional=("val",))


def test_preflight_passes_what_loading_will_find(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "t.txt").write_text("a.mp4 0\n")
    preflight(DataConfig(), "train", optional=("val",))                          # generated on first use
    preflight(DataConfig(format="list", train_list=str(tmp_path / "t.txt")), "train", optional=("val",))
    preflight(DataConfig(format="folder", root=str(tmp_path)), "train", optional=("val",))  # val: optional
    preflight(DataConfig(format="ucf101", root=str(tmp_path), annotation_dir=str(tmp_path)), "train", "val")


# --------------------------------------------------------------------------- splits and the index cache


def write_shard_index(root: Path, splits=("train",)) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.json").write_text(json.dumps({"format": SHARDS_FORMAT, "classes": ["a"],
                                                 "splits": {s: {"samples": 0, "shards": []} for s in splits}}))


def test_has_split_reads_no_annotation(tmp_path):
    write_shard_index(tmp_path / "packed")
    shards = DataConfig(format="shards", root=str(tmp_path / "packed"))
    assert format_of(shards).has_split("train") and not format_of(shards).has_split("val")
    assert not format_of(DataConfig(format="shards")).has_split("train")
    assert not format_of(DataConfig(format="shards", root=str(tmp_path))).has_split("train")   # no index.json
    for name in ("ucf101", "hmdb51", "synthetic"):
        assert format_of(DataConfig(format=name)).has_split("val")               # both splits always


def test_every_format_refuses_an_unknown_split_and_shards_have_no_lists(tmp_path, monkeypatch):
    for name in FORMAT_NAMES:
        with pytest.raises(Action3dError, match=r"^split=test is not allowed: expected one of train, val$"):
            format_of(DataConfig(format=name)).load_split("test")
    monkeypatch.setenv("ACTION3D_CACHE", str(tmp_path / "cache"))
    write_shard_index(tmp_path / "packed")
    packed = DataConfig(format="shards", root=str(tmp_path / "packed"))
    with pytest.raises(Action3dError, match="packed shards have no annotation lists to resolve"):
        resolve_index(packed, "train")
    assert not (tmp_path / "cache").exists()                                      # nothing cached


def test_what_the_index_cache_hashes_and_watches(tmp_path):
    for rel in ("lists/train.txt", "lists/classes.txt", "notes/classInd.txt", "notes/trainlist01.txt",
                "videos/train/walk/a.mp4", "videos/val/walk/b.mp4", "names.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "notes" / "sub").mkdir()
    train, videos = str(tmp_path / "lists/train.txt"), tmp_path / "videos"
    listed = format_of(DataConfig(format="list", train_list=train, val_list=str(tmp_path / "missing.txt")))
    assert listed.annotation_files() == [tmp_path / "lists/train.txt", tmp_path / "lists/classes.txt"]
    assert listed.listed_folders() == []                                         # told its paths, lists nothing
    kinetics = format_of(DataConfig(format="kinetics", root=str(videos), train_list=train))
    assert kinetics.listed_folders() == [videos] and tmp_path / "lists/train.txt" in kinetics.annotation_files()
    folder = format_of(DataConfig(format="folder", root=str(videos), classes_file=str(tmp_path / "names.txt")))
    assert folder.annotation_files() == [tmp_path / "names.txt"]
    assert folder.listed_folders() == [videos / "train", videos / "val"]
    ucf = format_of(DataConfig(format="ucf101", root=str(videos), annotation_dir=str(tmp_path / "notes")))
    assert ucf.annotation_files() == [tmp_path / "notes/classInd.txt", tmp_path / "notes/trainlist01.txt"]
    assert format_of(DataConfig(format="shards", root=str(videos))).annotation_files() == []
    assert format_of(DataConfig()).annotation_files() == []                      # not generated yet


# --------------------------------------------------------------------------- resolution


def test_resolve_generates_the_synthetic_set_and_leaves_other_sections_alone(tmp_path):
    listed = DataConfig(format="list", train_list="t.txt")
    assert format_of(listed).resolve() is listed
    small = SyntheticConfig(num_classes=2, train_per_class=1, val_per_class=1, num_frames=4, size=16)
    cfg = DataConfig(root=str(tmp_path / "synthetic"), synthetic=small)
    with pytest.raises(Action3dError, match="not generated yet"):
        format_of(cfg).load_split("train")
    resolved = format_of(cfg).resolve(progress=False)
    assert resolved.train_list == str(tmp_path / "synthetic" / "train.txt") and cfg.train_list is None
    samples, classes = format_of(resolved).load_split("val")
    assert classes == ["move_right", "move_left"] and [label for _, label in samples] == [0, 1]
