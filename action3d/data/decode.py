"""Frame-exact random access to video frames with PyAV.

`VideoReader(path).read(indices)` returns the frames at the given frame indices as uint8
(C, T, H, W), identical to the same frames of a full sequential decode (`read_all_frames`).

Frame index = presentation order. At open we demux the video stream once (no decoding, about a
millisecond for a 10 s clip) and keep the sorted packet timestamps: index i is the i-th smallest
pts. That is exact for B-frames (decode order != presentation order), a non-zero first timestamp
and variable frame rate, where `index / fps` is not. The keyframe timestamps from the same pass
tell where each read must start: seek to the last keyframe at or before the first wanted frame,
decode forward, convert only the wanted frames, and seek again instead of decoding through a
stretch of unwanted frames. A seek that lands after the wanted frame (container indexes that
disagree with the packets) is detected from the first packet and retried further back.

The same pass gives `VideoReader.timing` (`StreamTiming`): each frame's timestamp, the stream's
time base, start and declared duration, which frame-rate resampling (`data.target_fps`) and the
zoos' test placements read (`action3d.data.sampling`).

Frames come out as people see them: a phone video stored sideways carries a display matrix
(PyAV: `frame.rotation`), and the reader turns its frames upright the way players and ffmpeg's
autorotate do, after libswscale (`autorotate=False` keeps the stored orientation). Sizes,
crops and the frame-exact guarantee refer to the upright frames.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from action3d.data.h264 import h264_length_size, is_nonreference_h264
from action3d.data.orientation import UPRIGHT, Orientation, frame_orientation
from action3d.data.stream_timing import StreamTiming
from action3d.errors import Action3dError

# Containers whose packet timestamps follow decode order: with B-frames their pts are not
# presentation times, so frames there are found by counting from the start instead.
DECODE_ORDER_TIMESTAMP_FORMATS = {"avi"}

# Seek forward instead of decoding through when at least this many unwanted frames lie between
# the current position and the next wanted frame's keyframe (1..8 measured within noise of each
# other on 16x4, 32x2 and 8x8 clips: a seek costs little more than the frames it skips).
MIN_FRAMES_SKIPPED_BY_SEEK = 2


_per_thread = threading.local()


def shared_reformatter() -> VideoReformatter:
    """This thread's scaler, kept across readers: its libswscale context is rebuilt only when
    the frame size or format changes (building one costs about half a clip's conversions)."""
    if not hasattr(_per_thread, "reformatter"):
        _per_thread.reformatter = VideoReformatter()
    return _per_thread.reformatter


class DecodeError(Action3dError):
    """A video that cannot be read: missing, empty, truncated, not a video, no decodable frames."""


class _TimestampsOutOfOrder(Exception):
    """Decoded pts went backwards: the container's timestamps are not presentation times."""


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) after scaling the shorter side to `short_side`, keeping the aspect ratio."""
    if short_side is None:
        return width, height
    if short_side <= 0:
        raise Action3dError(f"short_side must be a positive number of pixels, got {short_side}")
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


class MemoryVideo(io.BytesIO):
    """A video's bytes in memory (a sample of a tar shard) and the name its errors give."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.video_name = name


def open_video(path: str | MemoryVideo, threads: int) -> tuple[av.container.InputContainer, av.VideoStream]:
    """Open `path` (a file, or a `MemoryVideo`) and return its first video stream, decoding with
    `threads` threads."""
    if isinstance(path, MemoryVideo):
        source, path = path, path.video_name
        source.seek(0)
        if not source.getbuffer().nbytes:
            raise DecodeError(f"{path}: empty file (0 bytes)")
    else:
        file = Path(path)
        if not file.is_file():
            raise DecodeError(f"{path}: no such file")
        if file.stat().st_size == 0:
            raise DecodeError(f"{path}: empty file (0 bytes)")
        source = str(path)
    try:
        container = av.open(source, mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise DecodeError(f"{path}: not a readable video file ({describe_error(error)})") from None
    if not container.streams.video:
        container.close()
        raise DecodeError(f"{path}: no video stream")
    stream = container.streams.video[0]
    for other in container.streams:
        if other.index != stream.index:
            other.discard = av.stream.Discard.all  # the demuxer skips audio/subtitle packets
    stream.codec_context.thread_count = threads
    stream.codec_context.thread_type = "SLICE" if threads == 1 else "AUTO"
    return container, stream


def describe_error(error: Exception) -> str:
    """One line for an exception from FFmpeg (its message without the errno clutter)."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split()) or type(error).__name__


class _StreamIndex:
    """Presentation-order timestamps of every frame and of every keyframe, from one demux pass."""

    def __init__(self, container, stream, path: str):
        pts, key_pts = [], []
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:  # flush packet / cut by an edit list
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
        except av.error.FFmpegError as error:
            if not pts:
                raise DecodeError(f"{path}: unreadable packets ({describe_error(error)})") from None
            # truncated: keep the frames before the damage, as a sequential decode would
        if not pts:
            raise DecodeError(f"{path}: no video frames")
        # Packets without timestamps (raw streams) or with decode-order ones (AVI with B-frames)
        # leave only sequential decoding.
        reordered = (container.format.name in DECODE_ORDER_TIMESTAMP_FORMATS
                     and stream.codec_context.has_b_frames)
        self.exact = (not reordered and None not in pts and len(set(pts)) == len(pts)
                      and bool(key_pts))
        self.pts = np.sort(np.array(pts, dtype=np.int64)) if self.exact else None
        self.key_pts = np.sort(np.array(key_pts, dtype=np.int64)) if self.exact else None
        self.num_packets = len(pts)

    def keyframe_before(self, pts: int) -> int:
        """Index into key_pts of the last keyframe at or before `pts` (0 when none is)."""
        return max(0, int(np.searchsorted(self.key_pts, pts, side="right")) - 1)


class VideoReader:
    """Random access to the frames of one video (a file, or a `MemoryVideo`); open once, `read` many clips.

    short_side: scale frames so that their shorter side has this many pixels (inside libswscale,
    on the YUV planes, together with the RGB conversion). threads: decoder threads (1 per
    data-loader worker is the right default; more helps only a single-process reader).
    autorotate: turn frames upright as the video's display matrix says (phone videos); the
    orientation is read once, from the first frame the reader decodes. `width` and `height`
    are those of the frames `read` returns (upright when autorotating).
    """

    def __init__(self, path: str | Path | MemoryVideo, *, short_side: int | None = None, threads: int = 1,
                 autorotate: bool = True):
        self._source = path  # what open_video opens again when the reader starts over
        self.path = path.video_name if isinstance(path, MemoryVideo) else str(path)
        self._threads = threads
        # Known after the first decoded frame; `orientation` decodes one if asked before any read.
        self._orientation: Orientation | None = None if autorotate else UPRIGHT
        self._container, self._stream = open_video(self._source, threads)
        try:
            self._index = _StreamIndex(self._container, self._stream, self.path)
            context = self._stream.codec_context
            if not context.width or not context.height:
                raise DecodeError(f"{self.path}: video stream has no frame size")
            # libswscale scales the stored frame; the short side is the same once it is upright
            self._stored_size = output_size(context.width, context.height, short_side)
            self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 0) or 25.0
            self.num_frames = self._index.num_packets
            self.timing = self._timing()
            self._length_size = h264_length_size(self._stream)
            if not self._index.exact:
                self.num_frames = sum(1 for _ in self._frames_from_start())
                if self.num_frames == 0:
                    raise DecodeError(f"{self.path}: no decodable frames")
        except av.error.FFmpegError as error:
            self.close()
            raise DecodeError(f"{self.path}: decoding failed ({describe_error(error)})") from None
        except BaseException:
            self.close()
            raise
        self._reformatter = shared_reformatter()

    def _timing(self) -> StreamTiming | None:
        """The frames' timestamps (None when the container's are unusable: frames are counted)."""
        if not self._index.exact:
            return None
        start = self._stream.start_time
        return StreamTiming(pts=self._index.pts, time_base=Fraction(self._stream.time_base),
                            start_pts=int(self._index.pts[0] if start is None else start),
                            duration_pts=None if self._stream.duration is None else int(self._stream.duration))

    # -- public ---------------------------------------------------------------------------------

    @property
    def orientation(self) -> Orientation:
        """How the stored frames are turned upright (`UPRIGHT` without autorotate)."""
        if self._orientation is None:
            self._orientation = self._first_frame_orientation()
        return self._orientation

    @property
    def width(self) -> int:
        return self.orientation.size(*self._stored_size)[0]

    @property
    def height(self) -> int:
        return self.orientation.size(*self._stored_size)[1]

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` (any order, repeats allowed) as uint8 (C, T, H, W).

        The result is a permuted view of a (T, H, W, C) array (frames come out of libswscale
        as packed RGB); it is contiguous in the channels-last sense, not in the default one.
        """
        if self._container is None:
            raise DecodeError(f"{self.path}: reader is closed")
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(wanted) == 0:
            raise DecodeError(f"{self.path}: no frame indices given")
        bad = wanted[(wanted < 0) | (wanted >= self.num_frames)]
        if len(bad):
            raise DecodeError(f"{self.path}: frame index {int(bad[0])} out of range "
                              f"0..{self.num_frames - 1}")
        unique, position = np.unique(wanted, return_inverse=True)  # sorted, and where each goes
        stored_width, stored_height = self._stored_size
        frames = np.empty((len(unique), stored_height, stored_width, 3), dtype=np.uint8)  # (U, H, W, C)
        try:
            if self._index.exact:
                try:
                    self._decode_by_pts(self._index.pts[unique], frames)
                except _TimestampsOutOfOrder:
                    self._index.exact = False  # from now on: count frames from the start
            if not self._index.exact:
                self._decode_by_count(unique, frames)
        except av.error.FFmpegError as error:
            raise DecodeError(f"{self.path}: decoding failed ({describe_error(error)})") from None
        frames = self.orientation.apply(frames)  # (U, H, W, C) upright, after libswscale
        if len(unique) != len(wanted) or np.any(unique != wanted):
            frames = frames[position.reshape(-1)]  # (T, H, W, C): requested order and repeats
        # A (C, T, H, W) view of the (T, H, W, C) frames: no transposing copy here; cropping
        # and batching copy anyway (call .contiguous() where a dense tensor is needed).
        return torch.from_numpy(frames).permute(3, 0, 1, 2)

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # -- decoding -------------------------------------------------------------------------------

    def _convert(self, frame: av.VideoFrame, out: np.ndarray) -> None:
        """Scale (in YUV) and convert to RGB in one libswscale call, into `out` (H, W, 3)."""
        if self._orientation is None:
            self._orientation = frame_orientation(frame)
        # threads=1: a multi-threaded swscale context keeps a thread pool that does not survive
        # fork(), so a DataLoader worker forked after the main process decoded would hang.
        width, height = self._stored_size
        rgb = self._reformatter.reformat(frame, width=width, height=height, format="rgb24", threads=1)
        out[...] = rgb.to_ndarray()  # a view of the frame's buffer: copy it out

    def _decode_by_pts(self, wanted_pts: np.ndarray, out: np.ndarray) -> None:
        """Fill out[i] with the frame whose pts is wanted_pts[i] (sorted, unique)."""
        index, done, wanted = self._index, 0, set(wanted_pts.tolist())
        while done < len(wanted_pts):
            keyframe = index.keyframe_before(int(wanted_pts[done]))
            done = self._decode_run(keyframe, wanted_pts, wanted, done, out)

    def _decode_run(self, keyframe: int, wanted_pts: np.ndarray, wanted: set[int], done: int,
                    out: np.ndarray) -> int:
        """Decode from `keyframe` on, filling wanted frames; return how many are done when the
        next one is better reached by a new seek (or when all are)."""
        index, length_size, last_pts = self._index, self._length_size, None
        for packet in self._seek(keyframe, int(wanted_pts[done])):
            if (length_size and packet.pts not in wanted and packet.size
                    and is_nonreference_h264(memoryview(packet), length_size)):
                continue  # an unwanted frame that no other frame refers to: skip its decoding
            for frame in packet.decode():
                pts = frame.pts
                if pts is None or (last_pts is not None and pts <= last_pts):
                    raise _TimestampsOutOfOrder
                last_pts = pts
                if pts < wanted_pts[done]:
                    continue  # before the first wanted frame (or leading B-frames of an open GOP)
                if pts > wanted_pts[done]:
                    self._missing(wanted_pts[done])
                self._convert(frame, out[done])
                done += 1
                if done == len(wanted_pts):
                    return done
                next_key = index.key_pts[index.keyframe_before(int(wanted_pts[done]))]
                skipped = np.searchsorted(index.pts, next_key) - np.searchsorted(index.pts, pts) - 1
                if skipped >= MIN_FRAMES_SKIPPED_BY_SEEK:
                    return done
        self._missing(wanted_pts[done])

    def _seek(self, keyframe: int, first_wanted_pts: int) -> Iterator[av.Packet]:
        """Packets from a keyframe at or before `first_wanted_pts`; further back if a seek lands
        late; from the start of the file as the last resort."""
        for candidate in range(keyframe, -1, -1):
            self._container.seek(int(self._index.key_pts[candidate]), stream=self._stream,
                                 backward=True)
            packets = self._container.demux(self._stream)
            first = next((p for p in packets if p.is_keyframe or p.size == 0), None)
            if first is None or first.size == 0:
                continue  # landed at the end of the stream
            if first.pts is not None and first.pts <= first_wanted_pts:
                yield first
                yield from packets
                return
        yield from self._reopen()

    def _reopen(self) -> Iterator[av.Packet]:
        """Start over from the first packet, exactly like a sequential decode."""
        self._container.close()
        self._container, self._stream = open_video(self._source, self._threads)
        yield from self._container.demux(self._stream)

    def _first_frame_orientation(self) -> Orientation:
        """Decode the first frame for its display matrix (only when asked before any read)."""
        if self._container is None:
            raise DecodeError(f"{self.path}: reader is closed")
        frames = self._frames_from_start()
        try:
            first = next(frames, None)
        except av.error.FFmpegError as error:
            raise DecodeError(f"{self.path}: decoding failed ({describe_error(error)})") from None
        finally:
            frames.close()
        return UPRIGHT if first is None else frame_orientation(first)

    def _frames_from_start(self) -> Iterator[av.VideoFrame]:
        for packet in self._reopen():
            yield from packet.decode()

    def _decode_by_count(self, wanted: np.ndarray, out: np.ndarray) -> None:
        """Fallback for streams without usable timestamps: decode from the start and count."""
        done = 0
        for number, frame in enumerate(self._frames_from_start()):
            while done < len(wanted) and wanted[done] == number:
                self._convert(frame, out[done])
                done += 1
            if done == len(wanted):
                return
        raise DecodeError(f"{self.path}: frame {int(wanted[done])} could not be decoded")

    def _missing(self, pts) -> None:
        frame = int(np.searchsorted(self._index.pts, pts))
        raise DecodeError(f"{self.path}: frame {frame} (pts {int(pts)}) could not be decoded")


def read_all_frames(path: str | Path, *, short_side: int | None = None,
                    autorotate: bool = True) -> torch.Tensor:
    """Every frame of the video, decoded sequentially from the start, as uint8 (C, T, H, W).

    The reference that `VideoReader.read` must match; also handy for short videos. autorotate:
    frames upright as the first frame's display matrix says (as `VideoReader`).
    """
    path = str(path)
    container, stream = open_video(path, threads=1)
    reformatter, frames, orientation = VideoReformatter(), [], UPRIGHT
    try:
        width, height = output_size(stream.codec_context.width, stream.codec_context.height,
                                    short_side)
        for frame in container.decode(stream):
            if autorotate and not frames:
                orientation = frame_orientation(frame)
            rgb = reformatter.reformat(frame, width=width, height=height, format="rgb24", threads=1)
            frames.append(rgb.to_ndarray().copy())  # (H, W, 3)
    except av.error.FFmpegError as error:
        if not frames:
            raise DecodeError(f"{path}: decoding failed ({describe_error(error)})") from None
    finally:
        container.close()
    if not frames:
        raise DecodeError(f"{path}: no decodable frames")
    upright = orientation.apply(np.stack(frames))  # (T, H, W, C)
    return torch.from_numpy(upright).permute(3, 0, 1, 2).contiguous()  # (C, T, H, W)
