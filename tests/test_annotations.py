"""Every annotation format parses; malformed lines name the file and line number."""
import logging
from pathlib import Path

import pytest

from action3d.config import DataConfig
from action3d.data.annotations import (
    has_split,
    load_split,
    read_classes_file,
    read_list_file,
    write_list_file,
)
from action3d.errors import Action3dError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# --------------------------------------------------------------------------- list files

def test_list_file_with_comments_and_blank_lines(tmp_path):
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("# path label\n\nclips/a.mp4 0\n  clips/b.mp4\t2  \n# trailing comment\n")
    samples = read_list_file(listing, root=tmp_path / "videos")
    assert samples == [(str(tmp_path / "videos/clips/a.mp4"), 0), (str(tmp_path / "videos/clips/b.mp4"), 2)]
    # without a root, paths are relative to the list's folder
    assert read_list_file(listing)[0][0] == str(tmp_path / "lists/clips/a.mp4")


@pytest.mark.parametrize("line, message", [
    ("my video.mp4 3", "expected 'relative/path label'"),
    ("a.mp4", "expected 'relative/path label'"),
    ("a.mp4 cat", "label 'cat' is not an integer"),
    ("a.mp4 -1", "out of range"),
])
def test_list_file_malformed_line_names_file_and_line(tmp_path, line, message):
    listing = tmp_path / "bad.txt"
    listing.write_text(f"# header\nok.mp4 0\n{line}\n")
    with pytest.raises(Action3dError, match=message) as err:
        read_list_file(listing)
    assert f"{listing}:3:" in str(err.value) and "\n" not in str(err.value)


def test_list_label_beyond_the_class_list(tmp_path):
    listing = tmp_path / "l.txt"
    listing.write_text("a.mp4 5\n")
    with pytest.raises(Action3dError, match=r"l.txt:1: label 5 is out of range \(allowed: 0..2\)"):
        read_list_file(listing, num_classes=3)


def test_write_list_file_round_trip_and_refuses_spaces(tmp_path):
    samples = [(str(tmp_path / "v/a.mp4"), 1), ("/elsewhere/b.mp4", 0)]
    write_list_file(tmp_path / "out.txt", samples, tmp_path)
    assert (tmp_path / "out.txt").read_text() == "v/a.mp4 1\n/elsewhere/b.mp4 0\n"
    assert read_list_file(tmp_path / "out.txt", root=tmp_path) == samples
    with pytest.raises(Action3dError, match="whitespace"):
        write_list_file(tmp_path / "x.txt", [(str(tmp_path / "my clip.mp4"), 0)], tmp_path)


def test_classes_file_plain_and_indexed(tmp_path):
    (tmp_path / "plain.txt").write_text("walk\nrun\n")
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n")
    assert read_classes_file(tmp_path / "plain.txt") == ["walk", "run"]
    assert read_classes_file(tmp_path / "classInd.txt") == ["ApplyEyeMakeup", "ApplyLipstick"]


def test_load_split_list_format_classes(tmp_path):
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 2\n")
    (tmp_path / "val.txt").write_text("c.mp4 1\n")
    cfg = DataConfig(format="list", root=str(tmp_path), train_list=str(tmp_path / "train.txt"),
                     val_list=str(tmp_path / "val.txt"))
    samples, classes = load_split(cfg, "val")
    assert samples == [(str(tmp_path / "c.mp4"), 1)] and classes == ["0", "1", "2"]
    (tmp_path / "classes.txt").write_text("x\ny\nz\n")  # found beside the training list
    assert load_split(cfg, "train")[1] == ["x", "y", "z"]
    with pytest.raises(Action3dError, match="data.val_list is not set"):
        load_split(DataConfig(format="list", train_list=str(tmp_path / "train.txt")), "val")
    with pytest.raises(Action3dError, match="split=test"):
        load_split(cfg, "test")


# --------------------------------------------------------------------------- Kinetics

KINETICS_CSV = """label,youtube_id,time_start,time_end,split,is_cc
air drumming,--nQbRBEz2s,104,114,train,0
abseiling,-3B32lodo2M,59,69,train,0
abseiling,missingvid01,0,10,train,0
"""


def test_kinetics_csv(tmp_path, caplog):
    (tmp_path / "train.csv").write_text(KINETICS_CSV)
    videos = tmp_path / "videos"
    touch(videos / "train" / "air_drumming" / "--nQbRBEz2s_000104_000114.mp4")
    touch(videos / "-3B32lodo2M_000059_000069.mkv")  # flat layout, another extension
    cfg = DataConfig(format="kinetics", root=str(videos), train_list=str(tmp_path / "train.csv"))
    with caplog.at_level(logging.WARNING, logger="action3d.data"):
        samples, classes = load_split(cfg, "train")
    assert classes == ["abseiling", "air drumming"]  # sorted label names
    assert samples == [(str(videos / "train/air_drumming/--nQbRBEz2s_000104_000114.mp4"), 1),
                       (str(videos / "-3B32lodo2M_000059_000069.mkv"), 0)]
    assert "1 of 3 videos not found" in caplog.text and "missingvid01_000000_000010" in caplog.text


def test_kinetics_malformed_rows(tmp_path):
    bad_time = tmp_path / "bad.csv"
    bad_time.write_text("label,youtube_id,time_start,time_end,split\nabseiling,abc,ten,20,train\n")
    cfg = DataConfig(format="kinetics", root=str(tmp_path), train_list=str(bad_time))
    with pytest.raises(Action3dError, match=r"bad.csv:2: time_start/time_end must be numbers"):
        load_split(cfg, "train")
    no_header = tmp_path / "nohead.csv"
    no_header.write_text("abseiling,abc,10,20,train\n")
    with pytest.raises(Action3dError, match=r"nohead.csv:1: header lacks column"):
        load_split(DataConfig(format="kinetics", root=str(tmp_path), train_list=str(no_header)), "train")


# --------------------------------------------------------------------------- UCF101 / HMDB51

def test_ucf101_official_split(tmp_path):
    notes = tmp_path / "ucfTrainTestlist"
    notes.mkdir()
    (notes / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n")
    (notes / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nHandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n")
    (notes / "testlist01.txt").write_text("HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n")
    cfg = DataConfig(format="ucf101", root=str(tmp_path / "UCF-101"), annotation_dir=str(notes), split=1)
    train, classes = load_split(cfg, "train")
    val, _ = load_split(cfg, "val")
    assert classes == ["ApplyEyeMakeup", "HandstandPushups"]
    assert [label for _, label in train] == [0, 1]
    assert val == [(str(tmp_path / "UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi"), 1)]
    (notes / "trainlist02.txt").write_text("ApplyEyeMakeup/v_x.avi 2\n")
    with pytest.raises(Action3dError, match=r"trainlist02.txt:1: label 2 does not match class folder"):
        load_split(DataConfig(format="ucf101", root=str(tmp_path), annotation_dir=str(notes), split=2), "train")
    with pytest.raises(Action3dError, match="data.annotation_dir is not set"):
        load_split(DataConfig(format="ucf101", root=str(tmp_path)), "train")


def test_hmdb51_official_split(tmp_path):
    notes = tmp_path / "splits"
    notes.mkdir()
    (notes / "sit_test_split1.txt").write_text("s1.avi 1 \ns2.avi 2 \ns3.avi 0 \n")
    (notes / "brush_hair_test_split1.txt").write_text("b1.avi 2 \nb2.avi 1 \n")
    (notes / "brush_hair_test_split2.txt").write_text("b1.avi 1 \nb2.avi 7 \n")
    cfg = DataConfig(format="hmdb51", root=str(tmp_path / "hmdb"), annotation_dir=str(notes), split=1)
    train, classes = load_split(cfg, "train")
    val, _ = load_split(cfg, "val")
    assert classes == ["brush_hair", "sit"]
    assert train == [(str(tmp_path / "hmdb/brush_hair/b2.avi"), 0), (str(tmp_path / "hmdb/sit/s1.avi"), 1)]
    assert sorted(Path(p).name for p, _ in val) == ["b1.avi", "s2.avi"]
    with pytest.raises(Action3dError, match=r"brush_hair_test_split2.txt:2: expected 'video.avi 0\|1\|2'"):
        load_split(DataConfig(format="hmdb51", root=str(tmp_path), annotation_dir=str(notes), split=2), "train")


# --------------------------------------------------------------------------- class folders

def test_class_folders(tmp_path):
    for rel in ("train/walk/1.mp4", "train/run/2.avi", "train/run/notes.txt", "val/walk/3.mp4"):
        touch(tmp_path / rel)
    cfg = DataConfig(format="folder", root=str(tmp_path))
    train, classes = load_split(cfg, "train")
    assert classes == ["run", "walk"]
    assert train == [(str(tmp_path / "train/run/2.avi"), 0), (str(tmp_path / "train/walk/1.mp4"), 1)]
    val, val_classes = load_split(cfg, "val")
    assert val == [(str(tmp_path / "val/walk/3.mp4"), 1)] and val_classes == classes
    touch(tmp_path / "val/jump/4.mp4")
    with pytest.raises(Action3dError, match="jump not among the training classes"):
        load_split(cfg, "val")


def test_has_split(tmp_path):
    assert has_split(DataConfig(), "val")  # synthetic
    assert not has_split(DataConfig(format="list", train_list="t.txt"), "val")
    assert has_split(DataConfig(format="list", train_list="t.txt"), "train")
    (tmp_path / "train").mkdir()
    assert has_split(DataConfig(format="folder", root=str(tmp_path)), "train")
    assert not has_split(DataConfig(format="folder", root=str(tmp_path)), "val")


def test_missing_root_is_named(tmp_path):
    with pytest.raises(Action3dError, match=r"^data.root is not set \(data.format=kinetics\)"):
        load_split(DataConfig(format="kinetics", train_list="x.csv"), "train")
    with pytest.raises(Action3dError, match="annotation file not found"):
        load_split(DataConfig(format="list", train_list=str(tmp_path / "nope.txt"), classes_file=None), "train")
