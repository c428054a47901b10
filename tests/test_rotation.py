"""Phone videos (a display matrix) are read as people see them: upright, like players and ffmpeg.

The same upright frames are encoded once upright and once stored sideways (or upside down, or
mirrored) with the display matrix that makes a player show them upright. The reader must return
the upright-encoded video's frames from every one of them, within codec tolerance; the frames
turned the other way must fail that comparison, so a sign error in the angle cannot pass.

The matrices are written by hand from FFmpeg's definition (libavutil/display.h: a stored pixel
(p, q) goes to (a*p + c*q, b*p + d*q), a, b, c, d = m[0], m[1], m[3], m[4], 16.16 fixed point),
not with PyAV's helper, so the test does not share a convention with the code it checks.
"""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from action3d.config import DataConfig
from action3d.data.dataset import build_dataset
from action3d.data.decode import VideoReader, read_all_frames
from action3d.data.orientation import UPRIGHT, Orientation, frame_orientation, orientation_from_matrix
from action3d.data.prepare import transcode
from action3d.data.video_writer import write_video

ONE, W = 1 << 16, 1 << 30  # 1.0 in 16.16 fixed point; the matrix's last entry (2.30)
FRAMES, HEIGHT, WIDTH = 8, 48, 32  # upright: a portrait clip

# name -> (display matrix, numpy quarter turns counter-clockwise from upright to stored, mirrored)
STORED = {
    # iPhone portrait: stored landscape, matrix (0, 1, -1, 0): x' = -y, y' = x, a quarter turn
    # clockwise on screen (ffprobe: "rotation of -90.00 degrees"). So the file holds the upright
    # picture turned a quarter counter-clockwise.
    "rotate_cw90": ([0, ONE, 0, -ONE, 0, 0, 0, 0, W], 1, False),
    # the other quarter turn: x' = y, y' = -x, counter-clockwise on screen (rotation 90)
    "rotate_ccw90": ([0, -ONE, 0, ONE, 0, 0, 0, 0, W], -1, False),
    # upside down: x' = -x, y' = -y
    "rotate_180": ([-ONE, 0, 0, 0, -ONE, 0, 0, 0, W], 2, False),
    # a selfie camera's mirror image: x' = -x
    "mirrored": ([-ONE, 0, 0, 0, ONE, 0, 0, 0, W], 0, True),
}


def upright_frames() -> np.ndarray:
    """(T, H, W, 3) portrait frames nobody could mistake turned: smooth ramps, a bright patch in
    the top-left corner and a dark bar at the bottom, moving a little every frame."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = np.empty((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    for t in range(FRAMES):
        frames[t, ..., 0] = 40 + 4 * y
        frames[t, ..., 1] = 40 + 5 * x
        frames[t, ..., 2] = 120 + t * 8
        frames[t, 2 + t:10 + t, 2:10] = 250
        frames[t, HEIGHT - 8:, :] = 10
    return frames


def stored_orientation(frames: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """(..., H, W, 3) as the file stores them (numpy's rot90 turns counter-clockwise)."""
    stored = np.rot90(frames, k=turns, axes=(-3, -2))
    return np.ascontiguousarray(stored[..., ::-1, :] if mirrored else stored)


def as_frames(clip: torch.Tensor) -> np.ndarray:
    return clip.permute(1, 2, 3, 0).numpy()  # (C, T, H, W) -> (T, H, W, C)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


TOLERANCE = 3.0   # mean abs difference in 0-255 levels: measured ~1 between the two encodings
WRONG = 20.0      # a frame turned the wrong way differs by far more than this


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rotation")
    frames = upright_frames()
    paths = {"upright": folder / "upright.mp4"}
    write_video(paths["upright"], frames, crf=10, gop=4, bframes=2)
    for name, (matrix, turns, mirrored) in STORED.items():
        paths[name] = folder / f"{name}.mp4"
        write_video(paths[name], stored_orientation(frames, turns, mirrored), crf=10, gop=4, bframes=2,
                    display_matrix=matrix)
    return paths


@pytest.fixture(scope="module")
def upright_decoded(videos) -> np.ndarray:
    with VideoReader(videos["upright"]) as reader:
        return as_frames(reader.read(range(FRAMES)))


def test_the_encoding_itself_is_close_enough_to_tell_orientations_apart(upright_decoded):
    assert mean_abs_diff(upright_decoded, upright_frames()) < TOLERANCE
    for turns in (1, 2, 3):
        assert mean_abs_diff(np.rot90(upright_decoded, turns, axes=(1, 2)).copy(), upright_decoded) > WRONG


@pytest.mark.parametrize("name", list(STORED))
def test_sideways_phone_videos_read_upright(videos, upright_decoded, name):
    _, turns, mirrored = STORED[name]
    with VideoReader(videos[name]) as reader:
        assert (reader.width, reader.height) == (WIDTH, HEIGHT)
        got = as_frames(reader.read(range(FRAMES)))
    assert mean_abs_diff(got, upright_decoded) < TOLERANCE
    # the stored frames turned the other way (a sign error), flipped about one axis only, or left
    # as stored, are far off
    stored = stored_orientation(upright_decoded, turns, mirrored)
    wrong_way = np.rot90(stored, k=turns, axes=(1, 2)) if turns % 2 else stored[:, ::-1]
    assert mean_abs_diff(np.ascontiguousarray(wrong_way), upright_decoded) > WRONG
    assert mean_abs_diff(stored, upright_decoded) > WRONG


@pytest.mark.parametrize("name", list(STORED))
def test_autorotate_false_keeps_the_stored_orientation(videos, upright_decoded, name):
    _, turns, mirrored = STORED[name]
    stored = stored_orientation(upright_decoded, turns, mirrored)
    with VideoReader(videos[name], autorotate=False) as reader:
        assert reader.orientation == UPRIGHT
        assert (reader.height, reader.width) == stored.shape[1:3]
        assert mean_abs_diff(as_frames(reader.read(range(FRAMES))), stored) < TOLERANCE
    assert mean_abs_diff(as_frames(read_all_frames(videos[name], autorotate=False)), stored) < TOLERANCE


def test_pyav_reads_the_iphone_matrix_as_minus_90_and_rot90_agrees(videos):
    """PyAV's frame.rotation (counter-clockwise degrees) on the hand-written matrices, and the
    reader's orientation equals numpy's rot90 by that angle on every pure rotation."""
    expected = {"rotate_cw90": -90, "rotate_ccw90": 90, "rotate_180": 180}
    stored = np.random.default_rng(0).integers(0, 256, (2, 6, 4, 3), dtype=np.uint8)
    for name, degrees in expected.items():
        with av.open(str(videos[name])) as container:
            frame = next(container.decode(video=0))
        assert frame.rotation == degrees or (degrees == 180 and frame.rotation == -180)
        orientation = frame_orientation(frame)
        assert np.array_equal(orientation.apply(stored), np.rot90(stored, frame.rotation // 90, axes=(1, 2)))


def test_orientation_from_matrix_snaps_and_covers_mirrors():
    assert orientation_from_matrix([ONE, 0, 0, 0, ONE, 0, 0, 0, W]) == UPRIGHT
    # 80 degrees counter-clockwise snaps to 90
    c, s = round(np.cos(np.radians(80)) * ONE), round(np.sin(np.radians(80)) * ONE)
    assert orientation_from_matrix([c, -s, 0, s, c, 0, 0, 0, W]) == orientation_from_matrix(STORED["rotate_ccw90"][0])
    assert orientation_from_matrix(STORED["mirrored"][0]) == Orientation(hflip=True)
    assert Orientation(transpose=True).size(640, 480) == (480, 640)


@pytest.mark.parametrize("name", ["rotate_cw90", "rotate_180"])
def test_frame_exact_on_the_upright_frames_with_decoder_resize(videos, name):
    """read() equals a full sequential decode on the upright frames; short_side is the upright
    frame's short side."""
    reference = read_all_frames(videos[name], short_side=16)
    assert reference.shape == (3, FRAMES, 24, 16)
    with VideoReader(videos[name], short_side=16) as reader:
        assert (reader.width, reader.height) == (16, 24)
        for indices in ([0], [7, 0, 3, 3], list(range(FRAMES))):
            assert torch.equal(reader.read(indices), reference[:, indices])


def test_width_and_height_before_any_read_decode_the_first_frame(videos):
    with VideoReader(videos["rotate_cw90"], short_side=16) as reader:
        assert reader._orientation is None
        assert (reader.width, reader.height) == (16, 24)   # asks the first frame
        assert reader.read([2]).shape == (3, 1, 24, 16)


def test_a_video_without_a_matrix_is_left_alone(videos, upright_decoded):
    with VideoReader(videos["upright"]) as reader:
        reader.read([0])
        assert reader.orientation == UPRIGHT


def small_data(**overrides):
    return OmegaConf.structured(DataConfig(clip_len=4, frame_interval=2, num_clips=1, short_side=16,
                                           crop_size=16, num_workers=0, **overrides))


@pytest.mark.parametrize("autorotate", [True, False])
def test_dataset_clips_of_a_portrait_phone_video_are_upright(videos, autorotate):
    """What training and `predict` load (build_dataset on given files, three crops along the long
    side): from the sideways phone video the same clips as from the upright one with
    data.autorotate=true, and sideways ones with false."""
    data = small_data(autorotate=autorotate)
    samples = [(str(videos["upright"]), 0), (str(videos["rotate_cw90"]), 0)]
    dataset = build_dataset(data, "val", train=False, num_crops=3, samples=samples)
    upright, phone = dataset[0][0], dataset[1][0]        # (3 crops, C, T, 16, 16)
    assert upright.shape == phone.shape == (3, 3, 4, 16, 16)
    difference = (upright.float() - phone.float()).abs().mean().item()
    if autorotate:
        assert difference < TOLERANCE
    else:
        assert difference > WRONG


@pytest.mark.parametrize("autorotate", [True, False])
def test_data_prepare_writes_upright_frames_without_a_display_matrix(videos, upright_decoded, tmp_path,
                                                                     autorotate):
    """`data prepare` with data.autorotate writes the phone video upright; without it, as stored.
    Neither output carries a display matrix, so it reads the same with either setting."""
    target = tmp_path / "prepared.mp4"
    assert transcode(str(videos["rotate_cw90"]), str(target), short_side=128, gop=4, crf=10,
                     autorotate=autorotate) == FRAMES
    with av.open(str(target)) as container:
        assert frame_orientation(next(container.decode(video=0))) == UPRIGHT
    expected = upright_decoded if autorotate else stored_orientation(upright_decoded, 1, False)
    for reader_autorotate in (True, False):
        assert mean_abs_diff(as_frames(read_all_frames(target, autorotate=reader_autorotate)), expected) < TOLERANCE
