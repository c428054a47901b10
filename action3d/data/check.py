"""`action3d data check`: decode every video of a dataset, list the bad and the too-short ones.

Each video is opened with the dataset's reader (so what fails here fails in training) and then
decoded from start to end without colour conversion, which catches truncation and corruption
anywhere in the file. Files are checked in parallel processes with a progress bar.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

import av
from tqdm import tqdm

from action3d.data.decode import DecodeError, VideoReader

Sample = Tuple[str, int]


@dataclass
class CheckReport:
    """good: usable samples (decode fully, at least `min_frames` frames) in input order.
    short: `(path, label, frames)` that decode but are shorter. bad: `(path, reason)`."""

    root: str
    min_frames: int
    good: List[Sample] = field(default_factory=list)
    short: List[Tuple[str, int, int]] = field(default_factory=list)
    bad: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.good) + len(self.short) + len(self.bad)

    def summary(self, limit: int = 20) -> str:
        """A few lines for the terminal: counts, then the first `limit` bad and short files."""
        lines = [f"{self.total} videos under {self.root}: {len(self.good)} ok, {len(self.bad)} unreadable, "
                 f"{len(self.short)} shorter than {self.min_frames} frames"]
        lines += [f"  bad   {self._show(path)}: {_strip_path(reason, path)}" for path, reason in self.bad[:limit]]
        lines += [f"  short {self._show(path)}: {frames} frames" for path, _, frames in self.short[:limit]]
        hidden = max(0, len(self.bad) - limit) + max(0, len(self.short) - limit)
        if hidden:
            lines.append(f"  ... and {hidden} more")
        return "\n".join(lines)

    def _show(self, path: str) -> str:
        try:
            rel = os.path.relpath(path, self.root)
        except ValueError:  # another drive (Windows)
            return path
        return path if rel.startswith("..") else rel


def _strip_path(reason: str, path: str) -> str:
    return reason[len(path) + 2:] if reason.startswith(path + ": ") else reason


def inspect_video(path: str) -> Tuple[int, Optional[str]]:
    """(decodable frames, None) for a good video, or (frames, reason) for a bad one."""
    try:
        with VideoReader(path) as reader:
            expected = reader.num_frames
    except DecodeError as err:
        return 0, str(err)
    except Exception as err:  # anything else the reader trips on is still the file's fault
        return 0, f"{path}: {type(err).__name__}: {err}"
    decoded, problem = 0, None
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for _ in container.decode(stream):
                decoded += 1
    except (av.error.FFmpegError, OSError) as err:
        problem = " ".join(str(err).split())
    if decoded == 0:
        return 0, f"{path}: no decodable frames" + (f" ({problem})" if problem else "")
    if problem or decoded < expected:
        return decoded, (f"{path}: truncated or corrupt: {decoded} of {expected} frames decode"
                         + (f" ({problem})" if problem else ""))
    return decoded, None


def check_dataset(samples: Sequence[Sample], *, root: str, min_frames: int, workers: int = 2,
                  progress: bool = True) -> CheckReport:
    """Decode every video of `samples`; sort them into ok, short (< min_frames) and bad."""
    report = CheckReport(root=str(root), min_frames=min_frames)
    paths = [path for path, _ in samples]
    for (path, label), (frames, reason) in zip(samples, _run(paths, workers, progress)):
        if reason is not None:
            report.bad.append((path, reason))
        elif frames < min_frames:
            report.short.append((path, label, frames))
        else:
            report.good.append((path, label))
    return report


def _run(paths: List[str], workers: int, progress: bool) -> Iterable[Tuple[int, Optional[str]]]:
    bar = dict(total=len(paths), desc="checking videos", unit="video", disable=not progress)
    if workers <= 1 or len(paths) < 2:
        yield from tqdm(map(inspect_video, paths), **bar)
        return
    chunk = max(1, min(16, len(paths) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from tqdm(pool.map(inspect_video, paths, chunksize=chunk), **bar)
