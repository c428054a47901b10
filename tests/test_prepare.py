"""`data prepare`: re-encoded videos are smaller, keyframe-dense, complete, and resumable."""
import av
import numpy as np
import pytest

from action3d.data import prepare
from action3d.data.decode import VideoReader, read_all_frames
from action3d.data.prepare import FAILURES_FILE, prepare_dataset
from action3d.data.video_writer import write_video
from action3d.errors import Action3dError


def moving_frames(num_frames, height, width, seed=0):
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height // 8 + 1, (width + num_frames) // 8 + 1, 3), np.uint8)
    texture = texture.repeat(8, 0).repeat(8, 1)  # 8x8 blocks: survives downscaling
    return np.stack([texture[:height, t:t + width] for t in range(num_frames)])


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "raw"
    (root / "walk").mkdir(parents=True)
    (root / "run").mkdir()
    landscape, portrait = root / "walk" / "a.mp4", root / "run" / "b.avi"
    write_video(landscape, moving_frames(30, 96, 160), gop=30, bframes=3)
    write_video(portrait, moving_frames(21, 128, 72, seed=1), codec="mpeg4", gop=30, bframes=2)
    return root, [(str(landscape), 0), (str(portrait), 1)]


def keyframe_positions(path):
    with av.open(str(path)) as container:
        found = sorted((p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size)
    return [i for i, (_, key) in enumerate(found) if key]


def test_prepare_resizes_and_shortens_the_keyframe_interval(dataset, tmp_path):
    root, samples = dataset
    out = tmp_path / "prepared"
    result = prepare_dataset(samples, root=root, out=out, short_side=48, gop=8, workers=2,
                             progress=False)
    assert result == [("walk/a.mp4", 0), ("run/b.mp4", 1)]
    for (source, _), (relative, _), size in zip(samples, result, [(80, 48), (48, 84)]):
        with VideoReader(out / relative) as reader:
            assert (reader.width, reader.height) == size
            assert reader.num_frames == VideoReader(source).num_frames
        assert keyframe_positions(out / relative)[:3] == [0, 8, 16]
        # same pictures, smaller: compare with the source scaled by the decoder
        original = read_all_frames(source, short_side=48).float()
        prepared = read_all_frames(out / relative).float()
        height, width = prepared.shape[-2:]  # rounded down to even numbers for yuv420p
        original = original[..., :height, :width]
        same = (original - prepared).abs().mean()
        shifted = (original[:, 5:] - prepared[:, :-5]).abs().mean()  # 5 frames off
        assert same < shifted / 2, (same, shifted)
    assert not (out / FAILURES_FILE).exists()


def test_second_run_skips_finished_files(dataset, tmp_path, monkeypatch):
    root, samples = dataset
    out = tmp_path / "prepared"
    prepare_dataset(samples[:1], root=root, out=out, short_side=48, gop=8, workers=1,
                    progress=False)
    finished = (out / "walk/a.mp4").stat().st_mtime_ns
    (out / "run").mkdir()
    (out / "run/b.mp4.part").write_bytes(b"half a file from a killed run")

    calls = []
    original = prepare.transcode
    monkeypatch.setattr(prepare, "transcode", lambda src, dst, **kw: calls.append(src) or
                        original(src, dst, **kw))
    result = prepare_dataset(samples, root=root, out=out, short_side=48, gop=8, workers=1,
                             progress=False)
    assert calls == [samples[1][0]]  # only the unfinished one
    assert (out / "walk/a.mp4").stat().st_mtime_ns == finished
    assert result == [("walk/a.mp4", 0), ("run/b.mp4", 1)]
    assert not (out / "run/b.mp4.part").exists()
    assert VideoReader(out / "run/b.mp4").num_frames == 21


def test_broken_input_is_reported_not_fatal(dataset, tmp_path):
    root, samples = dataset
    broken = root / "walk" / "broken.mp4"
    broken.write_bytes(b"\x00\x01 not a video" * 50)
    out = tmp_path / "prepared"
    result = prepare_dataset([(str(broken), 0), *samples], root=root, out=out, short_side=48,
                             gop=8, workers=1, progress=False)
    assert result == [("walk/a.mp4", 0), ("run/b.mp4", 1)]
    report = (out / FAILURES_FILE).read_text().splitlines()
    assert len(report) == 1 and str(broken) in report[0]
    assert not (out / "walk/broken.mp4").exists()
    assert not list(out.rglob("*.part"))


def test_variable_frame_rate_timestamps_survive(tmp_path):
    times = [0.0, 0.04, 0.05, 0.2, 0.23, 0.5, 0.52, 0.9, 1.0, 1.3]
    source = tmp_path / "raw" / "vfr.mp4"
    source.parent.mkdir()
    write_video(source, moving_frames(len(times), 64, 64), timestamps=times, bframes=2)
    prepare_dataset([(str(source), 3)], root=tmp_path / "raw", out=tmp_path / "out",
                    short_side=32, gop=4, workers=1, progress=False)
    with av.open(str(tmp_path / "out" / "vfr.mp4")) as container:
        stream = container.streams.video[0]
        seconds = sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.size)
    assert seconds == pytest.approx(times, abs=1e-3)
    assert read_all_frames(tmp_path / "out" / "vfr.mp4").shape == (3, 10, 32, 32)


def test_samples_outside_root_are_refused(dataset, tmp_path):
    root, samples = dataset
    with pytest.raises(Action3dError, match="not under data.root"):
        prepare_dataset(samples, root=root / "walk", out=tmp_path / "o", progress=False)


# --------------------------------------------------------------------------- parts (issue 16)


@pytest.fixture()
def listed_dataset(tmp_path):
    """Seven videos (one broken, one listed in both splits) with list files, as `data=folder`."""
    root = tmp_path / "raw"
    lines = {"train": [], "val": []}
    for i in range(6):
        path = root / f"c{i % 2}" / f"v{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, moving_frames(8, 48, 64, seed=i), gop=8)
        lines["train" if i < 4 else "val"].append(f"c{i % 2}/v{i}.mp4 {i % 2}")
    (root / "c1" / "broken.mp4").write_bytes(b"\x00 not a video" * 40)
    lines["train"].append("c1/broken.mp4 1")
    lines["val"].append("c0/v0.mp4 0")                      # shared by both splits: prepared once
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("c0\nc1\n")
    return root


def run_prepare(root, out, *extra):
    from action3d.commands import data as data_command
    from action3d.commands._hydra import compose_config

    cfg = compose_config("data", ["action=prepare", "data=folder", f"data.root={root}",
                                  f"data.train_list={root}/train.txt", f"data.val_list={root}/val.txt",
                                  f"out={out}", "short_side=32", "gop=4", "workers=1", *extra])
    return data_command.run(cfg)


def prepared_tree(out):
    """Every file a prepare run leaves: the lists' text, each video's frame count and size
    (x264's output bytes may differ from run to run)."""
    return {str(p.relative_to(out)): (VideoReader(p).num_frames, VideoReader(p).width) if p.suffix == ".mp4"
            else p.read_text() for p in sorted(out.rglob("*")) if p.is_file() and ".parts" not in p.parts}


def test_union_of_parts_equals_one_machine_run(listed_dataset, tmp_path):
    run_prepare(listed_dataset, tmp_path / "one")
    parts = tmp_path / "parts"
    made = []
    for i in (2, 3, 1):                                     # any order, e.g. a SLURM array
        before = set(parts.rglob("*.mp4")) if parts.exists() else set()
        run_prepare(listed_dataset, parts, f"part={i}/3")
        made.append(set(parts.rglob("*.mp4")) - before)
        assert not (parts / "train.txt").exists()           # the lists wait for merge=true
    assert all(made) and sum(len(m) for m in made) == 6    # disjoint parts cover every video once
    run_prepare(listed_dataset, parts, "merge=true")
    assert prepared_tree(parts) == prepared_tree(tmp_path / "one")
    assert "broken.mp4" in (parts / "prepare_failures.txt").read_text()
    assert len((parts / "train.txt").read_text().splitlines()) == 4 and "v0.mp4" in (parts / "val.txt").read_text()


def test_merge_names_unfinished_parts_and_parts_rerun_resumably(listed_dataset, tmp_path, monkeypatch):
    out = tmp_path / "parts"
    run_prepare(listed_dataset, out, "part=1/2")
    with pytest.raises(Action3dError, match=r"part\(s\) 2/2 have not finished"):
        run_prepare(listed_dataset, out, "merge=true")
    calls = []
    original = prepare.transcode
    monkeypatch.setattr(prepare, "transcode", lambda src, dst, **kw: calls.append(src) or original(src, dst, **kw))
    run_prepare(listed_dataset, out, "part=1/2")             # resumable: only its failed video again
    assert [c.rsplit("/", 1)[1] for c in calls] in ([], ["broken.mp4"])
    (listed_dataset / "val.txt").write_text("c0/v4.mp4 0\n")
    run_prepare(listed_dataset, out, "part=2/2")
    with pytest.raises(Action3dError, match=r"part\(s\) 1/2 ran on another video list"):
        run_prepare(listed_dataset, out, "merge=true")


@pytest.mark.parametrize("overrides, message", [
    (["part=0/4"], "part=0/4 is not allowed: expected I/N with 1 <= I <= N"),
    (["part=5/4"], "part=5/4 is not allowed: expected I/N with 1 <= I <= N"),
    (["part=half"], "part=half is not allowed: expected I/N, the I-th of N parts"),
    (["part=1/2", "merge=true"], "merge=True is not allowed: merge=true writes the lists of all finished parts"),
    (["action=check", "part=1/2"], "part does not apply here: data check does not read it"),
    (["shard_mb=0"], "shard_mb=0.0 is not allowed: must be > 0"),
])
def test_part_merge_and_shard_mb_are_checked_in_one_line(overrides, message):
    from action3d.commands._hydra import compose_config

    with pytest.raises(Action3dError) as err:
        compose_config("data", ["action=prepare", "out=prepared", *overrides])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
