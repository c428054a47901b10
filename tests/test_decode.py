"""VideoReader returns exactly the frames of a full sequential decode, however the file is made."""
import wave

import av
import numpy as np
import pytest
import torch

from action3d.data import decode
from action3d.data.decode import DecodeError, VideoReader, read_all_frames
from action3d.data.video_writer import VideoEncoder, write_video

NUM_FRAMES = 75  # 3 s at 25 fps


def textured_frames(num_frames=NUM_FRAMES, height=64, width=96, seed=0):
    """A random texture panning one pixel per frame: every frame differs from every other."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height, width + num_frames, 3), dtype=np.uint8)
    return np.stack([texture[:, t:t + width] for t in range(num_frames)])  # (T, H, W, 3)


def vfr_times(num_frames=NUM_FRAMES, seed=1):
    gaps = np.random.default_rng(seed).uniform(0.01, 0.09, num_frames)
    return np.concatenate([[0.0], np.cumsum(gaps[1:])]).tolist()


VIDEOS = {  # name -> write_video keyword arguments
    "bframes": dict(bframes=3, gop=25),
    "shifted_start": dict(bframes=2, gop=20, start_time=1.37),
    "variable_rate": dict(bframes=2, gop=15, timestamps=vfr_times()),
    "short_gop": dict(bframes=0, gop=4),
    "open_gop": dict(bframes=3, gop=12, options={"x264-params": "open-gop=1"}),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    frames = textured_frames()
    paths = {}
    for name, options in VIDEOS.items():
        paths[name] = folder / f"{name}.mp4"
        if "options" in options:  # codec options: the streaming encoder takes them
            with VideoEncoder(paths[name], width=96, height=64, **options) as encoder:
                for frame in frames:
                    encoder.write(frame)
        else:
            write_video(paths[name], frames, **options)
    return paths


@pytest.fixture(scope="module")
def references(videos):
    return {name: read_all_frames(path) for name, path in videos.items()}


def index_sets(num_frames, seed=0):
    rng = np.random.default_rng(seed)
    yield [0]
    yield [num_frames - 1]
    yield [num_frames - 1, 0, num_frames - 1]                       # first/last, repeated
    yield list(range(5, 5 + 16 * 4, 4))                             # a 16x4 training clip
    for _ in range(8):
        chosen = rng.integers(0, num_frames, rng.integers(1, 24))
        yield sorted(chosen.tolist())
        yield chosen.tolist()                                       # unsorted, maybe repeated


@pytest.mark.parametrize("name", list(VIDEOS))
def test_random_frames_equal_sequential_decode(videos, references, name):
    reference = references[name]
    assert reference.shape == (3, NUM_FRAMES, 64, 96)
    with VideoReader(videos[name]) as reader:
        assert reader.num_frames == NUM_FRAMES
        for indices in index_sets(reader.num_frames):
            clip = reader.read(indices)
            assert clip.dtype == torch.uint8 and clip.shape == (3, len(indices), 64, 96)
            assert torch.equal(clip, reference[:, indices]), f"{name}: indices {indices}"


def test_open_gop_has_leading_b_frames(videos):
    """Guards the open_gop case: B-frames after a keyframe that are shown before it."""
    with av.open(str(videos["open_gop"])) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size]
    second_key = [i for i, (_, key) in enumerate(packets) if key][1]
    assert packets[second_key + 1][0] < packets[second_key][0]


def test_frames_all_differ(references):
    """Guards the test above: equal frames would make a wrong index pass unnoticed."""
    frames = references["bframes"].flatten(2)  # (C, T, H*W)
    assert all(not torch.equal(frames[:, i], frames[:, i + 1]) for i in range(NUM_FRAMES - 1))


def test_variable_rate_index_is_not_time_times_fps(videos, references):
    """Frame 40 of the VFR video is not at 40/fps seconds; the reader must still return it."""
    times = vfr_times()
    assert abs(times[40] - 40 / 25) > 0.1
    with VideoReader(videos["variable_rate"]) as reader:
        assert torch.equal(reader.read([40]), references["variable_rate"][:, [40]])


@pytest.mark.parametrize("size, short_side, expected", [((64, 96), 32, (32, 48)),
                                                        ((96, 64), 32, (48, 32)),
                                                        ((64, 96), 128, (128, 192))])
def test_short_side_resize(tmp_path, size, short_side, expected):
    height, width = size
    path = tmp_path / "v.mp4"
    write_video(path, textured_frames(10, height, width), bframes=2)
    reference = read_all_frames(path, short_side=short_side)
    with VideoReader(path, short_side=short_side) as reader:
        clip = reader.read([7, 2, 2])
    assert clip.shape == (3, 3, *expected)
    assert torch.equal(clip, reference[:, [7, 2, 2]])
    # scaled content, not a crop or garbage: close to a resize of the full-size frames
    full = read_all_frames(path)[:, [7]].float()
    resized = torch.nn.functional.interpolate(full[:, 0][None], size=expected, mode="bilinear")
    assert (resized[0] - clip[:, 0].float()).abs().mean() < 40


def test_unwanted_non_reference_frames_are_skipped(videos, references, monkeypatch):
    skipped = []

    def spy(data, length_size):
        result = original(data, length_size)
        skipped.append(result)
        return result

    original = decode.is_nonreference_h264
    monkeypatch.setattr(decode, "is_nonreference_h264", spy)
    indices = list(range(10, 60, 4))
    with VideoReader(videos["bframes"]) as reader:
        assert torch.equal(reader.read(indices), references["bframes"][:, indices])
    assert any(skipped), "x264 B-frames without references should have been skipped"


class LateSeekingContainer:
    """Wraps a container so that its first `late` seeks land far after the requested time."""

    def __init__(self, container, late):
        self.container, self.late, self.seeks = container, late, []

    def seek(self, offset, **kwargs):
        self.seeks.append(offset)
        if len(self.seeks) <= self.late:
            offset += 10**9  # the demuxer lands at the last keyframe
        self.container.seek(offset, **kwargs)

    def __getattr__(self, name):
        return getattr(self.container, name)


@pytest.mark.parametrize("late", [1, 10])
def test_late_seek_is_detected_and_retried(videos, references, late):
    indices = [30, 31, 45]
    with VideoReader(videos["bframes"]) as reader:
        wrapped = reader._container = LateSeekingContainer(reader._container, late)
        assert torch.equal(reader.read(indices), references["bframes"][:, indices])
        assert len(wrapped.seeks) >= 2  # the first (late) landing was not used


def test_far_apart_frames_seek_instead_of_decoding_through(videos, references):
    with VideoReader(videos["short_gop"]) as reader:
        wrapped = reader._container = LateSeekingContainer(reader._container, late=0)
        assert torch.equal(reader.read([1, 2, 3]), references["short_gop"][:, [1, 2, 3]])
        assert len(wrapped.seeks) == 1
        assert torch.equal(reader.read([2, 40, 70]), references["short_gop"][:, [2, 40, 70]])
        assert len(wrapped.seeks) == 4


@pytest.mark.parametrize("codec, bframes", [("mpeg4", 0), ("mpeg4", 2), ("libx264", 2)])
def test_avi(tmp_path, codec, bframes):
    """AVI stores decode-order timestamps: with B-frames the reader counts frames instead."""
    path = tmp_path / "v.avi"
    write_video(path, textured_frames(30), codec=codec, bframes=bframes, gop=8)
    reference = read_all_frames(path)
    with VideoReader(path) as reader:
        assert reader.num_frames == reference.shape[1] == 30
        for indices in ([3, 2, 1], [29, 0, 17, 17], [12]):
            assert torch.equal(reader.read(indices), reference[:, indices])


def test_raw_h264_without_timestamps(tmp_path):
    path = tmp_path / "v.h264"
    write_video(path, textured_frames(20), bframes=2, gop=5)
    reference = read_all_frames(path)
    with VideoReader(path) as reader:
        assert reader.num_frames == 20
        assert torch.equal(reader.read([19, 4, 5]), reference[:, [19, 4, 5]])


# -- bad files ----------------------------------------------------------------------------------

def make_bad_file(kind, folder, good):
    path = folder / f"{kind}.mp4"
    data = good.read_bytes()
    if kind == "missing":
        return path
    if kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    elif kind == "no_video_stream":
        path = folder / "audio.wav"
        with wave.open(str(path), "wb") as sound:
            sound.setnchannels(1), sound.setsampwidth(2), sound.setframerate(8000)
            sound.writeframes(bytes(16000))
    elif kind == "no_decodable_frames":  # a valid index over frame data wiped to zeros
        start = data.index(b"mdat") + 4
        end = data.index(b"moov") - 4
        path.write_bytes(data[:start] + bytes(end - start) + data[end:])
    return path


@pytest.mark.parametrize("kind", ["missing", "zero_bytes", "truncated", "random_bytes",
                                  "no_video_stream", "no_decodable_frames"])
def test_bad_files_raise_decode_error_naming_the_file(tmp_path, videos, kind):
    path = make_bad_file(kind, tmp_path, videos["short_gop"])
    with pytest.raises(DecodeError) as caught:
        with VideoReader(path) as reader:
            reader.read([0, 1])
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    with pytest.raises(DecodeError, match=str(path)):
        read_all_frames(path)


@pytest.mark.parametrize("indices", [[-1], [0, NUM_FRAMES], []])
def test_bad_indices_raise_decode_error(videos, indices):
    with VideoReader(videos["short_gop"]) as reader:
        with pytest.raises(DecodeError, match="short_gop.mp4"):
            reader.read(indices)
