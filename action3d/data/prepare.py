"""`action3d data prepare`: re-encode a dataset for fast random clip access.

Raw downloads (Kinetics: 256-1080 px, keyframes every 2-10 s) make every random clip decode a
long run of frames it does not keep. Re-encoding once to a small short side and a short keyframe
interval makes each clip start near a keyframe and decode small frames (see
scripts/bench_decode.py for the measured effect). Encoding uses PyAV (no ffmpeg binary), runs
in worker processes, and is resumable: outputs are written under a temporary name and renamed
when complete, so a file that exists under its final name is finished and skipped next time.
Phone videos stored sideways are written upright (with `autorotate`, as `data.autorotate`), so
the prepared files carry no display rotation and read the same either way.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
from av.video.reformatter import VideoReformatter

from action3d.data.decode import (
    DECODE_ORDER_TIMESTAMP_FORMATS,
    UPRIGHT,
    DecodeError,
    describe_error,
    frame_orientation,
    open_video,
    output_size,
)
from action3d.data.video_jobs import relative_to_root, run_video_jobs, write_failures
from action3d.data.video_writer import VideoEncoder
from action3d.errors import Action3dError
from action3d.files import atomic_write

FAILURES_FILE = "prepare_failures.txt"  # written into `out`: one reason (naming its video) a line


@dataclass(frozen=True)
class _Job:
    source: str
    target: str
    short_side: int
    gop: int
    crf: int
    fast_decode: bool
    autorotate: bool = True
    target_fps: float | None = None


def prepared_name(relative_path: str) -> str:
    """Where a video lands under `out`: same relative folder and stem, always `.mp4`."""
    return str(Path(relative_path).with_suffix(".mp4"))


def _even_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Output frame size: short side scaled down to `short_side` (never up), even numbers."""
    if min(width, height) > short_side:
        width, height = output_size(width, height, short_side)
    return max(2, width - width % 2), max(2, height - height % 2)


def transcode(source: str, target: str, *, short_side: int = 128, gop: int = 16,
              crf: int = 23, fast_decode: bool = True, autorotate: bool = True,
              target_fps: float | None = None) -> int:
    """Re-encode `source` into `target` (H.264 MP4, one encoder thread); return the frame count.

    target_fps: store the video at this rate instead, its frames those `data.target_fps` picks
    (`action3d.data.sampling.resample_indices`: a native frame written once per resampled frame
    that shows it, at pts j of a 1/target_fps time base), so that reading it at that rate decodes
    no frame the resampling would throw away.

    Frame timestamps are kept (variable frame rate stays variable), except from AVI, whose
    timestamps follow decode order: there frame i is put at i / fps. Scaling and pixel-format
    conversion happen in one libswscale call on the YUV planes, no RGB round trip.
    fast_decode: x264's `tune=fastdecode` (no CABAC, no deblocking filter): decoding takes about
    half the time for files about 20% larger. autorotate: write the frames upright as the
    source's display matrix says (they go through RGB then); without it, as stored. Either way
    the output has no display matrix.
    """
    copies = _resampled_copies(source, target_fps) if target_fps is not None else None
    container, stream = open_video(source, threads=1)
    temporary = f"{target}.part"
    count = 0
    try:
        frames = container.decode(stream)
        first = next(frames, None)
        orientation = frame_orientation(first) if autorotate and first is not None else UPRIGHT
        upright = orientation.size(stream.codec_context.width, stream.codec_context.height)
        width, height = _even_size(*upright, short_side)
        stored_width, stored_height = orientation.size(width, height)  # the same frame, as stored
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        by_count = container.format.name in DECODE_ORDER_TIMESTAMP_FORMATS or copies is not None
        if copies is not None:
            rate = Fraction(target_fps).limit_denominator(100_000)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with VideoEncoder(temporary, width=width, height=height, fps=rate, gop=gop, crf=crf,
                          bframes=3, time_base=1 / rate if by_count else stream.time_base,
                          container_format="mp4", threads=1,
                          options={"tune": "fastdecode"} if fast_decode else None) as encoder:
            last_pts, reformatter = None, VideoReformatter()  # one scaler for all frames
            for number, frame in enumerate(itertools.chain([first] if first is not None else [], frames)):
                repeats = 1 if copies is None else (int(copies[number]) if number < len(copies) else 0)
                if not repeats:
                    continue  # a frame the target rate skips: not even converted
                if orientation == UPRIGHT:
                    small = reformatter.reformat(frame, width=width, height=height, format="yuv420p")
                else:  # turned in RGB (H, W, 3), as the reader turns it
                    small = orientation.apply(reformatter.reformat(
                        frame, width=stored_width, height=stored_height, format="rgb24").to_ndarray())
                for _ in range(repeats):
                    pts = count if by_count else frame.pts
                    if pts is None or (last_pts is not None and pts <= last_pts):
                        pts = 0 if last_pts is None else last_pts + 1  # damaged: keep the order
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


def _resampled_copies(source: str, target_fps: float):
    """How many times each native frame of `source` is written at `target_fps` (0: skipped)."""
    import numpy as np

    from action3d.data.decode import VideoReader
    from action3d.data.sampling import resample_indices, timing_of

    with VideoReader(source, autorotate=False) as reader:
        native = resample_indices(reader.num_frames, reader.fps, target_fps, timing_of(reader))
        return np.bincount(native, minlength=reader.num_frames)


def _run_job(job: _Job) -> str | None:
    """Worker entry point: None on success, else a one-line reason."""
    try:
        transcode(job.source, job.target, short_side=job.short_side, gop=job.gop, crf=job.crf,
                  fast_decode=job.fast_decode, autorotate=job.autorotate, target_fps=job.target_fps)
        return None
    except Exception as error:  # noqa: BLE001 - every failure is reported, none is fatal
        if isinstance(error, Action3dError):
            return str(error)  # already names the file
        return f"{job.source}: {describe_error(error)}"


def prepare_dataset(samples: Sequence[tuple[str, int]], *, root: str | Path, out: str | Path,
                    short_side: int = 128, gop: int = 16, workers: int = 2, crf: int = 23,
                    fast_decode: bool = True, progress: bool = True,
                    autorotate: bool = True, part: tuple[int, int] | None = None,
                    target_fps: float | None = None) -> list[tuple[str, int]]:
    """Re-encode every video of `samples` (absolute path, label) from under `root` into `out`.

    Returns (path relative to `out`, label) of every video that is prepared (now or by an
    earlier run), in the order of `samples`. Failures are logged, listed in
    `out/prepare_failures.txt` and left out of the result; they do not stop the run.
    autorotate: write sideways phone videos upright (data.autorotate). target_fps: store every
    video at that frame rate (`transcode`).
    part: (I, N) re-encodes only the I-th of N parts of the distinct videos (`videos_of_part`),
    returns only those, and records its failures in `out/.parts/I-of-N.json` when it is done
    (`merge_parts` then combines the N records); another machine may run each part.
    """
    if short_side <= 0 or gop <= 0:
        raise Action3dError(
            f"prepare: short_side and gop must be positive, got {short_side} and {gop}")
    root, out = Path(os.path.abspath(root)), Path(os.path.abspath(out))  # keep symlinks as given
    if out == root:
        raise Action3dError(f"prepare: out={out} is the dataset root; choose another folder")
    relative = [relative_to_root(path, root, command="prepare") for path, _ in samples]
    mine = videos_of_part(relative, part) if part else None
    jobs = {}  # one job per distinct video (train and val lists may share files)
    for (path, _), rel in zip(samples, relative):
        target = out / prepared_name(rel)
        if mine is not None and prepared_name(rel) not in mine:
            continue
        if not target.exists() and str(target) not in jobs:
            jobs[str(target)] = _Job(str(path), str(target), short_side, gop, crf, fast_decode, autorotate,
                                     target_fps)

    _, failures = run_video_jobs(list(jobs.values()), _run_job, workers=workers, progress=progress,
                                 command="prepare")
    if part:
        _write_part_record(out, part, plan=_plan_digest(relative), videos=len(mine), failures=failures)
    else:
        write_failures(out / FAILURES_FILE, failures)
    failed_targets = {target for target, _ in failures}
    return [(prepared_name(rel), label) for (_, label), rel in zip(samples, relative, strict=True)
            if str(out / prepared_name(rel)) not in failed_targets and (mine is None or prepared_name(rel) in mine)]


# --------------------------------------------------------------------------- parts (several machines)

PARTS_DIR = ".parts"  # under `out`: one record per finished part


def videos_of_part(relative_paths: Sequence[str], part: tuple[int, int]) -> set[str]:
    """The prepared names of part I of N: of the distinct videos sorted by name, every N-th from
    the I-th. A function of the names alone, so every machine computes the same split whatever
    order its lists come in, and the N parts are disjoint and cover every video."""
    index, count = part
    return set(sorted({prepared_name(rel) for rel in relative_paths})[index - 1::count])


def _plan_digest(relative_paths: Sequence[str]) -> str:
    """A fingerprint of the distinct videos: the parts of one job must have seen the same list."""
    names = "\n".join(sorted({prepared_name(rel) for rel in relative_paths}))
    return hashlib.blake2b(names.encode(), digest_size=12).hexdigest()


def _part_record(out: Path, part: tuple[int, int]) -> Path:
    return out / PARTS_DIR / f"{part[0]}-of-{part[1]}.json"


def _write_part_record(out: Path, part: tuple[int, int], *, plan: str, videos: int,
                       failures: list[tuple[str, str]]) -> None:
    record = {"part": part[0], "parts": part[1], "plan": plan, "videos": videos,
              "failures": {target: reason for target, reason in failures}}
    atomic_write(_part_record(out, part), json.dumps(record, indent=1))


def merge_parts(samples: Sequence[tuple[str, int]], *, root: str | Path, out: str | Path) -> int:
    """Check that every part of the job that prepared `samples` into `out` has finished, and write
    `out/prepare_failures.txt` from their records (as a one-machine run would). Returns the
    number of failed videos. Raises `Action3dError` naming the parts that are missing or that
    were run on another video list."""
    root, out = Path(os.path.abspath(root)), Path(os.path.abspath(out))
    records = []
    for path in sorted((out / PARTS_DIR).glob("*-of-*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise Action3dError(f"prepare merge: unreadable part record {path} ({err}); run that part again") from None
    if not records:
        raise Action3dError(f"prepare merge: no finished parts in {out / PARTS_DIR}; run `action3d data prepare ... "
                            "part=I/N` for I = 1..N first")
    counts = {r["parts"] for r in records}
    if len(counts) != 1:
        raise Action3dError(f"prepare merge: {out / PARTS_DIR} holds parts of different splits "
                            f"(N = {', '.join(map(str, sorted(counts)))}); remove the stale records")
    count = counts.pop()
    missing = sorted(set(range(1, count + 1)) - {r["part"] for r in records})
    if missing:
        raise Action3dError(f"prepare merge: part(s) {', '.join(f'{i}/{count}' for i in missing)} have not finished "
                            f"(no {out / PARTS_DIR}/I-of-{count}.json); run them first")
    plan = _plan_digest([relative_to_root(path, root, command="prepare") for path, _ in samples])
    stale = [f"{r['part']}/{count}" for r in records if r["plan"] != plan]
    if stale:
        raise Action3dError(f"prepare merge: part(s) {', '.join(stale)} ran on another video list (the annotations "
                            "or data.root changed since); run them again")
    failures = [(target, reason) for r in records for target, reason in r["failures"].items()]
    write_failures(out / FAILURES_FILE, failures)
    return len(failures)


def prepared_lists(splits: dict[str, Sequence[tuple[str, int]]], *, root: str | Path, out: str | Path
                   ) -> dict[str, list[tuple[str, int]]]:
    """Per split, (absolute prepared path, label) of each video whose prepared file exists under
    `out` (a finished file exists only under its final name), in the order of the split."""
    root, out = Path(os.path.abspath(root)), Path(os.path.abspath(out))
    lists = {}
    for split, samples in splits.items():
        targets = [(out / prepared_name(relative_to_root(path, root, command="prepare")), label)
                   for path, label in samples]
        lists[split] = [(str(target), label) for target, label in targets if target.is_file()]
    return lists
