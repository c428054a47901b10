"""How a decoded frame is turned upright: FFmpeg's display matrix (a phone video stored sideways)
as three flags (transpose, mirror left-right, upside down), applied the way players and ffmpeg's
autorotate do."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import av
import numpy as np


class Orientation(NamedTuple):
    """How a stored frame is turned upright: transpose (swap rows and columns), then mirror
    left-right, then upside down. These three flags express all eight orientations a display
    matrix can describe (four rotations, each optionally mirrored)."""

    transpose: bool = False
    hflip: bool = False
    vflip: bool = False

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a stored width x height frame once turned upright."""
        return (height, width) if self.transpose else (width, height)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """Upright copy of packed frames (..., H, W, C) (the array itself when nothing turns)."""
        if self == UPRIGHT:
            return frames
        if self.transpose:
            frames = frames.swapaxes(-3, -2)
        if self.hflip:
            frames = frames[..., ::-1, :]
        if self.vflip:
            frames = frames[..., ::-1, :, :]
        return np.ascontiguousarray(frames)


UPRIGHT = Orientation()


def orientation_from_matrix(matrix: Sequence[int]) -> Orientation:
    """The orientation of FFmpeg's 3x3 display matrix (AV_FRAME_DATA_DISPLAYMATRIX, row-major,
    16.16 fixed point), as ffmpeg's autorotate applies it.

    The matrix maps a stored pixel (p, q) (x right, y down) to (a*p + c*q, b*p + d*q) on screen
    (plus a translation), with a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]. With
    b = c = 0 the axes stay (a < 0 mirrors x, d < 0 mirrors y); with a = d = 0 they swap
    (x' = c*y, y' = b*x). An iPhone portrait video stores (0, 1, -1, 0): x' = -y, y' = x, a
    quarter turn clockwise (ffprobe: "rotation of -90.00 degrees"; PyAV: frame.rotation == -90).
    Angles that are no multiple of 90 degrees snap to the nearest one.
    """
    a, b, c, d = (int(matrix[i]) for i in (0, 1, 3, 4))
    if abs(a) + abs(d) >= abs(b) + abs(c):
        return Orientation(transpose=False, hflip=a < 0, vflip=d < 0)
    return Orientation(transpose=True, hflip=c < 0, vflip=b < 0)


def frame_orientation(frame: av.VideoFrame) -> Orientation:
    """The orientation of a decoded frame's display matrix (upright when it has none). FFmpeg's
    decoders copy the stream's matrix (MP4 `tkhd`, MKV projection) onto every frame."""
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if side_data is None:
        return UPRIGHT
    matrix = np.frombuffer(bytes(side_data), dtype=np.int32)  # native-endian int32, as FFmpeg stores it
    return orientation_from_matrix(matrix) if len(matrix) == 9 else UPRIGHT
