"""`action3d predict ... window=S stride=S`: every window of a long video, a timeline, JSON and a plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from deploy_support import trained_checkpoint

from action3d.cli import main as cli_main
from action3d.commands import predict as predict_command
from action3d.commands._checkpoint import load_trained as load_trained_model
from action3d.commands._hydra import compose_config
from action3d.data.decode import VideoReader
from action3d.data.synthetic import write_sequence
from action3d.engine.predict import predict, predict_windows
from action3d.engine.windows import Window, merge_segments, plan_windows
from action3d.errors import Action3dError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(cache_dir):
    return load_trained_model(trained_checkpoint(cache_dir), torch.device("cpu"))


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """3 classes x 3 synthetic clips of 16 frames at 25 fps: 5.76 s, a cut every 0.64 s."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    truth = write_sequence(path, ["move_right", "move_up", "move_left"], clips_per_class=3, num_frames=16, size=64)
    return path, truth


# ------------------------------------------------------------------ planning and merging


def test_windows_cover_the_video_and_the_last_one_ends_with_it():
    windows = plan_windows(250, 25.0, window=3.0, stride=2.0, video="v.mp4")            # 10 s
    assert [(w.start, w.end) for w in windows] == [(0, 3), (2, 5), (4, 7), (6, 9), (7, 10)]
    assert [(w.first, w.stop) for w in windows][-2:] == [(150, 225), (175, 250)]
    back_to_back = plan_windows(200, 20.0, window=2.5, video="v.mp4")                   # stride defaults to window
    assert [(w.start, w.end) for w in back_to_back] == [(0, 2.5), (2.5, 5), (5, 7.5), (7.5, 10)]


def test_a_video_shorter_than_one_window_is_one_line_naming_it():
    with pytest.raises(Action3dError) as err:
        plan_windows(40, 25.0, window=2.0, video="clip.mp4")
    assert str(err.value).startswith("video=clip.mp4: 1.60 s (40 frames at 25 fps) is shorter than one window "
                                     "(window=2 s)")


def test_segments_merge_equal_neighbours_and_split_overlaps_half_way():
    windows = [Window(s, s + 2, 0, 0) for s in (0, 1, 2, 3, 4)]
    segments = merge_segments(windows, ["a", "a", "b", "b", "a"])
    assert [s.as_json() for s in segments] == [{"start": 0, "end": 2.5, "label": "a"},
                                                {"start": 2.5, "end": 4.5, "label": "b"},
                                                {"start": 4.5, "end": 6, "label": "a"}]
    assert [list(s.windows) for s in segments] == [[0, 1], [2, 3], [4]]


# ------------------------------------------------------------------ scoring


def test_a_window_spanning_the_video_scores_what_predict_scores(trained, long_video):
    """Windows are sampled the way eval samples a video: 3 clips spread over it, not the centre clip."""
    path, _ = long_video
    with VideoReader(path) as reader:
        duration = reader.num_frames / reader.fps
    whole = predict_windows(trained, str(path), window=duration, num_clips=3, progress=False)
    [expected] = predict(trained, [str(path)], num_clips=3)
    assert len(whole["windows"]) == 1
    assert np.allclose(whole["windows"][0]["scores"], expected["scores"], atol=1e-6)
    [centre] = predict(trained, [str(path)], num_clips=1)
    assert not np.allclose(expected["scores"], centre["scores"], atol=1e-3)


def test_windows_decode_one_window_at_a_time(trained, long_video, monkeypatch):
    path, _ = long_video
    opened, reads = [], []
    original_init, original_read = VideoReader.__init__, VideoReader.read
    monkeypatch.setattr(VideoReader, "__init__", lambda self, *a, **k: opened.append(1) or original_init(self, *a, **k))
    monkeypatch.setattr(VideoReader, "read", lambda self, idx: reads.append(len(idx)) or original_read(self, idx))
    result = predict_windows(trained, str(path), window=1.28, stride=0.64, num_clips=2, progress=False)
    assert len(opened) == 1 and len(reads) == len(result["windows"]) == 8
    assert max(reads) == 2 * trained.config.data.clip_len           # one window's two clips per read


def test_timeline_follows_the_classes_of_the_long_video(trained, long_video):
    path, truth = long_video
    result = predict_windows(trained, str(path), window=1.28, stride=0.64, topk=3, progress=False)
    windows, segments = result["windows"], result["segments"]
    assert [w["start"] for w in windows] == pytest.approx([0.64 * i for i in range(8)])
    assert all(len(w["topk"]) == 3 and w["topk"][0][1] >= w["topk"][1][1] for w in windows)
    assert segments[0].start == 0 and segments[-1].end == pytest.approx(5.76)
    assert all(a.end == b.start for a, b in zip(segments[:-1], segments[1:], strict=True))
    # the label at the middle of each true stretch is the stretch's class for most of them
    middles = [(name, (start + end) / 2) for name, start, end in truth]
    hits = [next(s.label for s in segments if s.start <= t < s.end) == name for name, t in middles]
    assert sum(hits) >= 2, (segments, truth)


# ------------------------------------------------------------------ the command


def _run(ckpt, *args):
    cfg = compose_config("predict", [f"ckpt={ckpt}", *args])
    return predict_command.run(cfg)


@pytest.mark.slow
def test_predict_with_window_prints_a_timeline_and_writes_json_and_png(trained, long_video, tmp_path, capsys):
    path, _ = long_video
    out_json, out_png = tmp_path / "t.json", tmp_path / "t.png"
    _run(trained.path, f"video={path}", "window=0.64", "stride=0.32", f"json={out_json}", f"timeline={out_png}",
         "topk=2")
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == f"{path}: 5.8 s, 17 windows of 0.64 s every 0.32 s (1 clip x 1 crop each)"
    assert all(" s  " in line and line.rstrip().endswith(("window)", "windows)")) for line in lines[1:-2])
    assert "long.mp4:   0%|" in captured.err and "/17 [" in captured.err   # the progress bar (from 10 windows on)
    report = json.loads(out_json.read_text())
    assert set(report) >= {"windows", "segments"} and len(report["windows"]) == 17
    first = report["windows"][0]
    assert set(first) == {"start", "end", "topk"} and first["start"] == 0 and first["end"] == 0.64
    assert len(first["topk"]) == 2 and isinstance(first["topk"][0][0], str)
    assert all(set(s) == {"start", "end", "label"} for s in report["segments"])
    assert out_png.read_bytes()[:8] == PNG_MAGIC


def test_predict_without_window_still_scores_whole_videos(trained, long_video, capsys):
    path, _ = long_video
    results = _run(trained.path, f"video={path}", "topk=3")
    assert len(results) == 1 and len(results[0]["top"]) == 3
    assert capsys.readouterr().out.splitlines()[0] == str(path)


def test_window_errors_name_the_file_or_the_key(trained, long_video, tmp_path, capsys):
    path, _ = long_video
    with pytest.raises(Action3dError) as err:                           # longer than the video
        _run(trained.path, f"video={path}", "window=60")
    assert str(err.value).startswith(f"video={path}: 5.76 s") and "\n" not in str(err.value)
    with pytest.raises(Action3dError) as err:
        _run(trained.path, f"video={tmp_path}", "window=1")
    assert str(err.value).startswith(f"video={tmp_path}: window= scores one long video")
    for args, key in ((["window=0"], "window=0"), (["window=-1"], "window=-1"), (["stride=1"], "stride=1"),
                      (["window=1", "stride=0"], "stride=0"), ([f"timeline={tmp_path / 'x.png'}"], "timeline=")):
        assert cli_main(["predict", f"ckpt={trained.path}", f"video={path}", *args]) == 2
        err_text = capsys.readouterr().err.strip()
        assert "\n" not in err_text and err_text.startswith(f"action3d predict: error: {key}"), err_text
