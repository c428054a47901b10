"""Frame sampling: mmaction2's SampleFrames indices for known cases, train and test modes."""
import numpy as np
import pytest

from action3d.data.sampling import clip_indices, even_clip_offsets, random_clip_offsets, sample_frames
from action3d.errors import Action3dError


def test_test_mode_single_clip_is_centred():
    # span (8-1)*2+1 = 15 frames; last possible start 85; the single clip starts in the middle
    indices = sample_frames(100, clip_len=8, frame_interval=2, num_clips=1, train=False)
    assert indices.tolist() == [list(range(42, 58, 2))]


def test_test_mode_clips_spread_from_first_to_last_start():
    offsets = even_clip_offsets(100, clip_len=8, frame_interval=2, num_clips=3)
    assert offsets.tolist() == [0, 42, 85]  # round(0), round(42.5) (half to even), round(85)
    indices = sample_frames(100, clip_len=8, frame_interval=2, num_clips=3, train=False)
    assert indices.shape == (3, 8)
    assert indices[2].tolist() == list(range(85, 100, 2))  # the last clip ends on the last frame


def test_train_mode_draws_one_offset_per_segment():
    # span 4*2 = 8, segment (100 - 8 + 1) // 3 = 31: offsets 0/31/62 plus a draw below 31
    draws = np.random.default_rng(7).integers(31, size=3)
    offsets = random_clip_offsets(100, clip_len=4, frame_interval=2, num_clips=3, rng=np.random.default_rng(7))
    assert offsets.tolist() == (np.array([0, 31, 62]) + draws).tolist()
    indices = sample_frames(100, clip_len=4, frame_interval=2, num_clips=3, train=True,
                            rng=np.random.default_rng(7))
    assert indices.tolist() == [[o + 2 * k for k in range(4)] for o in offsets]


def test_train_mode_covers_every_start_and_stays_in_range():
    rng = np.random.default_rng(0)
    starts = {int(sample_frames(20, clip_len=4, frame_interval=2, train=True, rng=rng)[0, 0]) for _ in range(500)}
    assert starts == set(range(13))  # (20 - 8 + 1) possible starts, all reachable, none beyond


def test_train_mode_is_reproducible_for_a_seed():
    a = sample_frames(300, clip_len=8, frame_interval=4, train=True, rng=np.random.default_rng(3))
    b = sample_frames(300, clip_len=8, frame_interval=4, train=True, rng=np.random.default_rng(3))
    c = sample_frames(300, clip_len=8, frame_interval=4, train=True, rng=np.random.default_rng(4))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


@pytest.mark.parametrize("train", [True, False])
def test_short_video_loops_or_repeats_last_frame(train):
    rng = np.random.default_rng(0)
    loop = sample_frames(10, clip_len=8, frame_interval=2, train=train, rng=rng, out_of_bound="loop")
    last = sample_frames(10, clip_len=8, frame_interval=2, train=train, rng=rng, out_of_bound="repeat_last")
    assert loop.tolist() == [[0, 2, 4, 6, 8, 0, 2, 4]]
    assert last.tolist() == [[0, 2, 4, 6, 8, 8, 8, 8]]  # the clip's last frame inside the video


def test_repeat_last_per_clip():
    indices = clip_indices(np.array([0, 3]), num_frames=7, clip_len=3, frame_interval=2, out_of_bound="repeat_last")
    assert indices.tolist() == [[0, 2, 4], [3, 5, 5]]


def test_exact_fit_and_single_frame_video():
    assert sample_frames(16, clip_len=8, frame_interval=2, train=True,
                         rng=np.random.default_rng(0)).tolist() == [list(range(0, 16, 2))]
    assert sample_frames(1, clip_len=4, frame_interval=3, train=False).tolist() == [[0, 0, 0, 0]]


def test_bad_arguments():
    with pytest.raises(Action3dError, match="out_of_bound"):
        sample_frames(10, clip_len=4, train=False, out_of_bound="wrap")
    with pytest.raises(ValueError, match="rng"):
        sample_frames(10, clip_len=4, train=True)
    with pytest.raises(ValueError, match="0 frames"):
        sample_frames(0, clip_len=4, train=False)
