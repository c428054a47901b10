"""write_video / VideoEncoder: what a reader of the file sees (frames, keyframes, timestamps)."""
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from action3d.data.decode import read_all_frames
from action3d.data.video_writer import VideoEncoder, write_video
from action3d.errors import Action3dError


def smooth_frames(num_frames=12, height=32, width=48, seed=0):
    """A panning smooth gradient plus a colour per frame: compresses well, frames all differ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        colour = rng.integers(40, 200, 3)
        frames[t] = np.clip(colour + ((x + 3 * t) % width)[..., None] * 2 - y[..., None], 0, 255)
    return frames


def packets(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe) for p in container.demux(stream) if p.size], \
            stream.time_base


def test_frames_round_trip_nearly_lossless(tmp_path):
    frames = smooth_frames()
    path = tmp_path / "v.mp4"
    write_video(path, torch.from_numpy(frames), fps=10, crf=0, pix_fmt="yuv444p")
    decoded = read_all_frames(path)  # (C, T, H, W)
    assert decoded.shape == (3, 12, 32, 48)
    error = (decoded.permute(1, 2, 3, 0).int() - torch.from_numpy(frames).int()).abs()
    assert error.max() <= 3  # only the RGB <-> YUV rounding is lost


def test_gop_sets_the_keyframe_interval(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, smooth_frames(20), gop=6)
    found, _ = packets(path)
    keyframes = [i for i, (_, _, key) in enumerate(sorted(found)) if key]
    assert keyframes == [0, 6, 12, 18]


@pytest.mark.parametrize("bframes", [0, 2])
def test_bframes_reorder_packets(tmp_path, bframes):
    path = tmp_path / "v.mp4"
    write_video(path, smooth_frames(16), bframes=bframes)
    found, _ = packets(path)
    decode_order_is_presentation_order = [p for p, _, _ in found] == sorted(p for p, _, _ in found)
    assert decode_order_is_presentation_order == (bframes == 0)


def test_timestamps_and_start_time_are_kept(tmp_path):
    times = [0.0, 0.05, 0.07, 0.2, 0.21, 0.4, 0.45, 0.8]
    path = tmp_path / "vfr.mp4"
    write_video(path, smooth_frames(len(times)), timestamps=times, start_time=1.5, bframes=2)
    found, time_base = packets(path)
    seconds = sorted(float(pts * time_base) for pts, _, _ in found)
    assert seconds == pytest.approx([t + 1.5 for t in times], abs=1e-4)


def test_streaming_encoder_with_custom_time_base(tmp_path):
    path = tmp_path / "s.mkv"
    frames = smooth_frames(5)
    with VideoEncoder(path, width=48, height=32, time_base=Fraction(1, 1000)) as encoder:
        for i, frame in enumerate(frames):
            encoder.write(frame, pts=100 * i)
    found, time_base = packets(path)
    assert sorted(float(p * time_base) for p, _, _ in found) == pytest.approx([0, .1, .2, .3, .4])


@pytest.mark.parametrize("bad", [np.zeros((4, 32, 48), np.uint8), np.zeros((4, 32, 48, 3)),
                                 np.zeros((0, 32, 48, 3), np.uint8)])
def test_bad_frame_arrays_are_refused(tmp_path, bad):
    with pytest.raises(Action3dError, match="uint8 array"):
        write_video(tmp_path / "v.mp4", bad)


def test_odd_size_is_refused_for_yuv420p(tmp_path):
    with pytest.raises(Action3dError, match="even width and height"):
        write_video(tmp_path / "v.mp4", np.zeros((2, 31, 48, 3), np.uint8))
