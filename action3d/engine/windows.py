"""Windows over a long video: plan them in seconds, decode them one at a time, merge the results.

A window is a stretch of `window` seconds; one starts every `stride` seconds, and a last window
is aligned to the end of the video so that its tail is covered too. Each window is sampled the way
`eval` samples a whole video (`num_clips` clips spread evenly over it x `num_crops` crops), so a
window the length of the video scores exactly what `predict` scores for it.

Decoding streams: one `VideoReader` stays open and each window reads only its clips' frames (the
reader seeks to the keyframe before them), so memory holds one window's views at a time, whatever
the length of the video.

    with VideoReader(path) as reader:
        for win in plan_windows(reader.num_frames, reader.fps, window=4, stride=2, video=path):
            views = window_views(reader, win, data_cfg, num_clips=3, num_crops=1)   # (V, C, T, H, W)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from action3d.config import DataConfig
from action3d.config.commands import check_windows
from action3d.data.decode import VideoReader
from action3d.data.sampling import at_frame_rate, sample_frames
from action3d.data.test_transforms import build_test_transform
from action3d.errors import Action3dError

# Draw a progress bar from this many windows (or explained clips) on: short inputs finish at once.
PROGRESS_MIN_STEPS = 10


@dataclass(frozen=True)
class Window:
    start: float   # seconds
    end: float     # seconds
    first: int     # first frame index
    stop: int      # one past the last frame index


@dataclass(frozen=True)
class Segment:
    start: float   # seconds
    end: float
    label: str
    windows: range  # indices of the merged windows

    def as_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label}


def open_reader(video: str, data_cfg: DataConfig, *, resize: bool = True) -> VideoReader:
    """The reader `eval` would use for this video: decoder threads, display rotation, (with
    `resize`) the decoder-side resize of the data config, and its frames at data.target_fps
    (`num_frames`, `fps` and `read` then count resampled frames: windows and explained clips too)."""
    return at_frame_rate(VideoReader(video, short_side=data_cfg.decode_short_side if resize else None,
                                     threads=data_cfg.decode_threads, autorotate=data_cfg.autorotate),
                         data_cfg.target_fps)


def whole_video(num_frames: int, fps: float) -> Window:
    """The whole video as one window."""
    return Window(start=0.0, end=num_frames / fps, first=0, stop=num_frames)


def plan_windows(num_frames: int, fps: float, *, window: float, stride: float | None = None,
                 video: str = "video") -> list[Window]:
    """Windows of `window` seconds every `stride` seconds (default: back to back), the last one
    aligned to the end of the video. Raises `Action3dError` naming the video when it is shorter
    than one window."""
    check_windows(window=window, stride=stride)
    stride = window if stride is None else stride
    size = max(1, round(window * fps))               # frames per window
    step = max(1, round(stride * fps))
    if num_frames < size:
        raise Action3dError(f"video={video}: {num_frames / fps:.2f} s ({num_frames} frames at {fps:g} fps) is "
                            f"shorter than one window (window={window:g} s); use a shorter window")
    starts = list(range(0, num_frames - size + 1, step))
    if starts[-1] + size < num_frames:
        starts.append(num_frames - size)              # the tail gets a window of its own
    return [Window(start=s / fps, end=(s + size) / fps, first=s, stop=s + size) for s in starts]


def window_views(reader: VideoReader, win: Window, data_cfg: DataConfig, *, num_clips: int, num_crops: int
                 ) -> torch.Tensor:
    """uint8 views `(V, C, T, H, W)` of one window, V = num_clips x num_crops (clip-major), as
    `VideoDataset` gives them for a whole video in evaluation."""
    indices = win.first + sample_frames(win.stop - win.first, clip_len=data_cfg.clip_len,
                                        frame_interval=data_cfg.frame_interval, num_clips=num_clips,
                                        train=False, out_of_bound=data_cfg.out_of_bound)   # (K, L)
    frames = reader.read(indices.reshape(-1))                                # (C, K*L, H, W)
    clips = frames.unflatten(1, indices.shape).transpose(0, 1)               # (K, C, L, H, W)
    views = build_test_transform(data_cfg, num_crops)(clips, None)           # (K, [crops,] C, L, h, w)
    return (views.flatten(0, 1) if views.dim() == 6 else views).contiguous()


def merge_segments(windows: Sequence[Window], labels: Sequence[str]) -> list[Segment]:
    """Consecutive windows with the same label -> segments. Where the label changes, the boundary
    is half-way between the two windows' centres, so segments tile the scored time without
    overlapping (overlapping windows would otherwise give overlapping segments)."""
    if len(windows) != len(labels):
        raise ValueError(f"{len(windows)} windows but {len(labels)} labels")
    segments: list[Segment] = []
    first = 0
    for i in range(1, len(windows) + 1):
        if i < len(windows) and labels[i] == labels[first]:
            continue
        start = windows[0].start if first == 0 else _boundary(windows[first - 1], windows[first])
        end = windows[-1].end if i == len(windows) else _boundary(windows[i - 1], windows[i])
        segments.append(Segment(start=start, end=end, label=labels[first], windows=range(first, i)))
        first = i
    return segments


def _boundary(left: Window, right: Window) -> float:
    return ((left.start + left.end) / 2 + (right.start + right.end) / 2) / 2


def top_labels(scores: np.ndarray, classes: Sequence[str]) -> list[str]:
    """The top class of each row of `scores` (W, K); equal scores go to the lower class index."""
    return [classes[int(i)] for i in np.argmax(scores, axis=1)]
