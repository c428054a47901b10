"""`action3d data extract`: videos -> frame folders in mmaction2's rawframes layout, with lists.

Every frame of a video `ROOT/REL/NAME.mp4` becomes `OUT/REL/NAME/img_00001.jpg`, `img_00002.jpg`
... (`DEFAULT_FILENAME_TMPL` from `DEFAULT_START_INDEX`, the defaults of data.filename_tmpl and
data.start_index), in presentation order: frame i of the folder is frame i of the video as
`VideoReader` numbers them, upright (data.autorotate) and, with `short_side`, scaled in libswscale
exactly as the reader scales with data.decode_short_side. The JPEGs are written by
`torchvision.io.encode_jpeg` at `quality`. Then `OUT/train.txt` and `OUT/val.txt` list
`REL/NAME total_frames label` and `OUT/classes.txt` the classes, so that
`data.format=rawframes data.root=OUT data.train_list=OUT/train.txt ...` trains on it.

Complete or absent: a video's frames are written into a hidden sibling folder (`.NAME.part`) that is
renamed to `NAME` once its last frame is written, so a folder under its final name is always whole.
A second run into the same OUT skips the finished folders (resumable: a killed run loses only the
videos it was writing); `OUT/extract.json` records the settings, and a run with other settings, or
into a folder that holds anything else, is refused in one line. Videos that fail are listed in
`OUT/extract_failures.txt` and left out of the lists; they do not stop the run.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from action3d.data.annotation_io import Label, write_classes_file
from action3d.data.formats.rawframes import (
    DEFAULT_FILENAME_TMPL,
    DEFAULT_START_INDEX,
    Entry,
    frame_name,
    write_rawframe_list,
)
from action3d.data.video_jobs import relative_to_root, run_video_jobs, write_failures
from action3d.errors import Action3dError
from action3d.files import atomic_write

RECORD_FILE = "extract.json"              # in OUT: the settings the folders were written with
FAILURES_FILE = "extract_failures.txt"    # in OUT: one reason (naming its video) a line
RECORD_FORMAT = "action3d-rawframes-v1"


@dataclass(frozen=True)
class Extracted:
    """What `extract_dataset` did: per split the listed entries, the frame rates of the videos
    extracted by this run (sorted, distinct) and the number of videos that failed."""
    lists: Dict[str, List[Entry]]
    rates: List[float]
    failures: int


@dataclass(frozen=True)
class _Job:
    source: str
    target: str
    short_side: Optional[int]
    quality: int
    autorotate: bool


def frames_folder(relative_path: str) -> str:
    """Where a video's frames land under OUT: its relative path without the extension."""
    return str(Path(relative_path).with_suffix(""))


def video_frames(path: str, *, short_side: Optional[int] = None, autorotate: bool = True
                 ) -> Iterator[np.ndarray]:
    """Every frame of the video at `path`, decoded front to back, as (H, W, 3) uint8 RGB: the
    frames `VideoReader(path, short_side=..., autorotate=...)` reads, one at a time."""
    import av
    from av.video.reformatter import VideoReformatter

    from action3d.data.decode import DecodeError, describe_error, open_video, output_size
    from action3d.data.orientation import UPRIGHT, frame_orientation

    container, stream = open_video(path, threads=1)
    try:
        width, height = output_size(stream.codec_context.width, stream.codec_context.height, short_side)
        reformatter, orientation, count = VideoReformatter(), None, 0
        try:
            for frame in container.decode(stream):
                if orientation is None:
                    orientation = frame_orientation(frame) if autorotate else UPRIGHT
                rgb = reformatter.reformat(frame, width=width, height=height, format="rgb24", threads=1)
                yield orientation.apply(rgb.to_ndarray()[None])[0]
                count += 1
        except av.error.FFmpegError as error:
            raise DecodeError(f"{path}: decoding failed after {count} frames ({describe_error(error)})") from None
        if count == 0:
            raise DecodeError(f"{path}: no decodable frames")
    finally:
        container.close()


def video_fps(path: str) -> float:
    """The video's frame rate as `VideoReader.fps` reports it (25 when the container has none)."""
    from action3d.data.decode import open_video

    container, stream = open_video(path, threads=1)
    try:
        return float(stream.average_rate or stream.guessed_rate or 0) or 25.0
    finally:
        container.close()


def extract_video(source: str, target: str, *, short_side: Optional[int] = None, quality: int = 95,
                  autorotate: bool = True) -> Tuple[int, float]:
    """Write every frame of `source` as JPEGs into the folder `target` (complete or absent, see the
    module docstring); return (frames written, the video's frame rate)."""
    import torch
    from torchvision.io import encode_jpeg

    import action3d.data.frames  # noqa: F401 - silences torchvision's codec notice (see there)

    target_path = Path(target)
    temporary = target_path.parent / f".{target_path.name}.part"
    shutil.rmtree(temporary, ignore_errors=True)   # left by a killed run
    temporary.mkdir(parents=True)
    count = 0
    try:
        for count, frame in enumerate(video_frames(source, short_side=short_side, autorotate=autorotate), start=1):
            data = encode_jpeg(torch.from_numpy(frame).permute(2, 0, 1).contiguous(), quality=quality)
            name = frame_name(DEFAULT_FILENAME_TMPL, DEFAULT_START_INDEX + count - 1, target_path.name)
            with open(temporary / name, "wb") as f:
                f.write(data.numpy().tobytes())
        fps = video_fps(source)
        os.rename(temporary, target_path)   # only now does the finished folder exist
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return count, fps


def _run_job(job: _Job):
    """Worker entry point: (frames, fps) on success, else a one-line reason."""
    import torch

    torch.set_num_threads(1)
    try:
        return extract_video(job.source, job.target, short_side=job.short_side, quality=job.quality,
                             autorotate=job.autorotate)
    except Exception as error:  # noqa: BLE001 - every failure is reported, none is fatal
        from action3d.data.decode import describe_error

        return str(error) if isinstance(error, Action3dError) else f"{job.source}: {describe_error(error)}"


def extract_settings(*, short_side: Optional[int], quality: int, autorotate: bool) -> Dict:
    """What `OUT/extract.json` records: the settings the frames of OUT are written with."""
    return {"format": RECORD_FORMAT, "short_side": short_side, "quality": quality, "autorotate": autorotate,
            "filename_tmpl": DEFAULT_FILENAME_TMPL, "start_index": DEFAULT_START_INDEX}


def check_out(out: str | Path, settings: Dict) -> None:
    """OUT is new, empty, or holds frames extracted with the same settings (then the run resumes);
    else a one-line error (the command line asks before it reads the dataset)."""
    out = Path(os.path.abspath(out))
    record = out / RECORD_FILE
    if record.is_file():
        try:
            found = json.loads(record.read_text())
        except (OSError, ValueError) as err:
            raise Action3dError(f"extract: {record} is unreadable ({err}); extract into a new folder") from None
        if found != settings:
            keys = [key for key in settings if found.get(key) != settings[key]]
            then = ", ".join(f"{key}={found.get(key)}" for key in keys)
            now = ", ".join(f"{key}={settings[key]}" for key in keys)
            raise Action3dError(f"extract: out={out} holds frames extracted with {then} (this run: {now}); give the "
                                "same settings to resume there, or extract into another folder")
    elif out.is_dir() and any(out.iterdir()):
        raise Action3dError(f"extract: out={out} is not empty and holds no {RECORD_FILE} (no earlier extraction to "
                            "resume); choose a new or empty folder")


def extract_dataset(splits: Dict[str, Sequence[Tuple[str, Label]]], *, classes: Sequence[str], root: str | Path,
                    out: str | Path, short_side: Optional[int] = None, quality: int = 95, workers: int = 2,
                    autorotate: bool = True, progress: bool = True) -> Extracted:
    """Extract every video of `splits` (split -> (absolute video path, label)) from under `root`
    into frame folders under `out`, and write the lists and classes.txt there.

    Returns per split the `(folder, total_frames, label)` of each video extracted (now or by an
    earlier run), in the split's order, as `OUT/SPLIT.txt` lists them; the frame rates of the
    videos extracted now; how many failed (`OUT/extract_failures.txt`).
    """
    if short_side is not None and short_side < 1:
        raise Action3dError(f"extract: short_side must be a positive number of pixels, got {short_side}")
    if not 1 <= quality <= 100:
        raise Action3dError(f"extract: quality must be 1..100, got {quality}")
    root, out = Path(os.path.abspath(root)), Path(os.path.abspath(out))
    if out == root:
        raise Action3dError(f"extract: out={out} is the dataset root; choose another folder")
    settings = extract_settings(short_side=short_side, quality=quality, autorotate=autorotate)
    check_out(out, settings)
    targets: Dict[str, str] = {}   # absolute video -> its folder, one job per distinct video
    owner: Dict[str, str] = {}     # folder -> the video that fills it
    for samples in splits.values():
        for path, _ in samples:
            source = os.path.abspath(path)
            if source in targets:
                continue
            folder = str(out / frames_folder(relative_to_root(source, root, command="extract")))
            if owner.setdefault(folder, source) != source:
                raise Action3dError(f"extract: {owner[folder]} and {source} would both be extracted into {folder}; "
                                    "rename one of them")
            targets[source] = folder
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / RECORD_FILE, json.dumps(settings, indent=1))
    jobs = [_Job(source, folder, short_side, quality, autorotate) for source, folder in targets.items()
            if not os.path.isdir(folder)]
    done, failures = run_video_jobs(jobs, _run_job, workers=workers, progress=progress, command="extract")
    write_failures(out / FAILURES_FILE, failures)
    rates = sorted({fps for _, fps in done.values()})
    result: Dict[str, List[Entry]] = {}
    for split, samples in splits.items():
        entries = []
        for path, label in samples:
            folder = targets[os.path.abspath(path)]
            if folder in done:
                entries.append((folder, done[folder][0], label))
            elif os.path.isdir(folder):   # finished by an earlier run
                entries.append((folder, _count_files(folder), label))
        result[split] = entries
        write_rawframe_list(out / f"{split}.txt", entries, out)
    if classes:
        write_classes_file(out / "classes.txt", list(classes))
    return Extracted(lists=result, rates=rates, failures=len(failures))


def _count_files(folder: str) -> int:
    """Frames of a folder this tool wrote: img_00001.jpg on, without gaps (it writes nothing else)."""
    from action3d.data.frames import count_frames

    return count_frames(folder, filename_tmpl=DEFAULT_FILENAME_TMPL, start_index=DEFAULT_START_INDEX)
