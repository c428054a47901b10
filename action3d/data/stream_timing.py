"""When each frame of a video is shown (`StreamTiming`): what the reader's demux pass records and
what frame-rate resampling and the zoos' test placements (`action3d.data.sampling`) read.
numpy only: no decoder needed to reason about timestamps."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class StreamTiming:
    """When each frame of a video is shown: `pts` (presentation order, in `time_base` units), the
    stream's `start_pts` (its start_time) and its declared `duration_pts` (None when the container
    has none)."""

    pts: np.ndarray
    time_base: Fraction
    start_pts: int
    duration_pts: Optional[int]

    @classmethod
    def constant(cls, num_frames: int, fps: float) -> StreamTiming:
        """Frames `1 / fps` apart from 0 (a frame folder, or a stream without usable timestamps)."""
        rate = Fraction(fps).limit_denominator(100_000)
        return cls(pts=np.arange(num_frames, dtype=np.int64), time_base=1 / rate, start_pts=0,
                   duration_pts=num_frames)

    def seconds(self) -> np.ndarray:
        """Each frame's time in seconds after the stream's start (float64)."""
        return (self.pts - self.start_pts).astype(np.float64) * float(self.time_base)

    def is_constant_rate(self) -> bool:
        """Whether the frames are evenly spaced (to a tick, or 1% of a frame: container rounding)."""
        if len(self.pts) < 3:
            return True
        gaps = np.diff(self.pts)
        return int(gaps.max() - gaps.min()) <= max(1, int(0.01 * float(np.median(gaps))))
