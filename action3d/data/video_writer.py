"""Write uint8 RGB frames to a video file with PyAV (H.264 MP4 by default).

Used by the synthetic dataset, by `data prepare` (through `VideoEncoder`) and by the tests, which
need videos with B-frames, a shifted first timestamp, variable frame rate and short keyframe
intervals to prove that the reader is frame-exact, and phone-style videos stored sideways with a
display matrix (`rotation=` or `display_matrix=`; needs PyAV >= 18).
"""
from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from action3d.errors import Action3dError

# Fine time base for videos whose timestamps are not a multiple of 1/fps (the MPEG-TS clock).
_VFR_TIME_BASE = Fraction(1, 90000)


class VideoEncoder:
    """A streaming encoder: open, `write` frames one by one, `close` (or use `with`).

    Frames are either uint8 RGB arrays (H, W, 3) or `av.VideoFrame`s (any pixel format; they are
    converted to `pix_fmt` by the encoder's scaler). `pts` is in units of `time_base`; by default
    frame i gets pts i in a 1/fps time base. `options` are codec options (x264: "preset", "tune",
    "x264-params"); `container_format` overrides the guess from the file name.
    rotation: a display rotation in degrees counter-clockwise (what PyAV's `frame.rotation`
    reads back; a player turns the stored frames by it). display_matrix: FFmpeg's 9 int32
    values (16.16 fixed point, row-major) instead, for mirrored or hand-made matrices.
    Both are written as the stream's side data (MP4: the track header matrix).
    """

    def __init__(self, path: str | Path, *, width: int, height: int, fps: float = 25,
                 codec: str = "libx264", gop: int | None = None, bframes: int = 0,
                 crf: int | None = None, pix_fmt: str = "yuv420p",
                 time_base: Fraction | None = None, container_format: str | None = None,
                 options: dict[str, str] | None = None, threads: int = 0, rotation: float = 0,
                 display_matrix: Sequence[int] | None = None):
        if pix_fmt in ("yuv420p", "nv12") and (width % 2 or height % 2):
            raise Action3dError(
                f"{path}: {pix_fmt} needs an even width and height, got {width}x{height}")
        rate = Fraction(fps).limit_denominator(100_000)
        self.time_base = time_base or 1 / rate
        self.path = str(path)
        self._container = av.open(self.path, mode="w", format=container_format)
        try:
            self._configure(codec, rate, width, height, pix_fmt, gop, bframes, crf, options,
                            threads)
            self._set_display_matrix(rotation, display_matrix)
        except BaseException:
            self._container.close()
            raise
        self._count = 0

    def _configure(self, codec, rate, width, height, pix_fmt, gop, bframes, crf, options,
                   threads) -> None:
        options = {**(options or {}), **({} if crf is None else {"crf": str(crf)})}
        self._stream = self._container.add_stream(codec, rate=rate, options=options)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, pix_fmt
        ctx = self._stream.codec_context
        ctx.time_base = self.time_base
        ctx.max_b_frames = bframes
        ctx.thread_count = threads  # 0: the codec's choice (all cores)
        if gop is not None:
            ctx.gop_size = gop
            if codec == "libx264":  # a fixed keyframe interval: no early keyframes on scene cuts
                params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
                if options.get("x264-params"):
                    params = f"{options['x264-params']}:{params}"
                ctx.options = {**options, "x264-params": params}

    def _set_display_matrix(self, rotation: float, display_matrix: Sequence[int] | None) -> None:
        if not rotation and display_matrix is None:
            return
        if not hasattr(self._stream, "set_display_matrix"):
            raise Action3dError(f"{self.path}: writing a display matrix needs PyAV >= 18 "
                                f"(this is PyAV {av.__version__})")
        if display_matrix is not None:
            self._stream.set_display_matrix([int(v) for v in display_matrix])
        else:
            self._stream.set_display_rotation(float(rotation))

    def write(self, frame: np.ndarray | av.VideoFrame, *, pts: int | None = None) -> None:
        if not isinstance(frame, av.VideoFrame):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        frame.pts = self._count if pts is None else pts
        frame.time_base = self.time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose I/P/B
        self._container.mux(self._stream.encode(frame))
        self._count += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))  # flush delayed (B-)frames
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_frames_array(frames) -> np.ndarray:
    array = frames.numpy() if hasattr(frames, "numpy") else np.asarray(frames)  # torch or numpy
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or len(array) == 0:
        raise Action3dError(
            f"write_video: frames must be a non-empty uint8 array (T, H, W, 3), "
            f"got dtype {array.dtype} shape {tuple(array.shape)}")
    return array


def write_video(path, frames, *, fps: float = 25, codec: str = "libx264", gop: int | None = None,
                bframes: int = 0, crf: int | None = None, pix_fmt: str = "yuv420p",
                timestamps: Sequence[float] | None = None, start_time: float = 0.0, rotation: float = 0,
                display_matrix: Sequence[int] | None = None) -> None:
    """Encode `frames` (uint8 (T, H, W, 3) RGB, numpy or torch) into `path`.

    gop: keyframe interval in frames (None: the codec's default). bframes: maximum consecutive
    B-frames. crf: x264 quality (None: the codec's default). timestamps: per-frame presentation
    times in seconds, for variable frame rate; start_time shifts every timestamp (a file whose
    first frame is not at 0). rotation / display_matrix: a display matrix, as `VideoEncoder`
    takes them (phone videos stored sideways).
    """
    array = _as_frames_array(frames)
    _, height, width, _ = array.shape
    if timestamps is not None and len(timestamps) != len(array):
        raise Action3dError(f"write_video: {len(timestamps)} timestamps for {len(array)} frames")
    exact = timestamps is None and start_time == 0
    time_base = None if exact else _VFR_TIME_BASE
    with VideoEncoder(path, width=width, height=height, fps=fps, codec=codec, gop=gop,
                      bframes=bframes, crf=crf, pix_fmt=pix_fmt, time_base=time_base, rotation=rotation,
                      display_matrix=display_matrix) as encoder:
        for i, frame in enumerate(array):
            if exact:
                encoder.write(frame)
                continue
            seconds = (i / fps if timestamps is None else timestamps[i]) + start_time
            encoder.write(frame, pts=round(seconds / _VFR_TIME_BASE))
