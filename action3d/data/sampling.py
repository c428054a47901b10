"""Which frames of a video make a clip: mmaction2's `SampleFrames`, as pure functions.

A clip is `clip_len` frames taken every `frame_interval` frames, so it spans
`clip_len * frame_interval` frames of the video. Training draws a random start in each of
`num_clips` equal segments; testing spreads `num_clips` starts evenly from the first to the last
possible start (one clip: the middle). Videos shorter than the span wrap around (`loop`) or repeat
the clip's last frame inside the video (`repeat_last`).
"""
from __future__ import annotations

import numpy as np

from action3d.errors import Action3dError

OUT_OF_BOUND = ("loop", "repeat_last")


def random_clip_offsets(num_frames: int, *, clip_len: int, frame_interval: int = 1,
                       num_clips: int = 1, rng: np.random.Generator) -> np.ndarray:
    """Start frame of each clip: a random offset inside each of `num_clips` equal segments."""
    span = clip_len * frame_interval
    segment = (num_frames - span + 1) // num_clips
    if segment > 0:  # the usual case: every segment has room for a random shift
        return np.arange(num_clips) * segment + rng.integers(segment, size=num_clips)
    if num_frames > max(num_clips, span):  # room for the span but not for num_clips segments
        return np.sort(rng.integers(num_frames - span + 1, size=num_clips))
    if segment == 0:  # exactly the span fits (give or take the clip count): spread the starts
        ratio = (num_frames - span + 1.0) / num_clips
        return np.around(np.arange(num_clips) * ratio).astype(np.int64)
    return np.zeros(num_clips, dtype=np.int64)  # shorter than the span: start at 0, bounds fix it


def even_clip_offsets(num_frames: int, *, clip_len: int, frame_interval: int = 1,
                      num_clips: int = 1) -> np.ndarray:
    """Start frame of each clip, deterministic: evenly from the first to the last possible start."""
    span = (clip_len - 1) * frame_interval + 1
    max_offset = max(num_frames - span, 0)
    if num_clips == 1:
        return np.array([max_offset // 2], dtype=np.int64)
    return np.round(np.arange(num_clips) * (max_offset / (num_clips - 1))).astype(np.int64)


def clip_indices(offsets: np.ndarray, *, num_frames: int, clip_len: int, frame_interval: int = 1,
                 out_of_bound: str = "loop") -> np.ndarray:
    """Frame indices `(num_clips, clip_len)` of clips starting at `offsets`, all in [0, num_frames)."""
    if out_of_bound not in OUT_OF_BOUND:
        allowed = ", ".join(OUT_OF_BOUND)
        raise Action3dError(f"data.out_of_bound={out_of_bound} is not allowed: expected one of {allowed}")
    indices = np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(clip_len) * frame_interval
    if out_of_bound == "loop":
        return np.mod(indices, num_frames)
    inside = indices < num_frames
    last_inside = np.max(np.where(inside, indices, 0), axis=1, keepdims=True)  # per clip
    return np.where(inside, indices, last_inside)


def sample_frames(num_frames: int, *, clip_len: int, frame_interval: int = 1, num_clips: int = 1,
                  train: bool, rng: np.random.Generator | None = None,
                  out_of_bound: str = "loop") -> np.ndarray:
    """Frame indices `(num_clips, clip_len)` for a video of `num_frames` frames.

    `train=True` needs `rng` (random offsets); `train=False` is deterministic.
    """
    if num_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {num_frames} frames")
    if train:
        if rng is None:
            raise ValueError("sample_frames(train=True) needs rng, a numpy.random.Generator")
        offsets = random_clip_offsets(num_frames, clip_len=clip_len, frame_interval=frame_interval,
                                     num_clips=num_clips, rng=rng)
    else:
        offsets = even_clip_offsets(num_frames, clip_len=clip_len, frame_interval=frame_interval,
                                    num_clips=num_clips)
    return clip_indices(offsets, num_frames=num_frames, clip_len=clip_len,
                        frame_interval=frame_interval, out_of_bound=out_of_bound)
