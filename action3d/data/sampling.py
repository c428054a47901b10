"""Which frames of a video make a clip: mmaction2's `SampleFrames`, as pure functions.

A clip is `clip_len` frames taken every `frame_interval` frames, so it spans
`clip_len * frame_interval` frames of the video. Training draws a random start in each of
`num_clips` equal segments; testing spreads `num_clips` starts evenly from the first to the last
possible start (one clip: the middle). Videos shorter than the span wrap around (`loop`) or repeat
the clip's last frame inside the video (`repeat_last`).

`data.target_fps` resamples a video first (`resample_indices`, torchvision's rule; a reader seen
at that rate: `at_frame_rate`), so every rule below counts frames at the target rate. The zoos'
test placements (`eval.protocol`) are `protocol_clip_indices`.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import numpy as np
import torch

from action3d.config.train import PROTOCOLS
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


# --------------------------------------------------------------------------- frame rate (data.target_fps)

def resample_indices(num_frames: int, native_fps: float, target_fps: float, timing=None) -> np.ndarray:
    """The native frame of each frame of the video resampled to `target_fps` (a rate of its own).

    A constant-rate video follows torchvision's `VideoClips` exactly: resampled frame j is native
    frame `floor(j * native_fps / target_fps)` (float32, as torchvision computes it), the
    resampled video has `floor(num_frames * target_fps / native_fps)` frames, and an integer
    ratio takes every ratio-th frame from the first (`[::step]`, so one more frame at the end when
    `num_frames` is no multiple of it). A variable-rate video (`timing`, an
    `action3d.data.decode.StreamTiming` whose gaps differ) is resampled by its timestamps:
    resampled frame j, at `j / target_fps` s after the first frame, is the native frame shown
    then (the last one that starts at or before it), up to the end of the last frame.
    The result is never empty: a video shorter than one resampled frame keeps its first frame.
    """
    if num_frames < 1:
        raise ValueError(f"cannot resample a video with {num_frames} frames")
    if timing is not None and len(timing.pts) == num_frames and not timing.is_constant_rate():
        seconds = timing.seconds()
        last = seconds[-1] - seconds[-2] if num_frames > 1 else 1.0 / native_fps
        times = seconds[0] + np.arange(max(1, math.ceil((seconds[-1] + last - seconds[0]) * target_fps - 1e-9))
                                       ) / target_fps
        return np.clip(np.searchsorted(seconds, times + 1e-9, side="right") - 1, 0, num_frames - 1)
    step = native_fps / target_fps
    if float(step).is_integer():
        return np.arange(0, num_frames, int(step), dtype=np.int64)
    count = int(math.floor(num_frames * target_fps / native_fps))
    picks = (torch.arange(count, dtype=torch.float32) * step).floor().to(torch.int64).numpy()
    return picks if count else np.zeros(1, dtype=np.int64)


class ResampledReader:
    """A reader (`VideoReader`, a frame folder's reader) seen at `target_fps`: `num_frames`, `fps`
    and `read(indices)` count frames of the resampled video; everything else is the reader's."""

    def __init__(self, reader, target_fps: float):
        self.reader, self.target_fps = reader, float(target_fps)
        self.native = resample_indices(reader.num_frames, reader.fps, target_fps, timing_of(reader))
        self.num_frames, self.fps, self.path = len(self.native), self.target_fps, reader.path

    @property
    def timing(self):
        from action3d.data.stream_timing import StreamTiming

        return StreamTiming.constant(self.num_frames, self.fps)

    def read(self, indices) -> torch.Tensor:
        return self.reader.read(self.native[np.asarray(indices, dtype=np.int64).reshape(-1)])

    def __getattr__(self, name: str):
        return getattr(self.__dict__["reader"], name)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> ResampledReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def at_frame_rate(reader, target_fps: Optional[float]):
    """`reader` itself (`target_fps` None: native frames), else its frames resampled to `target_fps`."""
    return reader if target_fps is None else ResampledReader(reader, target_fps)


def timing_of(reader):
    """When each frame of `reader` is shown: its own `timing` (a video's timestamps), else a constant
    rate from `.fps` (a frame folder: data.fps)."""
    from action3d.data.stream_timing import StreamTiming

    timing = getattr(reader, "timing", None)
    return timing if timing is not None else StreamTiming.constant(reader.num_frames, reader.fps)


# --------------------------------------------------------------------------- the zoos' test protocols (eval.protocol)

VARIABLE_VIEWS = ("hara", "hara_2018")   # every window of the video is a view: their number varies
PYSLOWFAST_FPS = 30                      # PySlowFast's DATA.TARGET_FPS: spans scale by the video's fps over it


class NoFullWindow(Action3dError):
    """A video shorter than one window of the protocol (torchvision's): excluded from the scores."""


def protocol_clip_indices(protocol: str, reader, *, clip_len: int, frame_interval: int = 1, num_clips: int = 1,
                      out_of_bound: str = "loop") -> np.ndarray:
    """Frame indices `(num_clips, clip_len)` of the test clips of one video under `protocol` (for
    `hara`: one row per window). `reader` gives `num_frames`, `fps` and (ptv) its timing.

    - action3d: mmaction2 1.x's SampleFrames test mode (`sample_frames(train=False)`);
    - mmaction2_v0: mmaction2 0.x's: offsets `int(avg / 2 + i * avg)`, avg = (N - clip_len x
      interval + 1) / num_clips (all 0 when N < clip_len x interval), out of bound as data.out_of_bound;
    - torchvision: every window of `clip_len` consecutive frames (`frame_interval` apart) is a clip,
      `num_clips` of them at `floor(linspace(0, windows - 1, num_clips))` (UniformClipSampler);
      `NoFullWindow` when the video has none;
    - pyslowfast: span `clip_len x interval x fps / 30` frames, start `max(N - span, 0) x i /
      num_clips`, frames `linspace(start, start + span - 1, clip_len)` clamped and truncated
      (decoder.get_start_end_idx and temporal_sampling of a whole decoded video);
    - ptv: PyTorchVideo 0.1.5's ConstantClipsPerVideoSampler over clips of `clip_len x interval /
      30` s (the frames whose timestamps fall in [start, end)), then UniformTemporalSubsample;
    - hara: non-overlapping windows of `clip_len` frames from the first (his 2020 SlidingWindow),
      the last one looped (LoopPadding) and the end; hara_2018: his 2018 release, whose windows
      start before the last frame only (`range(1, n_frames, clip_len)`).
    """
    if protocol not in PROTOCOLS:
        raise Action3dError(f"eval.protocol={protocol} is not allowed: expected one of {', '.join(PROTOCOLS)}")
    num_frames = reader.num_frames
    if num_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {num_frames} frames")
    if protocol == "action3d":
        return sample_frames(num_frames, clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips,
                             train=False, out_of_bound=out_of_bound)
    if protocol == "mmaction2_v0":
        return clip_indices(mmaction2_v0_offsets(num_frames, clip_len=clip_len, frame_interval=frame_interval,
                                                 num_clips=num_clips),
                            num_frames=num_frames, clip_len=clip_len, frame_interval=frame_interval,
                            out_of_bound=out_of_bound)
    if protocol == "torchvision":
        return torchvision_clips(num_frames, clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips,
                                 video=reader.path)
    if protocol == "pyslowfast":
        return pyslowfast_clips(num_frames, reader.fps, clip_len=clip_len, frame_interval=frame_interval,
                                num_clips=num_clips)
    if protocol == "ptv":
        return ptv_clips(timing_of(reader), clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips)
    return hara_windows(num_frames, clip_len=clip_len, release=2018 if protocol == "hara_2018" else 2020)


def mmaction2_v0_offsets(num_frames: int, *, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """mmaction2 0.x `SampleFrames._get_test_clips` (twice_sample off)."""
    ori_clip_len = clip_len * frame_interval
    avg_interval = (num_frames - ori_clip_len + 1) / float(num_clips)
    if num_frames > ori_clip_len - 1:
        base_offsets = np.arange(num_clips) * avg_interval
        return (base_offsets + avg_interval / 2.0).astype(np.int64)
    return np.zeros(num_clips, dtype=np.int64)


def torchvision_clips(num_frames: int, *, clip_len: int, frame_interval: int, num_clips: int,
                      video: str = "video") -> np.ndarray:
    """torchvision's video classification reference: the windows of `unfold(frames, clip_len, 1)`
    and UniformClipSampler's `linspace(0, windows - 1, num_clips).floor()` (float32)."""
    span = (clip_len - 1) * frame_interval + 1
    windows = num_frames - span + 1
    if windows < 1:
        raise NoFullWindow(f"{video}: {num_frames} frames, fewer than one window of {span} "
                           "(eval.protocol=torchvision scores full windows only)")
    starts = torch.linspace(0, windows - 1, steps=num_clips).floor().to(torch.int64).numpy()
    return starts[:, None] + np.arange(clip_len) * frame_interval


def pyslowfast_clips(num_frames: int, fps: float, *, clip_len: int, frame_interval: int,
                     num_clips: int) -> np.ndarray:
    """PySlowFast's Kinetics test clips of a whole decoded video (`decoder.decode` with
    `get_start_end_idx` and `temporal_sampling`), clip i of `num_clips`."""
    clip_size = frame_interval * clip_len / PYSLOWFAST_FPS * fps
    delta = max(num_frames - clip_size, 0)
    rows = []
    for clip_idx in range(num_clips):
        start = delta * clip_idx / num_clips
        end = start + clip_size - 1
        index = torch.clamp(torch.linspace(start, end, clip_len), 0, num_frames - 1).long()
        rows.append(index.numpy())
    return np.stack(rows)


def ptv_clips(timing, *, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """PyTorchVideo 0.1.5 as PySlowFast runs it (`Ptvkinetics`, test): ConstantClipsPerVideoSampler
    of clips `clip_len x frame_interval / 30` s long (exact Fractions of that float, as
    ClipSampler keeps it), the frames of EncodedVideoPyAV.get_clip (pts in [ceil(start / time_base),
    ceil(end / time_base)) after the stream's start), then UniformTemporalSubsample(clip_len)."""
    time_base, start_pts = timing.time_base, timing.start_pts
    last = timing.duration_pts if timing.duration_pts is not None else int(timing.pts[-1])
    duration = int(last - start_pts) * time_base                          # pts_to_secs: a Fraction
    clip_duration = Fraction(clip_len * frame_interval / PYSLOWFAST_FPS)   # ClipSampler: Fraction(float)
    max_start = Fraction(max(duration - clip_duration, 0))
    uniform = Fraction(max_start, num_clips)
    pts = np.asarray(timing.pts)
    rows = []
    for clip_index in range(num_clips):
        clip_start = uniform * clip_index
        clip_end = clip_start + clip_duration
        first = math.ceil(clip_start / time_base) + start_pts
        stop = math.ceil(clip_end / time_base) + start_pts
        inside = np.flatnonzero((pts >= first) & (pts < stop))
        if not len(inside):   # no frame starts in the window: the one shown during it
            inside = np.array([max(0, int(np.searchsorted(pts, first, side="right")) - 1)])
        t = len(inside)
        picks = torch.clamp(torch.linspace(0, t - 1, clip_len), 0, t - 1).long().numpy()
        rows.append(inside[picks])
    return np.stack(rows)


def hara_windows(num_frames: int, *, clip_len: int, release: int = 2020) -> np.ndarray:
    """Hara's test windows: `clip_len` consecutive frames from the first, back to back, a short last
    window looped (LoopPadding). 2020 (SlidingWindow over frames 1..n): the windows begin at every
    clip_len-th frame; 2018 (`range(1, n_frames, clip_len)`): not at the last frame."""
    stop = num_frames if release == 2020 else max(num_frames - 1, 1)
    rows = []
    for begin in range(0, stop, clip_len):
        window = np.arange(begin, min(num_frames, begin + clip_len))
        rows.append(window[np.arange(clip_len) % len(window)])
        if len(window) < clip_len:
            break
    return np.stack(rows)
