"""Tar shards (issue 16): `data pack` writes webdataset shards; `data=shards` trains and evaluates from them.

Videos are tiny flat-grey clips whose grey level encodes their label, so a decoded clip shows
which video it came from. The ranks of a job are simulated by building the loaders with
`DistEnv(rank, world_size)` (no process group is needed to cut the shards), loader workers are
real where the test is about them, else stood in for by a fake `get_worker_info`.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import action3d.data.shards as shards_module
from action3d.commands import data as data_command
from action3d.commands._hydra import compose_config, typed_config
from action3d.config.checks import ConfigError
from action3d.data.annotations import read_shard_index
from action3d.data.dataset import build_dataset
from action3d.data.shards import ShardDataset
from action3d.data.video_writer import write_video
from action3d.engine.data import shard_loader, shared_index, train_loader
from action3d.engine.distributed import DistEnv
from action3d.engine.evaluate import evaluate
from action3d.engine.inference import TrainedModel
from action3d.models import build_model

from conftest import run_cli

CPU = torch.device("cpu")
CLASSES = ["walk", "run", "jump", "swim"]
SAMPLING = ["data.clip_len=4", "data.frame_interval=2", "data.short_side=32", "data.crop_size=32",
            "data.flip=false", "data.num_workers=0", "model.base_channels=8", "trainer.log_every=1",
            "trainer.precise_bn_batches=0", "trainer.precision=32"]


def level(label: int) -> int:
    return 30 + 40 * label


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """16 + 7 label-coded videos in a list-file dataset, plus a corrupt and an empty file in training."""
    root = tmp_path_factory.mktemp("source")
    lines = {"train": [], "val": []}
    for split, per_class in (("train", 4), ("val", 2)):
        for label, name in enumerate(CLASSES):
            for i in range(per_class if (split, label) != ("val", 3) else 1):
                path = root / split / name / f"{name}{i}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                frames = np.full((12, 32, 32, 3), level(label), dtype=np.uint8)
                write_video(path, frames, fps=25)
                lines[split].append(f"{split}/{name}/{name}{i}.mp4 {label}")
    (root / "train" / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes())
    (root / "train" / "empty.mp4").write_bytes(b"")
    lines["train"] += ["train/garbage.mp4 1", "train/empty.mp4 2"]
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def files_overrides(root: Path) -> list:
    return ["data=folder", f"data.root={root}", f"data.train_list={root}/train.txt", f"data.val_list={root}/val.txt"]


@pytest.fixture(scope="module")
def packed(source, tmp_path_factory):
    """`action3d data pack` of the source set, about two videos per shard."""
    out = tmp_path_factory.mktemp("packed")
    data_command.run(compose_config("data", ["action=pack", f"out={out}", "shard_mb=0.003", *files_overrides(source)]))
    return out


def shard_set(data_cfg, split: str = "train", *, train: bool, seed: int = 0) -> ShardDataset:
    """The dataset the trainer and evaluator build for data.format=shards."""
    return build_dataset(data_cfg, split, train=train, seed=seed, **shared_index(data_cfg, split, None))


def shards_config(root: Path, *overrides: str):
    return typed_config("train", ["data=shards", f"data.root={root}", *SAMPLING, *overrides])


def fake_workers(monkeypatch, worker: int, workers: int) -> None:
    """Iterate a ShardDataset in this process as loader worker `worker` of `workers`."""
    info = types.SimpleNamespace(id=worker, num_workers=workers)
    monkeypatch.setattr(shards_module, "get_worker_info", lambda: info)


def stream_keys(dataset: ShardDataset, monkeypatch, worker: int = 0, workers: int = 1) -> list:
    fake_workers(monkeypatch, worker, workers)
    return [key for _, _, key in dataset]


# --------------------------------------------------------------------------- pack


def test_pack_writes_webdataset_shards_of_shard_mb(source, packed):
    import webdataset

    index = read_shard_index(packed)
    assert index["classes"] == CLASSES
    assert {split: entry["samples"] for split, entry in index["splits"].items()} == {"train": 17, "val": 7}
    train_shards = index["splits"]["train"]["shards"]
    assert len(train_shards) > 4                                        # shard_mb=0.003: a few videos each
    for shard in train_shards:
        biggest_video = max(p.stat().st_size for p in source.rglob("*.mp4"))
        assert (packed / shard["name"]).stat().st_size <= 3000 + biggest_video + 3 * 512 * 2 + 10240
    assert "empty.mp4" in (packed / "pack_failures.txt").read_text()   # left out, named

    # the webdataset library reads them as any webdataset: video bytes, label, metadata per sample
    urls = [str(packed / s["name"]) for s in train_shards]
    samples = list(webdataset.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert [int(s["__key__"]) for s in samples] == list(range(17))
    for sample in samples:
        meta = json.loads(sample["json"])
        assert int(sample["cls"]) == meta["label"] and Path(meta["path"]).read_bytes() == sample["mp4"]
    assert len({json.loads(s["json"])["path"] for s in samples}) == 17
    labels = [int(s["cls"]) for s in samples]
    assert labels != sorted(labels), "the pack order is shuffled so that shards mix the classes"


# --------------------------------------------------------------------------- splitting


def test_training_shards_are_split_into_equal_disjoint_ranges(packed, monkeypatch):
    for world, workers, batch in ((2, 2, 2), (1, 1, 1), (3, 1, 2)):
        cfg = shards_config(packed, f"data.batch_size={batch}")
        ranges = []
        for rank in range(world):
            dataset = shard_set(cfg.data, train=True)
            dataset.assign(rank=rank, world_size=world, num_workers=workers, batch_size=batch, train=True)
            dataset.set_epoch(3)
            assert len(dataset) == 17 // (world * workers * batch) * batch * workers   # equal for every rank
            ranges += [stream_keys(dataset, monkeypatch, w, workers) for w in range(workers)]
        keys = [k for r in ranges for k in r]
        assert {len(r) for r in ranges} == {17 // (world * workers * batch) * batch}
        assert len(set(keys)) == len(keys), "no sample twice in an epoch"
        if world * workers * batch == 1:
            assert sorted(keys) == list(range(17)), "one rank, one worker: the union is the whole split"


def test_an_epoch_permutes_the_shards_and_shard_shuffle_mixes_each_range(packed, monkeypatch):
    """data.shard_shuffle: 0 reads each range in shard order; a buffer mixes it (same samples)."""
    def epoch_keys(shuffle: int, epoch: int) -> list:
        dataset = shard_set(shards_config(packed).data, train=True)
        dataset.assign(rank=0, world_size=1, num_workers=1, batch_size=1, train=True, shuffle=shuffle)
        dataset.set_epoch(epoch)
        return stream_keys(dataset, monkeypatch)

    plain, mixed = epoch_keys(0, 0), epoch_keys(8, 0)
    assert sorted(plain) == sorted(mixed) == list(range(17)) and plain != mixed
    shards = read_shard_index(packed)["splits"]["train"]["shards"]
    runs = [plain[plain.index(s["first"]):plain.index(s["first"]) + s["count"]] for s in shards]
    assert all(run == list(range(run[0], run[0] + len(run))) for run in runs)   # unshuffled: shard by shard
    assert epoch_keys(0, 1) != plain and epoch_keys(8, 0) == mixed             # (seed, epoch) decides


def test_eval_over_shards_counts_every_video_once_on_2_ranks_x_2_workers(packed):
    cfg = shards_config(packed, "data.num_workers=2")
    seen = []
    for rank in range(2):
        dataset = shard_set(cfg.data, train=False)
        loader = shard_loader(dataset, cfg.data, DistEnv(rank, 2, rank, CPU), batch_size=3)
        assert len(loader.sampler) in (8, 9)
        for clips, labels, keys in loader:
            for clip, label, key in zip(clips, labels.tolist(), keys.tolist(), strict=True):
                seen.append(key)
                source_label = dataset.samples[key][1]
                if label >= 0:
                    assert label == source_label and abs(clip.float().mean().item() - level(label)) < 4
                else:
                    assert dataset.samples[key][0].endswith("garbage.mp4")   # marked, not replaced
    assert sorted(seen) == list(range(17)), "each video exactly once, no padding"


def test_evaluate_over_shards_reports_each_video_once_and_names_the_corrupt_one(packed):
    cfg = shards_config(packed, "data.num_workers=2")
    model_cfg = dataclasses.replace(cfg.model, num_classes=len(CLASSES))
    trained = TrainedModel(build_model(model_cfg).eval(), cfg, CLASSES, "none.pt")
    report = evaluate(trained, cfg.data, split="train", progress=False).report
    assert report["num_videos"] == 16 and report["num_failed"] == 1
    [failed] = report["failed_videos"]
    assert failed["path"].endswith("garbage.mp4") and "garbage.mp4" in failed["reason"]
    assert evaluate(trained, cfg.data, split="val", progress=False).report["num_videos"] == 7


# --------------------------------------------------------------------------- failures, resume


def test_corrupt_and_cut_off_samples_are_replaced_named_and_counts_stay_equal(packed, tmp_path, monkeypatch):
    damaged = tmp_path / "damaged"
    shutil.copytree(packed, damaged)
    shard = damaged / read_shard_index(damaged)["splits"]["train"]["shards"][2]["name"]
    shard.write_bytes(shard.read_bytes()[:1500])                        # a shard cut off mid-sample
    cfg = shards_config(damaged)
    counts, failures = [], []
    for rank in range(2):
        dataset = shard_set(cfg.data, train=True)
        dataset.assign(rank=rank, world_size=2, num_workers=1, batch_size=2, train=True)
        fake_workers(monkeypatch, 0, 1)
        items = list(dataset)
        counts.append(len(items))
        assert all(label >= 0 and abs(clip.float().mean().item() - level(label)) < 4 for clip, label, _ in items)
        failures += dataset.drain_failures()
    assert counts == [8, 8], "every rank has the same number of samples: DDP cannot hang"
    reasons = " ".join(reason for _, reason in failures)
    assert "garbage.mp4" in reasons and "the shard ends before it (truncated?)" in reasons and shard.name in reasons


def test_mid_epoch_resume_replays_the_same_batches_with_workers(packed):
    cfg = shards_config(packed, "data.num_workers=2", "data.batch_size=2", "data.shard_shuffle=4")
    dataset = shard_set(cfg.data, train=True, seed=5)
    loader = train_loader(dataset, cfg.data, DistEnv(0, 1, 0, CPU), seed=5)
    loader.sampler.set_epoch(1)
    full = [(keys.tolist(), clips) for clips, _, keys in loader]
    assert len(full) == len(loader) == 8 and loader.sampler.epoch == 1    # 17 // (2 workers x 2) x 2 workers
    loader.sampler.set_epoch(1, start=3 * 2)                          # 3 batches done (persistent workers)
    assert len(loader) == 5
    resumed = [(keys.tolist(), clips) for clips, _, keys in loader]
    assert [k for k, _ in resumed] == [k for k, _ in full[3:]]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(resumed, full[3:], strict=True))  # same crops


def test_num_clips_works_and_balanced_sampling_is_refused_with_shards(packed, monkeypatch):
    dataset = shard_set(shards_config(packed, "data.num_clips=2").data, train=True)
    dataset.assign(rank=0, world_size=1, num_workers=1, batch_size=1, train=True)
    fake_workers(monkeypatch, 0, 1)
    assert next(iter(dataset))[0].shape == (2, 3, 4, 32, 32)
    with pytest.raises(ConfigError, match=r"^data.sampler=balanced is not allowed: data.format=shards") as err:
        shards_config(packed, "data.sampler=balanced")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^data.train_list=x.txt is not allowed"):
        shards_config(packed, "data.train_list=x.txt")


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_pack_then_train_from_shards_and_resume_at_the_epoch_boundary(packed, tmp_path):
    from action3d.engine.train import Trainer

    overrides = ["data.num_workers=2", "data.batch_size=4", "trainer.max_epochs=2"]
    whole = Trainer(shards_config(packed, *overrides), run_dir=tmp_path / "whole", seed=0).fit()
    assert whole["status"] == "finished" and whole["epochs"] == 2
    assert whole["steps"] == 2 * 4                                      # 17 // (2 workers x 4) x 4 x 2 workers / 4
    assert any(path.endswith("garbage.mp4") for path in whole["failed_files"])   # replaced, named
    Trainer(shards_config(packed, *overrides[:2], "trainer.max_epochs=1"), run_dir=tmp_path / "split", seed=0).fit()
    resumed = Trainer(shards_config(packed, *overrides, "trainer.resume=auto"), run_dir=tmp_path / "split",
                      seed=0).fit()
    assert resumed["steps"] == whole["steps"]
    a, b = (torch.load(tmp_path / run / "last.pt", weights_only=True)["model"] for run in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a), "resume at an epoch boundary is exact"


@pytest.mark.slow
def test_torchrun_train_and_eval_over_shards(packed, tmp_path, cache_dir):
    """Two real processes (gloo), two loader workers each: DDP training stays in step (equal
    batches per rank), and eval counts each of the 7 validation videos once."""
    common = ["data=shards", f"data.root={packed}", *SAMPLING[:4], "data.num_workers=2"]
    run_cli(["train", *common, "data.batch_size=2", "trainer.max_epochs=1", "trainer.precision=32",
             "trainer.precise_bn_batches=0", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, cache=cache_dir,
            torchrun=2, check=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 17 // (2 * 2 * 2) * 2  # per rank, equal
    done = run_cli(["eval", f"ckpt={tmp_path / 'run' / 'last.pt'}", *common, "eval.batch_size=2",
                    f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path, cache=cache_dir, torchrun=2, check=True)
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["processes"] == 2 and report["num_videos"] == 7 and report["num_failed"] == 0, done.stdout[-2000:]
