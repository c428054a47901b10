"""Frame folders (data.format=rawframes): a video stored as one JPEG per frame.

`FrameFolderReader(folder, num_frames)` has the reader interface `VideoDataset._decode`, the
frame-rate resampling (`action3d.data.sampling.at_frame_rate`) and the zoos' test placements use:
`path`, `num_frames`, `fps` (data.fps; None: unknown) and `read(indices)` -> uint8 (C, T, H, W),
RGB, a context manager. Frame i is the file `filename_tmpl.format(i + start_index, video=NAME)`
(`action3d.data.formats.rawframes`); `read` opens and decodes only the files the clip names, with
`torchvision.io.decode_jpeg` (libjpeg-turbo), each once however often the clip repeats it. So a
clip is exactly the pixels of its JPEGs, decoded: frame-exact by construction.

A missing, empty or undecodable frame, or one of another size than the clip's first, raises
`FrameError` naming the folder and the file: the dataset handles it as a corrupt video (replaced
in training, marked in evaluation, counted towards data.max_fail_ratio).

How many frames a folder has comes from its list line (`VIDEO total_frames label`), trusted as
mmaction2 trusts it. `FrameCounts` keeps those counts for the dataset, compact: the sorted folder
paths (after their common prefix) as one fixed-width bytes array and the counts as int64 (no
Python objects: forked loader workers keep the pages shared, as `action3d.data.index` explains),
looked up by binary search. `FrameFolderDataset` is the `VideoDataset` that opens its samples'
folders with these readers (`frame_folder_dataset` builds it for `build_dataset`).
"""
from __future__ import annotations

import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg  # here, not per call: forked loader workers inherit it

from action3d.data.formats.rawframes import (
    DEFAULT_FILENAME_TMPL,
    DEFAULT_START_INDEX,
    frame_name,
    read_rawframe_list,
)
from action3d.errors import Action3dError

FPS_PROTOCOLS = ("pyslowfast", "ptv")   # eval.protocol values that place clips by the frame rate

# torchvision 0.29 (pinned) announces that its image codecs will move to TorchCodec, on every call;
# decode_jpeg and encode_jpeg are the libjpeg-turbo codecs the issue asks for, and work as before.
TORCHVISION_CODEC_NOTICE = "The image decoding and encoding capabilities of TorchVision are deprecated"
warnings.filterwarnings("ignore", message=TORCHVISION_CODEC_NOTICE, category=DeprecationWarning)


class FrameError(Action3dError):
    """A frame folder that cannot be read: missing, a frame missing or not a readable JPEG."""


def _jpeg_error(error: Exception) -> str:
    """torchvision's message without its source-file prefix ("decode_jpeg, .../decode_jpeg.cpp:171, ...")."""
    text = " ".join(str(error).split())
    return re.sub(r"^.*?\.cpp:\d+, ", "", text) or type(error).__name__


_pool_lock = threading.Lock()
_pool: Optional[Tuple[int, int, ThreadPoolExecutor]] = None   # (pid, threads, pool) of this process


def _thread_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of `threads` decoding threads (made after a fork, never inherited:
    decode_jpeg releases the GIL, so the threads decode in parallel)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != threads:
            _pool = (os.getpid(), threads, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="jpeg"))
        return _pool[2]


def count_frames(folder: str, *, filename_tmpl: str = DEFAULT_FILENAME_TMPL,
                 start_index: int = DEFAULT_START_INDEX) -> int:
    """Frames of `folder` numbered on from start_index without a gap (a folder that no list counts)."""
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        raise FrameError(f"{folder}: no such frame folder") from None
    except NotADirectoryError:
        raise FrameError(f"{folder}: not a folder of frames") from None
    video, count = os.path.basename(os.path.normpath(folder)), 0
    while frame_name(filename_tmpl, start_index + count, video) in names:
        count += 1
    return count


class FrameFolderReader:
    """Random access to the frames of one frame folder; `read` many clips (see the module docstring).

    num_frames: the folder's frame count (its list line); None counts the files (`count_frames`).
    fps: the folders' rate (data.fps), None when unknown. short_side: frames resized so that their
    short side has this many pixels (data.decode_short_side; antialiased bilinear, the size rounded
    as the video reader rounds it). threads: JPEGs of one read decoded by this many threads.
    autorotate: frames turned as their EXIF orientation says (extracted frames have none).
    """

    def __init__(self, folder: str | Path, num_frames: Optional[int] = None, *,
                 filename_tmpl: str = DEFAULT_FILENAME_TMPL, start_index: int = DEFAULT_START_INDEX,
                 fps: Optional[float] = None, short_side: Optional[int] = None, threads: int = 1,
                 autorotate: bool = True):
        self.path = str(folder)
        self.video = os.path.basename(os.path.normpath(self.path))
        self.filename_tmpl, self.start_index = filename_tmpl, start_index
        if num_frames is None:
            num_frames = count_frames(self.path, filename_tmpl=filename_tmpl, start_index=start_index)
        elif not os.path.isdir(self.path):
            raise FrameError(f"{self.path}: no such frame folder")
        if num_frames < 1:
            raise FrameError(f"{self.path}: no frames named {frame_name(filename_tmpl, start_index, self.video)} "
                             "onwards (data.filename_tmpl, data.start_index)")
        self.num_frames = int(num_frames)
        self.fps = None if fps is None else float(fps)
        self.short_side, self.threads, self.autorotate = short_side, threads, autorotate
        self._open = True

    def frame_file(self, index: int) -> str:
        """The file of frame `index` (0-based, as clips count frames)."""
        return os.path.join(self.path, frame_name(self.filename_tmpl, int(index) + self.start_index, self.video))

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` (any order, repeats allowed) as uint8 (C, T, H, W), contiguous."""
        if not self._open:
            raise FrameError(f"{self.path}: reader is closed")
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(wanted) == 0:
            raise FrameError(f"{self.path}: no frame indices given")
        bad = wanted[(wanted < 0) | (wanted >= self.num_frames)]
        if len(bad):
            raise FrameError(f"{self.path}: frame index {int(bad[0])} out of range 0..{self.num_frames - 1}")
        unique, position = np.unique(wanted, return_inverse=True)   # each file decoded once
        if self.threads > 1 and len(unique) > 1:
            images = list(_thread_pool(self.threads).map(self._decode, unique.tolist()))
        else:
            images = [self._decode(i) for i in unique.tolist()]
        size = images[0].shape
        for index, image in zip(unique.tolist(), images):
            if image.shape != size:
                raise FrameError(f"{self.frame_file(index)}: {image.shape[2]}x{image.shape[1]} pixels, the clip's "
                                 f"first frame {size[2]}x{size[1]}: frames of one folder must have one size")
        frames = torch.stack(images, dim=1)                                   # (C, U, H, W)
        if self.short_side is not None:
            frames = self._resize(frames)
        if len(unique) != len(wanted) or np.any(unique != wanted):
            frames = frames[:, torch.from_numpy(position.reshape(-1))]        # requested order and repeats
        return frames

    def _decode(self, index: int) -> torch.Tensor:
        """(3, H, W) uint8 RGB of frame `index`."""
        path = self.frame_file(index)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise FrameError(f"{self.path}: frame {index} is missing ({os.path.basename(path)}; the list "
                             f"promises {self.num_frames} frames)") from None
        except OSError as error:
            raise FrameError(f"{path}: unreadable ({error.strerror or error})") from None
        if not data:
            raise FrameError(f"{path}: empty file")
        try:
            return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB,
                               apply_exif_orientation=self.autorotate)
        except RuntimeError as error:
            raise FrameError(f"{path}: not a readable JPEG ({_jpeg_error(error)})") from None

    def _resize(self, frames: torch.Tensor) -> torch.Tensor:
        from action3d.data.decode import output_size
        from action3d.data.transforms import resize

        width, height = output_size(frames.shape[-1], frames.shape[-2], self.short_side)
        return resize(frames, (height, width)).contiguous()

    def close(self) -> None:
        self._open = False

    def __enter__(self) -> FrameFolderReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FrameCounts:
    """folder path -> total_frames, in compact arrays (see the module docstring)."""

    def __init__(self, pairs: Iterable[Tuple[str, int]] = ()):
        pairs = dict(pairs)   # the parser refuses one folder with two counts; equal repeats collapse
        self.prefix = os.path.commonprefix(list(pairs)) if len(pairs) > 1 else ""
        keyed = sorted((os.fsencode(path[len(self.prefix):]), count) for path, count in pairs.items())
        self.keys = np.array([key for key, _ in keyed], dtype=bytes)   # fixed-width bytes, sorted
        self.counts = np.array([count for _, count in keyed], dtype=np.int64)

    @classmethod
    def from_list(cls, path: str | Path, *, root: Optional[str] = None, multi_label: bool = False) -> FrameCounts:
        return cls((folder, total) for folder, total, _ in read_rawframe_list(path, root=root, multi_label=multi_label))

    def __len__(self) -> int:
        return len(self.counts)

    def get(self, folder: str) -> Optional[int]:
        """The listed frame count of `folder`, or None when no list names it."""
        if not len(self.keys) or not folder.startswith(self.prefix):
            return None
        key = os.fsencode(folder[len(self.prefix):])
        at = int(np.searchsorted(self.keys, key))
        return int(self.counts[at]) if at < len(self.keys) and self.keys[at] == key else None

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.counts.nbytes


__all__ = ["FPS_PROTOCOLS", "FrameCounts", "FrameError", "FrameFolderReader", "count_frames"]

