"""The `data.*` option matrix: each key, set as a command-line override, changes what the data
path delivers as documented (frames chosen, crops, flips, clip and batch shapes, normalised
values, the decoder's and the loader's settings, the videos and classes read, the generated set).

Configs are the ones the command line composes (`options_compose.compose`); datasets and loaders
are built by the same calls the trainer and evaluator make (`build_dataset`, `train_loader`,
`device_batch`). The videos are tiny and tell what was read: flat grey frames whose level encodes
the frame number, and a static horizontal ramp whose values encode the x coordinate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from options_compose import compose
from synthetic_subsets import single_thread  # noqa: F401  (autouse: one torch thread in this module)

from action3d.commands import data as data_command
from action3d.data import decode
from action3d.data.dataset import DatasetBrokenError, build_dataset
from action3d.data.decode import VideoReader, read_all_frames
from action3d.data.video_writer import write_video
from action3d.engine.data import device_batch, train_loader
from action3d.engine.distributed import DistEnv

ONE_PROCESS = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
FRAMES, RAMP_H, RAMP_W = 20, 32, 48


@pytest.fixture(autouse=True)
def own_cache(cache_dir):
    """The session's ACTION3D_CACHE (resolved annotation indexes are cached there)."""
    return cache_dir


def grey_frames(count: int) -> np.ndarray:
    """Frame t is a flat grey of level 20 + 10 t."""
    levels = (20 + 10 * np.arange(count)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, 32, 32, 3)).copy()


def ramp_frames() -> np.ndarray:
    """A static horizontal ramp: the value of column x is 255 x / (W - 1), so a crop's values tell
    which columns it covers (and a mirrored crop decreases from left to right)."""
    row = np.round(np.arange(RAMP_W) * 255 / (RAMP_W - 1)).astype(np.uint8)
    return np.broadcast_to(row[None, None, :, None], (12, RAMP_H, RAMP_W, 3)).copy()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("option-videos")
    write_video(root / "time.mp4", grey_frames(FRAMES), gop=4)
    write_video(root / "short.mp4", grey_frames(5), gop=4)
    write_video(root / "ramp.mp4", ramp_frames(), gop=4)
    (root / "time.txt").write_text("time.mp4 0\n")
    (root / "short.txt").write_text("short.mp4 0\n")
    (root / "ramp.txt").write_text("ramp.mp4 0\n" * 12)
    return root


def data_cfg(root, *overrides: str, train: str = "ramp.txt", val: str = "time.txt"):
    """The `data` node of `action3d train data=folder data.root=ROOT ... OVERRIDES`."""
    return compose("train", "data=folder", f"data.root={root}", f"data.train_list={root / train}",
                   f"data.val_list={root / val}", "data.num_workers=0", "data.clip_len=4",
                   "data.short_side=32", "data.crop_size=32", *overrides).data


def frame_numbers(clip: torch.Tensor) -> list:
    """Frame numbers of a grey clip (C, T, H, W): level 20 + 10 t, give or take H.264 rounding."""
    return [round((v - 20) / 10) for v in clip[0, :, 16, 16].float().tolist()]


def ramp_span(clip: torch.Tensor) -> tuple:
    """(first, last) value of the middle row of a ramp clip's first frame, on 0-255."""
    row = clip[0, 0, clip.shape[-2] // 2].float()
    return row[0].item(), row[-1].item()


# --------------------------------------------------------------------------- frame sampling

@pytest.mark.parametrize("overrides, frames", [
    (["data.frame_interval=2"], [6, 8, 10, 12]),            # span 7 of 20 frames, centred
    (["data.frame_interval=3"], [5, 8, 11, 14]),            # span 10
    (["data.clip_len=6", "data.frame_interval=2"], [4, 6, 8, 10, 12, 14]),
    (["data.clip_len=2", "data.frame_interval=5"], [7, 12]),
])
def test_clip_len_and_frame_interval_choose_the_frames(videos, overrides, frames):
    dataset = build_dataset(data_cfg(videos, *overrides), "val", train=False)
    clip, _, _ = dataset[0]
    assert clip.shape[1] == len(frames)
    assert frame_numbers(clip) == frames


def test_num_clips_gives_that_many_clips_per_video(videos):
    # validation (evenly spread clips, as the trainer's validation set): starts 0, 6, 13 of 0..13
    val = build_dataset(data_cfg(videos, "data.num_clips=3"), "val", train=False)
    clips, _, _ = val[0]
    assert clips.shape == (3, 3, 4, 32, 32)
    assert [frame_numbers(c) for c in clips] == [[0, 2, 4, 6], [6, 8, 10, 12], [13, 15, 17, 19]]
    assert build_dataset(data_cfg(videos), "val", train=False)[0][0].shape == (3, 4, 32, 32)
    # training: 2 clips drawn independently from one decode, each 4 frames every 2nd
    train = build_dataset(data_cfg(videos, "data.num_clips=2", train="time.txt"), "train", train=True)
    starts = set()
    for epoch in range(6):
        clips, _, _ = train[(epoch, 0)]
        assert clips.shape == (2, 3, 4, 32, 32)
        for c in clips:
            frames = frame_numbers(c)
            assert frames == list(range(frames[0], frames[0] + 8, 2)) and 0 <= frames[0] <= 13
            starts.add(frames[0])
    assert len(starts) > 2


@pytest.mark.parametrize("mode, frames", [("loop", [0, 2, 4, 1]), ("repeat_last", [0, 2, 4, 4])])
def test_out_of_bound_fills_clips_longer_than_the_video(videos, mode, frames):
    dataset = build_dataset(data_cfg(videos, f"data.out_of_bound={mode}", val="short.txt"), "val", train=False)
    assert frame_numbers(dataset[0][0]) == frames  # 4 frames every 2nd of a 5-frame video


# --------------------------------------------------------------------------- spatial transforms

@pytest.mark.parametrize("crop_size", [16, 24])
def test_crop_size_sets_the_clip_size(videos, crop_size):
    cfg = data_cfg(videos, f"data.crop_size={crop_size}")
    for split, train in (("train", True), ("val", False)):
        clip = build_dataset(cfg, split, train=train)[(0, 0) if train else 0][0]
        assert clip.shape == (3, 4, crop_size, crop_size)


@pytest.mark.parametrize("short_side, first, last", [
    (32, 255 * 8 / 47, 255 * 39 / 47),    # frame as it is: the centre 32 of 48 columns
    (64, 255 * 16 / 47, 255 * 31 / 47),   # frame x2: the centre 32 of 96 columns = 16 original ones
])
def test_short_side_sets_the_scale_of_test_crops(videos, short_side, first, last):
    cfg = data_cfg(videos, f"data.short_side={short_side}", val="ramp.txt")
    got = ramp_span(build_dataset(cfg, "val", train=False)[0][0])
    assert got == pytest.approx((first, last), abs=10)


def train_spans(cfg, count: int = 12) -> list:
    """Share of the ramp's width covered by each of `count` training crops (negative: mirrored)."""
    dataset = build_dataset(cfg, "train", train=True)
    spans = [ramp_span(dataset[(epoch, 0)][0]) for epoch in range(count)]
    return [(last - first) / 255 for first, last in spans]


@pytest.mark.parametrize("area, low, high", [([0.08, 0.1], 0.0, 0.35), ([1.0, 1.0], 0.6, 0.72)])
def test_crop_area_range_sets_the_share_of_the_frame_a_training_crop_covers(videos, area, low, high):
    # a 32x48 frame: 8-10% of its area is at most ~14 of 48 columns; all of it (with an aspect
    # ratio of at most 4/3) falls back to the central 32x32 square
    shares = train_spans(data_cfg(videos, f"data.crop_area_range=[{area[0]},{area[1]}]", "data.flip=false"))
    assert all(low <= s <= high for s in shares), shares


def test_train_crop_multiscale_takes_crops_of_fixed_scales(videos):
    resized = train_spans(data_cfg(videos, "data.crop_area_range=[0.08,0.1]", "data.flip=false"))
    multiscale = train_spans(data_cfg(videos, "data.train_crop=multiscale", "data.flip=false"))
    assert max(resized) < 0.35
    # scales 1, .875, .75, .66 of the 32-px short side: at least 21 of 48 columns
    assert min(multiscale) > 0.38, multiscale


@pytest.mark.parametrize("flip", [False, True])
def test_flip_mirrors_some_training_clips(videos, flip):
    shares = train_spans(data_cfg(videos, f"data.flip={str(flip).lower()}"))
    mirrored = sum(s < 0 for s in shares)
    assert (0 < mirrored < len(shares)) if flip else mirrored == 0


# --------------------------------------------------------------------------- decoder settings

def test_decode_short_side_resizes_frames_inside_the_decoder(videos, monkeypatch):
    decoded = []
    read = VideoReader.read

    def spy(self, indices):
        frames = read(self, indices)
        decoded.append(tuple(frames.shape[-2:]))
        return frames

    monkeypatch.setattr(VideoReader, "read", spy)
    for value, size in (("null", (RAMP_H, RAMP_W)), ("16", (16, 24))):
        cfg = data_cfg(videos, f"data.decode_short_side={value}", "data.short_side=16", "data.crop_size=16",
                       val="ramp.txt")
        clip = build_dataset(cfg, "val", train=False)[0][0]
        assert decoded.pop() == size and clip.shape == (3, 4, 16, 16)


@pytest.mark.parametrize("threads", [1, 3])
def test_decode_threads_sets_the_decoder_thread_count(videos, monkeypatch, threads):
    seen = []
    open_video = decode.open_video

    def spy(path, threads):
        container, stream = open_video(path, threads)
        seen.append(stream.codec_context.thread_count)
        return container, stream

    monkeypatch.setattr(decode, "open_video", spy)
    build_dataset(data_cfg(videos, f"data.decode_threads={threads}"), "val", train=False)[0]
    assert seen == [threads]


# --------------------------------------------------------------------------- loader and batches

@pytest.mark.parametrize("batch_size, batches", [(4, 3), (5, 2)])
def test_batch_size_sets_the_clips_per_training_step(videos, batch_size, batches):
    cfg = data_cfg(videos, f"data.batch_size={batch_size}", "data.crop_size=16")
    loader = train_loader(build_dataset(cfg, "train", train=True), cfg, ONE_PROCESS, seed=0)
    assert len(loader) == batches  # 12 videos, the last partial batch dropped
    clips, labels, _ = next(iter(loader))
    assert clips.shape == (batch_size, 3, 4, 16, 16) and labels.shape == (batch_size,)


@pytest.mark.parametrize("key, values, attribute", [
    ("pin_memory", ("false", "true"), "pin_memory"),
    ("persistent_workers", ("false", "true"), "persistent_workers"),
    ("prefetch_factor", ("2", "5"), "prefetch_factor"),
])
def test_loader_keys_reach_the_training_data_loader(videos, monkeypatch, key, values, attribute):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # pinning applies to CUDA runs
    got = []
    for value in values:
        cfg = data_cfg(videos, "data.num_workers=1", f"data.{key}={value}")
        loader = train_loader(build_dataset(cfg, "train", train=True), cfg, ONE_PROCESS, seed=0)
        got.append(getattr(loader, attribute))  # built, not iterated: no worker started
    assert got == [{"false": False, "true": True}.get(v, v if not v.isdigit() else int(v)) for v in values]


def test_pin_memory_is_off_without_cuda(videos, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = data_cfg(videos, "data.pin_memory=true")
    assert train_loader(build_dataset(cfg, "train", train=True), cfg, ONE_PROCESS, seed=0).pin_memory is False


@pytest.mark.parametrize("overrides, expected", [
    ([], [(100 - 123.675) / 58.395, (100 - 116.28) / 57.12, (100 - 103.53) / 57.375]),  # ImageNet x 255
    (["data.mean=[0,50,100]", "data.std=[1,2,4]"], [100.0, 25.0, 0.0]),
    (["data.mean=[100,100,100]", "data.std=[10,10,10]"], [0.0, 0.0, 0.0]),
])
def test_mean_and_std_normalise_batches_on_the_device(videos, overrides, expected):
    cfg = data_cfg(videos, *overrides)
    batch = (torch.full((2, 3, 4, 8, 8), 100, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    x, _ = device_batch(batch, cfg, torch.device("cpu"), channels_last=False)
    assert x.dtype == torch.float32
    for channel, value in enumerate(expected):
        assert torch.allclose(x[:, channel], torch.full_like(x[:, channel], value), atol=1e-5)


@pytest.mark.parametrize("ratio, raises", [(0.5, False), (0.2, True)])
def test_max_fail_ratio_sets_when_a_mostly_broken_dataset_stops(tmp_path, ratio, raises):
    (tmp_path / "broken.txt").write_text("".join(f"gone{i:02d}.mp4 0\n" for i in range(15)))
    cfg = data_cfg(tmp_path, f"data.max_fail_ratio={ratio}", train="broken.txt", val="broken.txt")
    dataset = build_dataset(cfg, "val", train=False)
    if raises:  # 11 of the first 50 files failed: more than 20% of 50
        with pytest.raises(DatasetBrokenError, match=r"more than 20% of 50"):
            for i in range(len(dataset)):
                dataset[i]
    else:  # 15 failures are not more than half of 50: each is marked and skipped
        assert [dataset[i][1] for i in range(len(dataset))] == [-1] * 15


# --------------------------------------------------------------------------- what is read

@pytest.fixture()
def tree(tmp_path):
    """Class folders and list files over the same (empty) video files: nothing is decoded."""
    for rel in ("train/walk/a.mp4", "train/run/b.mp4", "val/walk/c.mp4", "other/d.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "train.txt").write_text("train/walk/a.mp4 0\ntrain/run/b.mp4 1\n")
    (tmp_path / "val.txt").write_text("other/d.mp4 1\n")
    return tmp_path


def read_split(root, *overrides: str, split: str = "train"):
    cfg = compose("train", "data=folder", f"data.root={root}", *overrides).data
    dataset = build_dataset(cfg, split, train=split == "train")
    shown = [(Path(path), label) for path, label in dataset.samples]
    samples = [(str(p.relative_to(root)) if p.is_relative_to(root) else str(p), label) for p, label in shown]
    return samples, dataset.classes


def test_format_chooses_how_the_dataset_is_read(tree):
    lists = (f"data.train_list={tree / 'train.txt'}", f"data.val_list={tree / 'val.txt'}")
    assert read_split(tree, "data.format=list", *lists) == (
        [("train/walk/a.mp4", 0), ("train/run/b.mp4", 1)], ["0", "1"])
    assert read_split(tree, "data.format=folder") == (  # class folders, classes sorted by name
        [("train/run/b.mp4", 0), ("train/walk/a.mp4", 1)], ["run", "walk"])


def test_root_is_the_base_of_the_listed_paths(tree, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    listing = f"data.train_list={tree / 'train.txt'}"
    for root in (tree, other):
        cfg = compose("train", "data=folder", f"data.root={root}", listing).data
        assert build_dataset(cfg, "train", train=True).samples[0] == (str(root / "train/walk/a.mp4"), 0)


def test_train_and_val_lists_choose_the_videos_of_each_split(tree):
    lists = (f"data.train_list={tree / 'train.txt'}", f"data.val_list={tree / 'val.txt'}")
    assert read_split(tree, *lists)[0] == [("train/walk/a.mp4", 0), ("train/run/b.mp4", 1)]
    assert read_split(tree, *lists, split="val")[0] == [("other/d.mp4", 1)]
    swapped = (f"data.train_list={tree / 'val.txt'}", f"data.val_list={tree / 'train.txt'}")
    assert read_split(tree, *swapped)[0] == [("other/d.mp4", 1)]


def test_classes_file_names_the_classes(tree):
    listing = f"data.train_list={tree / 'train.txt'}"
    (tree / "names.txt").write_text("walking\nrunning\njumping\n")
    assert read_split(tree, listing)[1] == ["0", "1"]
    assert read_split(tree, listing, f"data.classes_file={tree / 'names.txt'}")[1] == ["walking", "running", "jumping"]


@pytest.fixture()
def ucf(tmp_path):
    """UCF101-style split files in two annotation folders (different class lists)."""
    for name, classes in (("notes", ("Walk", "Run")), ("notes_b", ("Run", "Walk"))):
        notes = tmp_path / name
        notes.mkdir()
        (notes / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
        for split in (1, 2):
            (notes / f"trainlist0{split}.txt").write_text(f"Walk/v_Walk_g0{split}.avi\nRun/v_Run_g0{split}.avi\n")
            (notes / f"testlist0{split}.txt").write_text(f"Run/v_Run_g1{split}.avi\n")
    return tmp_path


def test_split_chooses_the_official_split(ucf):
    common = ("data=ucf101", f"data.root={ucf / 'UCF-101'}", f"data.annotation_dir={ucf / 'notes'}")
    for split in (1, 2):
        cfg = compose("train", *common, f"data.split={split}").data
        train = build_dataset(cfg, "train", train=True)
        val = build_dataset(cfg, "val", train=False)
        assert [p.rsplit("/", 1)[1] for p, _ in train.samples] == [f"v_Walk_g0{split}.avi", f"v_Run_g0{split}.avi"]
        assert [p.rsplit("/", 1)[1] for p, _ in val.samples] == [f"v_Run_g1{split}.avi"]


def test_annotation_dir_holds_the_class_list_and_split_files(ucf):
    common = ("data=ucf101", f"data.root={ucf / 'UCF-101'}")
    first = build_dataset(compose("train", *common, f"data.annotation_dir={ucf / 'notes'}").data, "train", train=True)
    other = build_dataset(compose("train", *common, f"data.annotation_dir={ucf / 'notes_b'}").data, "train", train=True)
    assert first.classes == ["Walk", "Run"] and [label for _, label in first.samples] == [0, 1]
    assert other.classes == ["Run", "Walk"] and [label for _, label in other.samples] == [1, 0]


# --------------------------------------------------------------------------- the synthetic set

SYNTH = {"num_classes": 2, "train_per_class": 2, "val_per_class": 1, "num_frames": 6, "size": 16, "seed": 0}


def synth(out, **changes) -> dict:
    """`action3d data synth out=OUT data.synthetic.KEY=VALUE ...`: what it wrote."""
    settings = {**SYNTH, **changes}
    cfg = compose("data", "action=synth", f"out={out}", *(f"data.synthetic.{k}={v}" for k, v in settings.items()))
    data_command.run(cfg)
    lines = {name: (out / f"{name}.txt").read_text().split("\n")[:-1] for name in ("train", "val", "classes")}
    first = out / lines["train"][0].split()[0]
    return {"classes": lines["classes"], "train": len(lines["train"]), "val": len(lines["val"]),
            "frames": read_all_frames(first), "first": first.relative_to(out)}


@pytest.fixture(scope="module")
def base_synth(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("synth-base"))


@pytest.mark.parametrize("key, value", [("num_classes", 3), ("train_per_class", 3), ("val_per_class", 2),
                                        ("num_frames", 8), ("size", 24), ("seed", 1)])
def test_synthetic_keys_change_the_generated_set(tmp_path, capsys, base_synth, key, value):
    base = base_synth
    assert (len(base["classes"]), base["train"], base["val"]) == (2, 4, 2)
    assert base["frames"].shape == (3, 6, 16, 16)
    got = synth(tmp_path, **{key: value})
    assert str(tmp_path) in capsys.readouterr().out
    expected = {"num_classes": (3, 6, 3), "train_per_class": (2, 6, 2), "val_per_class": (2, 4, 4)}.get(key, (2, 4, 2))
    assert (len(got["classes"]), got["train"], got["val"]) == expected
    size = value if key == "size" else 16
    assert got["frames"].shape == (3, value if key == "num_frames" else 6, size, size)
    if key == "seed":  # the same file, other pixels
        assert got["first"] == base["first"] and not torch.equal(got["frames"], base["frames"])
    elif key in ("num_classes", "train_per_class", "val_per_class"):  # the same video, more of them
        # The same rendered frames; x264 does not always encode them to the same bytes (see
        # synthetic.write_mp4), so the decoded pixels may differ by a few levels. Another seed's
        # video differs by ~40 levels on average.
        assert (got["frames"].float() - base["frames"].float()).abs().mean() < 2.0
