"""Frame folders (data.format=rawframes): mmaction2's layout read frame-exactly from its JPEGs.

Folders are written here with `torchvision.io.encode_jpeg` (noise frames, so that any other frame
or any resampling shows); the expected pixels are always `decode_jpeg` of the very files that the
sampled frame indices name, so "equal" is exact.
"""
from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

from action3d.commands._hydra import compose_config, typed_config
from action3d.config import DataConfig
from action3d.config.checks import ConfigError
from action3d.data.dataset import DatasetBrokenError, FrameFolderDataset, build_dataset, frame_folder_dataset
from action3d.data.formats import FORMAT_NAMES, format_of, key_owners
from action3d.data.formats.rawframes import read_rawframe_list
from action3d.data.frames import FrameCounts, FrameError, FrameFolderReader
from action3d.data.sampling import at_frame_rate, resample_indices, sample_frames
from action3d.data.transforms import resize
from action3d.data.video_writer import write_video
from action3d.errors import Action3dError

FRAMES, SIZE = 8, 32
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


@pytest.fixture(autouse=True)
def own_cache(cache_dir):
    """The session's ACTION3D_CACHE: the resolved annotation index is cached there."""
    return cache_dir


def write_folder(folder: Path, count: int = FRAMES, *, template: str = "img_{:05}.jpg", start: int = 1,
                 seed: int = 0, size=(SIZE, SIZE)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        frame = torch.from_numpy(rng.integers(0, 256, (3, *size), dtype=np.uint8))
        number = start + i
        (folder / template.format(number, video=folder.name)).write_bytes(encode_jpeg(frame, quality=90).numpy())
    return folder


def decoded(folder: Path, indices, *, template: str = "img_{:05}.jpg", start: int = 1) -> torch.Tensor:
    """(C, T, H, W): decode_jpeg of the files frame indices `indices` name."""
    files = [folder / template.format(int(i) + start, video=folder.name) for i in np.asarray(indices).reshape(-1)]
    return torch.stack([decode_jpeg(torch.from_numpy(np.fromfile(f, np.uint8)), mode=ImageReadMode.RGB)
                        for f in files], dim=1)


@pytest.fixture()
def rawset(tmp_path):
    """root/{a,b,c}/img_00001.jpg ... (8 frames each), train.txt listing them and classes.txt."""
    root = tmp_path / "frames"
    for i, name in enumerate("abc"):
        write_folder(root / "videos" / name, seed=i)
    (root / "train.txt").write_text("videos/a 8 0\nvideos/b 8 1\n# a comment\nvideos/c 8 1\n")
    (root / "classes.txt").write_text("walk\nrun\n")
    return root


def rawframes_cfg(root: Path, *extra: str) -> DataConfig:
    return typed_config("train", ["data.format=rawframes", f"data.root={root}", f"data.train_list={root}/train.txt",
                                  "data.clip_len=4", "data.frame_interval=2", f"data.short_side={SIZE}",
                                  f"data.crop_size={SIZE}", "data.num_workers=0", *extra]).data


# --------------------------------------------------------------------------- the format


def test_rawframes_is_a_registered_format_that_owns_its_keys():
    assert "rawframes" in FORMAT_NAMES and format_of(DataConfig(format="rawframes")).frames
    assert not any(format_of(DataConfig(format=name)).frames for name in FORMAT_NAMES if name != "rawframes")
    for key in ("filename_tmpl", "start_index", "fps"):
        assert key_owners(key) == ("rawframes",)
    with pytest.raises(Action3dError, match=r"^data.fps does not apply here: it applies to data.format=rawframes"):
        compose_config("train", ["data.fps=25"])


def test_list_lines_give_folders_counts_and_labels(rawset):
    samples, classes = format_of(rawframes_cfg(rawset)).load_split("train")
    assert classes == ["walk", "run"]
    assert samples == [(str(rawset / "videos" / n), label) for n, label in (("a", 0), ("b", 1), ("c", 1))]
    (rawset / "multi.txt").write_text("videos/a 8 1 0\n")
    assert read_rawframe_list(rawset / "multi.txt", multi_label=True) == [(str(rawset / "videos/a"), 8, (0, 1))]


@pytest.mark.parametrize("line, message", [
    ("videos/a 8", r"expected 'VIDEO total_frames label' \(at least 3 fields"),
    ("videos/a eight 0", r"total_frames 'eight' is not a positive integer"),
    ("videos/a 0 0", r"total_frames '0' is not a positive integer"),
    ("videos/a 8 2", r"label 2 is out of range \(allowed: 0..1\)"),
    ("videos/a 8 0 1", r"expected one label, got 2 .*data.multi_label=true"),
    ("videos/a 8 0\nvideos/a 9 0", r"videos/a has total_frames 9 here and 8 on line 2"),
])
def test_bad_list_lines_are_one_line_errors_naming_file_and_line(rawset, line, message):
    (rawset / "train.txt").write_text(f"# header\n{line}\n")
    with pytest.raises(Action3dError) as err:
        format_of(rawframes_cfg(rawset)).load_split("train")
    number = 3 if "\n" in line else 2
    assert str(err.value).startswith(f"{rawset / 'train.txt'}:{number}: ") and "\n" not in str(err.value)
    assert re.search(message, str(err.value)), str(err.value)


def test_frame_counts_are_compact_and_exact(rawset):
    counts = FrameCounts.from_list(rawset / "train.txt", root=str(rawset))
    assert len(counts) == 3 and counts.get(str(rawset / "videos/b")) == 8
    assert counts.get(str(rawset / "videos/bb")) is None and counts.get("/elsewhere/a") is None
    assert counts.keys.dtype.kind == "S" and counts.counts.dtype == np.int64   # no Python objects per folder


# --------------------------------------------------------------------------- the clips are the JPEGs


def test_clips_equal_the_jpegs_the_sample_indices_name(rawset):
    cfg = rawframes_cfg(rawset, "data.flip=false")
    test_set = build_dataset(cfg, "train", train=False)
    assert isinstance(test_set, FrameFolderDataset)
    for index, (folder, _) in enumerate(test_set.samples):
        clip, label, _ = test_set[index]
        expected = decoded(Path(folder), sample_frames(FRAMES, clip_len=4, frame_interval=2, train=False))
        assert torch.equal(clip, expected)   # short side and crop = the frame: the test view is the frame itself
    train_set = build_dataset(cfg, "train", train=True, seed=3)
    for index, (folder, _) in enumerate(train_set.samples):
        frames = train_set._decode(folder, np.random.default_rng(index))
        indices = sample_frames(FRAMES, clip_len=4, frame_interval=2, train=True, rng=np.random.default_rng(index))
        assert torch.equal(frames[0], decoded(Path(folder), indices))


def test_filename_tmpl_and_start_index_read_charades_folders(tmp_path):
    charades = write_folder(tmp_path / "46GP8", template="{video}-{:06}.jpg")   # Charades: ID/ID-000001.jpg
    with FrameFolderReader(charades, FRAMES, filename_tmpl="{video}-{:06}.jpg") as reader:
        assert torch.equal(reader.read([0, 7, 3]), decoded(charades, [0, 7, 3], template="{video}-{:06}.jpg"))
    with pytest.raises(FrameError, match=r"46GP8: frame 0 is missing \(img_00001.jpg"):
        FrameFolderReader(charades, FRAMES).read([0])                  # mmaction2's default names: not these
    zero = write_folder(tmp_path / "zero", FRAMES + 1, start=0)         # img_00000.jpg ... img_00008.jpg
    from_one = FrameFolderReader(zero, FRAMES).read(range(FRAMES))
    from_zero = FrameFolderReader(zero, FRAMES + 1, start_index=0).read(range(FRAMES + 1))
    assert torch.equal(from_one, from_zero[:, 1:])                      # start_index shifts frame i by one file
    cfg = typed_config("train", ["data.format=rawframes", "data.train_list=t.txt", "data.start_index=0",
                                 "data.filename_tmpl='{video}-{:06}.jpg'"]).data
    assert (cfg.start_index, cfg.filename_tmpl) == (0, "{video}-{:06}.jpg")


def test_a_folder_no_list_counts_is_counted(tmp_path):
    folder = write_folder(tmp_path / "v", 5)
    (folder / "flow_x_00001.jpg").write_bytes(b"not ours")
    assert FrameFolderReader(folder).num_frames == 5
    with pytest.raises(FrameError, match="no such frame folder"):
        FrameFolderReader(tmp_path / "gone")


def test_decode_short_side_and_threads(rawset):
    folder = rawset / "videos" / "a"
    full = FrameFolderReader(folder, FRAMES).read([1, 5, 1])
    half = FrameFolderReader(folder, FRAMES, short_side=16).read([1, 5, 1])
    assert half.shape == (3, 3, 16, 16) and torch.equal(half, resize(full, (16, 16)))
    wide = write_folder(rawset / "wide", 2, size=(32, 48))
    assert FrameFolderReader(wide, 2, short_side=16).read([0]).shape == (3, 1, 16, 24)   # aspect kept
    threaded = FrameFolderReader(folder, FRAMES, threads=2).read([1, 5, 1])
    assert torch.equal(threaded, full)
    dataset = build_dataset(rawframes_cfg(rawset, "data.decode_short_side=16", "data.crop_size=16",
                                          "data.short_side=16", "data.decode_threads=2"), "train", train=False)
    assert dataset[0][0].shape == (3, 4, 16, 16)


def test_autorotate_follows_the_jpegs_exif_orientation(tmp_path):
    image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "phone"
    folder.mkdir()
    exif = image.Exif()
    exif[0x0112] = 6                                                     # rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(buffer, format="JPEG", exif=exif.tobytes())
    (folder / "img_00001.jpg").write_bytes(buffer.getvalue())
    assert FrameFolderReader(folder, 1).read([0]).shape == (3, 1, 32, 16)                    # upright
    assert FrameFolderReader(folder, 1, autorotate=False).read([0]).shape == (3, 1, 16, 32)  # as stored


def test_a_video_file_sample_is_read_as_a_video(tmp_path):
    """predict with a checkpoint trained on frame folders scores video files."""
    video = tmp_path / "clip.mp4"
    write_video(video, np.full((8, 32, 32, 3), 100, np.uint8), fps=25)
    dataset = FrameFolderDataset([(str(video), -1)], counts=FrameCounts(), transform=lambda c, rng: c,
                                 train=False, clip_len=4)
    assert dataset[0][0].shape == (3, 4, 32, 32) and not dataset.drain_failures()


# --------------------------------------------------------------------------- corrupt and missing frames


def test_missing_and_corrupt_frames_are_handled_as_corrupt_videos(rawset):
    (rawset / "videos" / "b" / "img_00005.jpg").unlink()
    (rawset / "videos" / "c" / "img_00003.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage, not a JPEG")
    cfg = rawframes_cfg(rawset, "data.frame_interval=1", "data.clip_len=8")   # every clip needs every frame
    evaluation = build_dataset(cfg, "train", train=False)
    labels = [evaluation[i][1] for i in range(3)]
    assert labels == [0, -1, -1] and not evaluation[1][0].any()               # marked: zeros, label -1
    reasons = dict(evaluation.drain_failures(log_new=False))
    assert "frame 4 is missing (img_00005.jpg" in reasons[str(rawset / "videos" / "b")]
    assert "img_00003.jpg: not a readable JPEG" in reasons[str(rawset / "videos" / "c")]
    assert (evaluation._tried, len(evaluation._window_failures)) == (3, 2)    # counted towards max_fail_ratio
    training = build_dataset(cfg, "train", train=True, seed=0)
    assert all(training[(0, i)][1] == 0 for i in range(3))                     # replaced by the good video
    (rawset / "videos" / "a" / "img_00001.jpg").unlink()
    with pytest.raises(DatasetBrokenError, match=r"20 files in a row failed to decode"):
        build_dataset(cfg, "train", train=True, seed=0)[(0, 0)]                # every folder broken: the run stops


def test_frames_of_another_size_make_the_video_fail(rawset):
    write_folder(rawset / "videos" / "a", 1, size=(16, 16), start=4)           # img_00004.jpg: 16x16
    with pytest.raises(FrameError, match=r"img_00004.jpg: 16x16 pixels, the clip's first frame 32x32"):
        FrameFolderReader(rawset / "videos" / "a", FRAMES).read([0, 3])


# --------------------------------------------------------------------------- frame rates


def test_target_fps_on_frame_folders_needs_their_rate(rawset):
    with pytest.raises(ConfigError, match=r"^data.target_fps=15.0 is not allowed: frame folders carry no frame rate: "
                                          r"give theirs as data.fps=F"):
        compose_config("train", ["data.format=rawframes", "data.train_list=t.txt", "data.target_fps=15"])
    cfg = rawframes_cfg(rawset)
    with pytest.raises(Action3dError, match=r"^data.target_fps=15 is not allowed"):    # a library call: the same rule
        frame_folder_dataset(dataclasses.replace(cfg, target_fps=15.0), "train")
    with pytest.raises(Action3dError, match=r"^eval.protocol=pyslowfast places clips by the frame rate"):
        frame_folder_dataset(cfg, "train", protocol="pyslowfast")


def test_with_fps_the_folders_are_resampled_to_target_fps(rawset):
    folder = rawset / "videos" / "a"
    reader = at_frame_rate(FrameFolderReader(folder, FRAMES, fps=30.0), 15.0)
    assert reader.num_frames == 4 and reader.fps == 15.0
    assert torch.equal(reader.read([0, 1, 2, 3]), decoded(folder, [0, 2, 4, 6]))   # every 2nd native frame
    cfg = rawframes_cfg(rawset, "data.fps=30", "data.target_fps=15", "data.frame_interval=1")
    clip, _, _ = build_dataset(cfg, "train", train=False)[0]
    assert torch.equal(clip, decoded(folder, [0, 2, 4, 6]))                         # 4 frames at 15 fps
    slower = rawframes_cfg(rawset, "data.fps=20", "data.target_fps=15", "data.frame_interval=1")
    clip, _, _ = build_dataset(slower, "train", train=False)[0]
    native = resample_indices(FRAMES, 20.0, 15.0)                                   # floor(j x 20 / 15): 6 frames
    assert native.tolist() == [0, 1, 2, 4, 5, 6]
    assert torch.equal(clip, decoded(folder, native[sample_frames(6, clip_len=4, frame_interval=1, train=False)]))
