"""VideoDataset on tiny generated videos: shapes, views, seeding, and survival of bad files."""
import dataclasses
import logging
import os

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from action3d.config import DataConfig
from action3d.data.dataset import DatasetBrokenError, VideoDataset, build_dataset
from action3d.data.test_transforms import CenterCrop, ThreeCrop
from action3d.data.train_transforms import RandomResizedCrop
from action3d.data.video_writer import write_video
from action3d.engine.data import shard_loader, train_loader
from action3d.engine.distributed import DistEnv

ONE_PROCESS = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))

SIZE, FRAMES, CLIP = 32, 12, 4


def frames_for(label: int, frames: int = FRAMES) -> np.ndarray:
    """Each frame a flat grey whose level encodes the label and the frame number."""
    levels = 10 * label + np.arange(frames) * 4 + 20
    return np.broadcast_to(levels[:, None, None, None], (frames, SIZE, SIZE, 3)).astype(np.uint8).copy()


def write_audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_empty_video_stream(path):
    """An MP4 with a video track that has no frames at all."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        container.start_encoding()  # header and an empty track, no frame ever encoded


def garble_payload(good: bytes) -> bytes:
    """Keep the MP4 boxes but zero the coded frames: demuxes, decodes to nothing."""
    start = good.index(b"mdat") + 4
    size = int.from_bytes(good[start - 8:start - 4], "big") - 8
    return good[:start] + bytes(size) + good[start + size:]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    good = []
    for label in range(4):
        path = root / f"good{label}.mp4"
        write_video(path, frames_for(label), fps=25)
        good.append((str(path), label))
    data = (root / "good0.mp4").read_bytes()
    bad = {
        "missing": root / "missing.mp4",
        "zero_bytes": root / "zero.mp4",
        "truncated": root / "truncated.mp4",
        "random_bytes": root / "random.mp4",
        "audio_only": root / "audio.mp4",
        "no_frames": root / "noframes.mp4",
        "garbled": root / "garbled.mp4",
    }
    bad["zero_bytes"].write_bytes(b"")
    bad["truncated"].write_bytes(data[: len(data) // 3])
    bad["random_bytes"].write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    write_audio_only(bad["audio_only"])
    write_empty_video_stream(bad["no_frames"])
    bad["garbled"].write_bytes(garble_payload(data))
    return root, good, {kind: str(path) for kind, path in bad.items()}


def make_dataset(samples, *, train, root=None, **kwargs):
    transform = RandomResizedCrop(24, area_range=(0.5, 1.0)) if train else CenterCrop(24)
    kwargs.setdefault("clip_len", CLIP)
    kwargs.setdefault("frame_interval", 2)
    return VideoDataset(samples, transform=transform, train=train, crop_size=24, root=root, **kwargs)


def test_train_item_shape_and_label(videos):
    root, good, _ = videos
    dataset = make_dataset(good, train=True, root=str(root))
    clip, label, index = dataset[2]
    assert clip.shape == (3, CLIP, 24, 24) and clip.dtype == torch.uint8
    assert (label, index) == (2, 2)


def test_test_mode_views_and_values(videos):
    root, good, _ = videos
    dataset = make_dataset(good, train=False, num_clips=3, num_crops=1)
    clip, label, _ = dataset[1]
    assert clip.shape == (3, 3, CLIP, 24, 24)  # (V, C, T, H, W)
    # flat grey frames: the value tells which frame was read; clips start at 0, 2, 5 (span 7 of 12)
    level = clip[:, 0, :, 12, 12].float()  # (V, T)
    expected = torch.tensor([[10 + 20 + 4 * (s + 2 * k) for k in range(CLIP)] for s in (0, 2, 5)], dtype=torch.float)
    assert (level - expected).abs().max() <= 3  # H.264 rounding
    multi = VideoDataset(good, transform=ThreeCrop(24), train=False, clip_len=CLIP, num_clips=2,
                         num_crops=3, crop_size=24)
    assert multi[0][0].shape == (6, 3, CLIP, 24, 24)


def test_train_survives_every_bad_file_kind(videos, caplog):
    root, good, bad = videos
    samples = good + [(path, 9) for path in bad.values()]
    dataset = make_dataset(samples, train=True, root=str(root))
    with caplog.at_level(logging.WARNING, logger="action3d.data"):
        for _epoch in range(2):
            labels = [dataset[i][1] for i in range(len(dataset))]
            assert 9 not in labels and len(labels) == len(samples)  # every bad item was replaced
            failures = dataset.drain_failures()
            assert {path for path, _ in failures} == set(bad.values())
        # once known bad, a file is never drawn as a replacement: one failure per bad item
        assert sorted(path for path, _ in failures) == sorted(bad.values())
    for path in bad.values():  # named once in the log over both epochs
        assert caplog.text.count(path) == 1
    reasons = dict(failures)
    assert "no such file" in reasons[bad["missing"]] and "0 bytes" in reasons[bad["zero_bytes"]]
    assert "no video stream" in reasons[bad["audio_only"]] and "decoding failed" in reasons[bad["garbled"]]


@pytest.mark.timeout(120)  # subprocesses: a hang fails the test instead of the suite
def test_train_with_workers_counts_failures_in_main_process(videos):
    root, good, bad = videos
    samples = good + [(path, 9) for path in bad.values()]
    cfg = DataConfig(batch_size=4, num_workers=2, persistent_workers=False, prefetch_factor=2)
    dataset = make_dataset(samples, train=True, root=str(root))
    loader = shard_loader(dataset, cfg, ONE_PROCESS, batch_size=cfg.batch_size)
    labels = torch.cat([batch[1] for batch in loader])
    assert len(labels) == len(samples) and not (labels == 9).any()
    failures = dataset.drain_failures()
    assert {path for path, _ in failures} == set(bad.values())
    assert len(failures) >= len(bad) and dataset.drain_failures() == []


@pytest.mark.timeout(120)  # subprocesses: a hang fails the test instead of the suite
def test_same_seed_same_batches_with_workers(videos):
    """The trainer's loader: the seed decides the order and every sample's augmentation."""
    root, good, _ = videos
    cfg = DataConfig(batch_size=2, num_workers=2, persistent_workers=False)

    def run(seed):
        dataset = make_dataset(good * 2, train=True, root=str(root), seed=seed)
        loader = train_loader(dataset, cfg, ONE_PROCESS, seed=seed)
        return [(clips.clone(), labels.clone()) for clips, labels, _ in loader]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, other))


def test_eval_marks_bad_files(videos):
    root, good, bad = videos
    samples = good + [(path, 1) for path in bad.values()]
    dataset = make_dataset(samples, train=False, root=str(root))
    items = [dataset[i] for i in range(len(dataset))]
    for clip, _, _ in items:
        assert clip.shape == (3, CLIP, 24, 24)
    assert [label for _, label, _ in items] == [0, 1, 2, 3] + [-1] * len(bad)
    assert all(not clip.any() for clip, _, _ in items[len(good):])  # zero clips
    assert sorted(path for path, _ in dataset.drain_failures()) == sorted(bad.values())


def test_mostly_broken_dataset_raises_naming_root(videos, tmp_path):
    root, good, _ = videos
    broken = [(str(tmp_path / f"gone{i:02d}.mp4"), 0) for i in range(30)]
    dataset = make_dataset(good[:1] + broken, train=True, root=str(tmp_path))
    with pytest.raises(DatasetBrokenError) as err:
        for i in range(len(dataset)):
            dataset[i]
    message = str(err.value)
    assert message.startswith(f"dataset at {tmp_path} looks broken") and "gone0" in message
    assert "\n" not in message


@pytest.mark.timeout(120)  # subprocesses: a hang fails the test instead of the suite
def test_mostly_broken_dataset_raises_through_workers(tmp_path):
    broken = [(str(tmp_path / f"gone{i:02d}.mp4"), 0) for i in range(60)]
    dataset = make_dataset(broken, train=False, root=str(tmp_path))
    cfg = DataConfig(batch_size=4, num_workers=2, persistent_workers=False)
    with pytest.raises(DatasetBrokenError) as err:
        for _ in shard_loader(dataset, cfg, ONE_PROCESS, batch_size=cfg.batch_size):
            pass
    assert str(err.value).startswith(f"dataset at {tmp_path} looks broken")  # not the traceback text
    assert err.value.worker_traceback is not None and "Traceback" in err.value.worker_traceback


def test_distributed_sampler_ranks_cover_the_dataset(videos):
    root, good, _ = videos
    dataset = make_dataset(good * 2 + good[:1], train=False)  # 9 items: the last rank pads
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler)
        seen.append([int(i) for _, _, indices in loader for i in indices])
    assert len(seen[0]) == len(seen[1]) == 5
    assert set(seen[0]) | set(seen[1]) == set(range(len(dataset)))


def test_build_dataset_from_config_and_predict_samples(videos, tmp_path):
    root, good, _ = videos
    listing = tmp_path / "train.txt"
    listing.write_text("".join(f"{os.path.basename(p)} {label}\n" for p, label in good))
    cfg = DataConfig(format="list", root=str(root), train_list=str(listing), val_list=str(listing),
                     clip_len=4, frame_interval=2, short_side=32, crop_size=24, num_workers=0)
    train = build_dataset(cfg, "train", train=True)
    assert train.classes == ["0", "1", "2", "3"] and train[0][0].shape == (3, 4, 24, 24)
    val = build_dataset(cfg, "val", train=False, num_clips=2, num_crops=3)
    assert val[0][0].shape == (6, 3, 4, 24, 24)
    predict = build_dataset(cfg, "val", train=False, samples=[(good[3][0], -1)])
    clip, label, _ = predict[0]
    assert label == -1 and clip.shape == (3, 4, 24, 24) and predict.classes is None
    batch = next(iter(train_loader(train, dataclasses.replace(cfg, batch_size=2), ONE_PROCESS, seed=0)))
    assert batch[0].shape == (2, 3, 4, 24, 24) and batch[1].dtype == torch.int64


def test_epoch_index_keys_give_the_same_sample_in_any_order(videos):
    root, good, _ = videos
    a = make_dataset(good, train=True, root=str(root), seed=5)
    b = make_dataset(good, train=True, root=str(root), seed=5)
    first = [a[(1, i)][0] for i in range(4)]
    second = [b[(1, i)][0] for i in reversed(range(4))][::-1]  # another order, another process state
    assert all(torch.equal(x, y) for x, y in zip(first, second))
    assert a[(1, 2)][2] == 2 and not torch.equal(a[(1, 2)][0], a[(2, 2)][0])  # new epoch, new crop
