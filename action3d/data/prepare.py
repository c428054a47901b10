"""`action3d data prepare`: re-encode a dataset for fast random clip access.

Raw downloads (Kinetics: 256-1080 px, keyframes every 2-10 s) make every random clip decode a
long run of frames it does not keep. Re-encoding once to a small short side and a short keyframe
interval makes each clip start near a keyframe and decode small frames (see
scripts/bench_decode.py for the measured effect). Encoding uses PyAV (no ffmpeg binary), runs
in worker processes, and is resumable: outputs are written under a temporary name and renamed
when complete, so a file that exists under its final name is finished and skipped next time.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
from av.video.reformatter import VideoReformatter
from tqdm import tqdm

from action3d.data.decode import (DECODE_ORDER_TIMESTAMP_FORMATS, DecodeError, describe_error,
                                  open_video, output_size)
from action3d.data.video_writer import VideoEncoder
from action3d.errors import Action3dError

log = logging.getLogger(__name__)

FAILURES_FILE = "prepare_failures.txt"  # written into `out`: one reason (naming its video) a line


@dataclass(frozen=True)
class _Job:
    source: str
    target: str
    short_side: int
    gop: int
    crf: int
    fast_decode: bool


def prepared_name(relative_path: str) -> str:
    """Where a video lands under `out`: same relative folder and stem, always `.mp4`."""
    return str(Path(relative_path).with_suffix(".mp4"))


def _even_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Output frame size: short side scaled down to `short_side` (never up), even numbers."""
    if min(width, height) > short_side:
        width, height = output_size(width, height, short_side)
    return max(2, width - width % 2), max(2, height - height % 2)


def transcode(source: str, target: str, *, short_side: int = 128, gop: int = 16,
              crf: int = 23, fast_decode: bool = True) -> int:
    """Re-encode `source` into `target` (H.264 MP4, one encoder thread); return the frame count.

    Frame timestamps are kept (variable frame rate stays variable), except from AVI, whose
    timestamps follow decode order: there frame i is put at i / fps. Scaling and pixel-format
    conversion happen in one libswscale call on the YUV planes, no RGB round trip.
    fast_decode: x264's `tune=fastdecode` (no CABAC, no deblocking filter): decoding takes about
    half the time for files about 20% larger.
    """
    container, stream = open_video(source, threads=1)
    temporary = f"{target}.part"
    count = 0
    try:
        width, height = _even_size(stream.codec_context.width, stream.codec_context.height,
                                   short_side)
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        by_count = container.format.name in DECODE_ORDER_TIMESTAMP_FORMATS
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with VideoEncoder(temporary, width=width, height=height, fps=rate, gop=gop, crf=crf,
                          bframes=3, time_base=1 / rate if by_count else stream.time_base,
                          container_format="mp4", threads=1,
                          options={"tune": "fastdecode"} if fast_decode else None) as encoder:
            last_pts, reformatter = None, VideoReformatter()  # one scaler for all frames
            for frame in container.decode(stream):
                pts = count if by_count else frame.pts
                if pts is None or (last_pts is not None and pts <= last_pts):
                    pts = 0 if last_pts is None else last_pts + 1  # damaged: keep the order
                small = reformatter.reformat(frame, width=width, height=height, format="yuv420p")
                encoder.write(small, pts=pts)
                last_pts, count = pts, count + 1
        if count == 0:
            raise DecodeError(f"{source}: no decodable frames")
        os.replace(temporary, target)  # only now does the finished file exist
    except av.error.FFmpegError as error:
        raise DecodeError(f"{source}: {describe_error(error)}") from None
    finally:
        container.close()
        if os.path.exists(temporary):
            os.remove(temporary)
    return count


def _run_job(job: _Job) -> str | None:
    """Worker entry point: None on success, else a one-line reason."""
    try:
        transcode(job.source, job.target, short_side=job.short_side, gop=job.gop, crf=job.crf,
                  fast_decode=job.fast_decode)
        return None
    except Exception as error:  # noqa: BLE001 - every failure is reported, none is fatal
        if isinstance(error, Action3dError):
            return str(error)  # already names the file
        return f"{job.source}: {describe_error(error)}"


def prepare_dataset(samples: Sequence[tuple[str, int]], *, root: str | Path, out: str | Path,
                    short_side: int = 128, gop: int = 16, workers: int = 2, crf: int = 23,
                    fast_decode: bool = True, progress: bool = True) -> list[tuple[str, int]]:
    """Re-encode every video of `samples` (absolute path, label) from under `root` into `out`.

    Returns (path relative to `out`, label) of every video that is prepared (now or by an
    earlier run), in the order of `samples`. Failures are logged, listed in
    `out/prepare_failures.txt` and left out of the result; they do not stop the run.
    """
    if short_side <= 0 or gop <= 0:
        raise Action3dError(
            f"prepare: short_side and gop must be positive, got {short_side} and {gop}")
    root, out = Path(os.path.abspath(root)), Path(os.path.abspath(out))  # keep symlinks as given
    if out == root:
        raise Action3dError(f"prepare: out={out} is the dataset root; choose another folder")
    relative = [_relative_to_root(path, root) for path, _ in samples]
    jobs = {}  # one job per distinct video (train and val lists may share files)
    for (path, _), rel in zip(samples, relative):
        target = out / prepared_name(rel)
        if not target.exists() and str(target) not in jobs:
            jobs[str(target)] = _Job(str(path), str(target), short_side, gop, crf, fast_decode)

    failures = _run_jobs(list(jobs.values()), workers=workers, progress=progress)
    _write_failures(out, failures)
    failed_targets = {target for target, _ in failures}
    return [(prepared_name(rel), label) for (_, label), rel in zip(samples, relative)
            if str(out / prepared_name(rel)) not in failed_targets]


def _relative_to_root(path: str, root: Path) -> str:
    try:
        return str(Path(os.path.abspath(path)).relative_to(root))
    except ValueError:
        raise Action3dError(f"prepare: video {path} is not under data.root={root}") from None


def _run_jobs(jobs: list[_Job], *, workers: int, progress: bool) -> list[tuple[str, str]]:
    """Run the jobs (in `workers` processes; in this process when workers <= 1); return
    (target, reason) of the failed ones."""
    failures = []
    bar = tqdm(total=len(jobs), desc="prepare", unit="video", disable=not progress)
    if workers <= 1:
        outcomes = ((job, _run_job(job)) for job in jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        futures = {pool.submit(_run_job, job): job for job in jobs}
        outcomes = ((futures[f], _result(f, futures[f])) for f in as_completed(futures))
    try:
        for job, reason in outcomes:
            if reason is not None:
                failures.append((job.target, reason))
                log.warning("prepare: skipped %s", reason)
            bar.update(1)
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    return failures


def _result(future, job: _Job) -> str | None:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a worker killed by a crashing decoder
        return f"{job.source}: worker process failed ({describe_error(error)})"


def _write_failures(out: Path, failures: list[tuple[str, str]]) -> None:
    report = out / FAILURES_FILE
    if not failures:
        if report.exists():
            report.unlink()  # a rerun that fixed everything leaves no stale report
        return
    out.mkdir(parents=True, exist_ok=True)
    report.write_text("".join(f"{reason}\n" for _, reason in failures))
