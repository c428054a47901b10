"""The compact sample index and the resolved-annotation cache (issue 16: Kinetics-scale data)."""
from __future__ import annotations

import logging
import os
import pickle
import time

import pytest
import torch

import action3d.data.annotations as annotation_formats
from action3d.config import DataConfig
from action3d.data import index as index_module
from action3d.data.index import SampleIndex, as_sample_index, resolve_index
from action3d.engine import data as engine_data
from action3d.engine.distributed import DistEnv
from action3d.errors import Action3dError

PAIRS = [("/data/k700/train/abseiling/a_000001_000011.mp4", 0),
         ("/data/k700/train/air drumming/b_000002_000012.mp4", 1),
         ("/data/k700/train/zumba/ü-日本_000003_000013.webm", 699),
         ("/data/k700/train/zumba/bad\udcffname.mp4", -1)]   # an undecodable byte in a file name


def test_sample_index_reads_like_the_list_of_pairs():
    index = SampleIndex.from_pairs(PAIRS)
    assert len(index) == 4 and list(index) == PAIRS
    assert index[2] == PAIRS[2] and index[-1] == PAIRS[-1]
    assert index.labels.tolist() == [0, 1, 699, -1]
    assert index.prefix == "/data/k700/train/"                  # stored once, not per path
    with pytest.raises(IndexError):
        index[4]
    assert as_sample_index(index) is index and as_sample_index(PAIRS) == index
    assert pickle.loads(pickle.dumps(index)) == index


def test_sample_index_is_a_few_arrays_not_python_objects(tmp_path):
    pairs = [(f"/data/videos/class_{i % 700:03d}/{i:011d}_000000_000010.mp4", i % 700) for i in range(20_000)]
    index = SampleIndex.from_pairs(pairs)
    # paths after the prefix, 8-byte offsets and labels: no per-sample Python object, no UTF-32
    assert index.nbytes < 20_000 * (len(pairs[0][0]) - len(index.prefix) + 17)
    assert len(pickle.dumps(index)) < index.nbytes + 2000
    index.save(tmp_path / "i.npz", classes=["x"])
    loaded, meta = SampleIndex.load(tmp_path / "i.npz")
    assert loaded == index and meta["classes"] == ["x"]


# --------------------------------------------------------------------------- the cache


@pytest.fixture()
def kinetics(tmp_path, monkeypatch):
    """A Kinetics layout of empty files (enough to resolve; nothing is decoded) and a private cache."""
    monkeypatch.setenv("ACTION3D_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "videos"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for i in range(12):
        name = ("abseiling", "juggling", "zumba")[i % 3]
        (root / name).mkdir(parents=True, exist_ok=True)
        if i != 5:                                                # one listed video is missing
            (root / name / f"vid{i:02d}_{i:06d}_{i + 10:06d}.mp4").touch()
        rows.append(f"{name},vid{i:02d},{i},{i + 10},train")
    csv = tmp_path / "train.csv"
    csv.write_text("\n".join(rows) + "\n")
    settle(root)
    cfg = DataConfig(name="kinetics", format="kinetics", root=str(root), train_list=str(csv))
    return cfg, root, csv


def settle(root) -> None:
    """Date the folders a minute back: a layout that has not changed for a while (the cache does
    not trust folder times from just before a resolution, see action3d.data.index.RACY_NS)."""
    past = time.time() - 60
    for folder in [root, *root.iterdir()]:
        os.utime(folder, (past, past))


def count_resolutions(monkeypatch) -> list:
    calls = []
    real = annotation_formats.load_split
    monkeypatch.setattr(annotation_formats, "load_split", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    return calls


def test_the_cache_answers_a_second_start_with_the_same_index_and_warnings(kinetics, monkeypatch, caplog):
    cfg, root, _ = kinetics
    calls = count_resolutions(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="action3d.data"):
        first, classes = resolve_index(cfg, "train")
    assert calls == ["train"] and len(first) == 11 and classes == ["abseiling", "juggling", "zumba"]
    assert "1 of 12 videos not found" in caplog.text
    assert [p.name for p in (index_module.index_cache_dir()).iterdir()][0].endswith(".npz")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="action3d.data"):
        again, classes_again = resolve_index(cfg, "train")        # what a new run directory does
    assert calls == ["train"], "the second start must not walk the root again"
    assert again == first and classes_again == classes
    assert "1 of 12 videos not found" in caplog.text            # the missing-file report is repeated
    assert not any(p.name.endswith(".npz") for p in root.rglob("*")), "nothing is written into the dataset root"


def test_changed_annotations_or_listing_invalidate_the_cache(kinetics, monkeypatch):
    cfg, root, csv = kinetics
    calls = count_resolutions(monkeypatch)
    before, _ = resolve_index(cfg, "train")
    (root / "juggling" / "vid05_000005_000015.mp4").touch()      # the missing video appears
    after_listing, _ = resolve_index(cfg, "train")
    assert len(calls) == 2 and len(after_listing) == len(before) + 1
    csv.write_text("\n".join(csv.read_text().splitlines()[:-1]) + "\n")
    after_csv, _ = resolve_index(cfg, "train")                    # the CSV's last row removed
    assert len(calls) == 3 and len(after_csv) == len(after_listing) - 1
    os.remove(next(root.glob("zumba/*.mp4")))                      # a video deleted
    resolve_index(cfg, "train")
    assert len(calls) == 4
    resolve_index(cfg, "train")                                    # it changed just before: checked again
    assert len(calls) == 5
    settle(root)
    resolve_index(cfg, "train")
    resolve_index(cfg, "train")
    assert len(calls) == 6                                         # settled, nothing changed: warm again


def test_a_damaged_or_unwritable_cache_is_never_fatal(kinetics, monkeypatch, tmp_path):
    cfg, _, _ = kinetics
    first, _ = resolve_index(cfg, "train")
    for cached in index_module.index_cache_dir().iterdir():
        cached.write_bytes(b"not an npz")
    assert resolve_index(cfg, "train")[0] == first
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ACTION3D_CACHE", str(blocked))
    assert resolve_index(cfg, "train")[0] == first


def test_one_rank_resolves_the_others_receive_the_index(kinetics, monkeypatch):
    """engine.data.shared_index: rank 0 resolves, the index reaches rank 1 by broadcast."""
    cfg, _, _ = kinetics
    resolved, sent = [], []
    real = engine_data.resolve_index
    monkeypatch.setattr(engine_data, "resolve_index", lambda *a, **k: resolved.append(a[1]) or real(*a, **k))
    monkeypatch.setattr(engine_data.dist_utils, "broadcast_object", lambda obj, src=0: sent.append(obj) or sent[0])
    cpu = torch.device("cpu")
    on_rank0 = engine_data.shared_index(cfg, "train", DistEnv(0, 2, 0, cpu))
    on_rank1 = engine_data.shared_index(cfg, "train", DistEnv(1, 2, 1, cpu))
    assert resolved == ["train"] and sent[1] is None                 # rank 1 resolved nothing
    assert on_rank1["samples"] is on_rank0["samples"] and on_rank1["classes"] == on_rank0["classes"]
    dataset = engine_data.build_dataset(cfg, "train", train=True, **on_rank1)
    assert isinstance(dataset.samples, SampleIndex) and len(dataset) == 11

    sent.clear()
    missing = DataConfig(name="kinetics", format="kinetics", root=cfg.root, train_list=cfg.root + "/nope.csv")
    with pytest.raises(Action3dError, match="nope.csv"):
        engine_data.shared_index(missing, "train", DistEnv(0, 2, 0, cpu))
    with pytest.raises(Action3dError, match="nope.csv"):              # rank 1 gets rank 0's error, no hang
        engine_data.shared_index(missing, "train", DistEnv(1, 2, 1, cpu))
