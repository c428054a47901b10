#!/usr/bin/env python
"""Decoding benchmark: clips/s of action3d's reader against a naive PyAV loop (and torchcodec).

    python scripts/bench_decode.py [--quick] [--clips N] [--out results.json] [VIDEO ...]
    python scripts/bench_decode.py --target-fps 15 [--quick] [--clips N] [VIDEO ...]

For every source video (generated Kinetics-like videos, plus any VIDEO given) and every clip
shape (16x4 and 32x2: clip_len x frame_interval, seeded random starts), each reader opens the
file, reads the clip's frame indices and closes it, as a dataset does once per sample:

- action3d:   action3d.data.decode.VideoReader (seek to a keyframe, decode forward, convert only
              the wanted frames);
- naive:      the PyAV loop people write: decode from the first frame, keep the wanted ones;
- torchcodec: torchcodec.decoders.VideoDecoder(seek_mode="exact"), when it is installed;
- prepared:   action3d's reader on the same video after `prepare_dataset(short_side=128, gop=16)`.

Readers run interleaved clip by clip on one core (torch and the decoders use one thread), so the
ratios compare like with like on a noisy machine. Every reader's frames are compared with the
naive loop's on the same file (for `prepared`: the naive loop on the prepared file, untimed).
Prints a table and writes JSON (default bench_results/decode.json).

`--target-fps F` measures clips sampled at F fps (`data.target_fps=F`: clip_len x frame_interval
counted in frames at F; 16x1 and 32x2) on today's prepared video (`prepare_dataset(short_side=128,
gop=16)`, native rate: the reader decodes the frames between the picked ones too) against the same
video prepared at that rate (`prepare_dataset(..., target_fps=F)`: it holds only the picked
frames). Both are compared with the source's frames at F (decoded at the prepared size, untimed):
mean absolute difference. Writes bench_results/decode_target_fps.json by default.
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import importlib.util
import pstats
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from _bench_common import command_line, format_table, kinetics_like_frames, machine_info, write_json  # noqa: E402

from action3d.data.decode import VideoReader  # noqa: E402
from action3d.data.prepare import prepare_dataset, prepared_name  # noqa: E402
from action3d.data.sampling import at_frame_rate  # noqa: E402
from action3d.data.video_writer import write_video  # noqa: E402

CLIP_SHAPES = ((16, 4), (32, 2))  # (clip_len, frame_interval)
TARGET_RATIO_TO_NAIVE = 1.5       # action3d / naive on raw 256-px videos
TARGET_PREPARED_CLIPS_PER_S = 50  # 16x4 clips after prepare short_side=128 gop=16
TARGET_RATIO_TO_TORCHCODEC = 1.0


@dataclass(frozen=True)
class SyntheticVideo:
    name: str
    width: int
    height: int
    fps: int
    seconds: int = 10
    keyframe_seconds: int = 2

    def path(self, folder: Path) -> Path:
        return folder / f"{self.name}_{self.width}x{self.height}_{self.fps}fps.mp4"


SYNTHETIC = (SyntheticVideo("kinetics256", 340, 256, 25),
             SyntheticVideo("kinetics256", 456, 256, 30),
             SyntheticVideo("hd720", 1280, 720, 30))


# -- test videos ---------------------------------------------------------------------------------

def ensure_synthetic(video: SyntheticVideo, folder: Path) -> Path:
    path = video.path(folder)
    if not path.exists():  # cached: generated once per machine
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part.mp4")
        write_video(partial, kinetics_like_frames(video.width, video.height, video.seconds * video.fps), fps=video.fps,
                    gop=video.fps * video.keyframe_seconds, bframes=3)  # x264's default B-frames
        partial.rename(path)
    return path


def ensure_prepared(path: Path, folder: Path, target_fps: float | None = None) -> Path:
    out = folder / hashlib.sha1(str(path.parent.resolve()).encode()).hexdigest()[:10]
    if target_fps is not None:
        out = out.with_name(f"{out.name}_{target_fps:g}fps")
    done = prepare_dataset([(str(path.resolve()), 0)], root=path.parent.resolve(), out=out,
                           short_side=128, gop=16, workers=1, progress=False, target_fps=target_fps)
    if not done:
        raise SystemExit(f"prepare failed for {path}: see {out}/prepare_failures.txt")
    return out / prepared_name(path.name)


# -- readers: path, frame indices -> uint8 (C, T, H, W) ------------------------------------------

def read_action3d(path, indices):
    with VideoReader(path, threads=1) as reader:
        return reader.read(indices)


def read_naive(path, indices):
    wanted, last, kept = set(indices), max(indices), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for number, frame in enumerate(container.decode(stream)):
            if number in wanted:
                kept[number] = frame.to_ndarray(format="rgb24")
            if number >= last:
                break
    return torch.from_numpy(np.stack([kept[i] for i in indices])).permute(3, 0, 1, 2)


def read_torchcodec(path, indices):
    from torchcodec.decoders import VideoDecoder
    decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1)
    return decoder.get_frames_at(indices=list(indices)).data.permute(1, 0, 2, 3)  # (C, T, H, W)


# -- measurement ---------------------------------------------------------------------------------

def frame_count(path) -> tuple[int, int, int, float]:
    with VideoReader(path) as reader:
        return reader.num_frames, reader.width, reader.height, reader.fps


def clips_for(num_frames, clip_len, interval, count, seed) -> list[list[int]]:
    """`count` clips of `clip_len` frames `interval` apart, at seeded random starts."""
    rng = np.random.default_rng(seed)
    span = (clip_len - 1) * interval + 1
    starts = rng.integers(0, max(1, num_frames - span + 1), count)
    return [[min(int(s) + i * interval, num_frames - 1) for i in range(clip_len)] for s in starts]


def compare(a: torch.Tensor, b: torch.Tensor) -> int:
    """0 when identical, else the largest absolute difference (255 for a shape mismatch)."""
    if a.shape != b.shape:
        return 255
    return int((a.int() - b.int()).abs().max())


def bench_source(path: Path, prepared: Path, clip_shape, count, seed, use_torchcodec):
    num_frames, width, height, fps = frame_count(path)
    clips = clips_for(num_frames, *clip_shape, count, seed)
    readers = {"action3d": (read_action3d, path), "naive": (read_naive, path)}
    if use_torchcodec:
        readers["torchcodec"] = (read_torchcodec, path)
    readers["prepared"] = (read_action3d, prepared)
    for read, file in readers.values():  # warm-up: imports, page cache
        read(file, clips[0])
    seconds = dict.fromkeys(readers, 0.0)
    max_diff = dict.fromkeys(readers, 0)
    for indices in clips:
        outputs = {}
        for name, (read, file) in readers.items():
            start = time.perf_counter()
            outputs[name] = read(file, indices)
            seconds[name] += time.perf_counter() - start
        for name in readers:
            if name == "prepared":
                reference = read_naive(prepared, indices)  # untimed: same file, naive loop
            else:
                reference = outputs["naive"]
            max_diff[name] = max(max_diff[name], compare(outputs[name], reference))
    rate = {name: len(clips) / seconds[name] for name in readers}
    return {
        "source": str(path), "prepared": str(prepared), "width": width, "height": height,
        "fps": round(fps, 3), "frames": num_frames, "clip": f"{clip_shape[0]}x{clip_shape[1]}",
        "clips": len(clips),
        "readers": {name: {"clips_per_s": round(rate[name], 2),
                           "ratio_to_naive": round(rate[name] / rate["naive"], 2),
                           "max_abs_diff": max_diff[name]} for name in readers},
    }


def check_targets(rows, generated) -> list[dict]:
    targets = []
    for row in rows:
        if row["source"] not in generated:
            continue
        readers, where = row["readers"], f"{Path(row['source']).name} {row['clip']}"
        kinetics_sized = min(row["width"], row["height"]) == 256  # the targets are set on these
        if kinetics_sized:
            ratio = readers["action3d"]["ratio_to_naive"]
            targets.append({"what": f"action3d / naive, {where}", "value": ratio,
                            "target": TARGET_RATIO_TO_NAIVE, "met": ratio >= TARGET_RATIO_TO_NAIVE})
        if kinetics_sized and row["clip"] == "16x4":
            rate = readers["prepared"]["clips_per_s"]
            targets.append({"what": f"prepared clips/s, {where}", "value": rate,
                            "target": TARGET_PREPARED_CLIPS_PER_S,
                            "met": rate >= TARGET_PREPARED_CLIPS_PER_S})
        if "torchcodec" in readers:
            ratio = readers["action3d"]["clips_per_s"] / readers["torchcodec"]["clips_per_s"]
            targets.append({"what": f"action3d / torchcodec, {where}", "value": round(ratio, 2),
                            "target": TARGET_RATIO_TO_TORCHCODEC,
                            "met": ratio >= TARGET_RATIO_TO_TORCHCODEC})
    return targets


def print_table(rows, targets) -> None:
    names = list(rows[0]["readers"])
    columns = [("source", "source", ""), ("size", "size", ""), ("clip", "clip", "")]
    columns += [(f"{name} clips/s", name, ".1f") for name in names]
    columns += [(f"{name}/naive", f"{name}/naive", ".2f") for name in names if name != "naive"]
    columns += [("frames", "frames", "")]
    table = []
    for row in rows:
        readers = row["readers"]
        diffs = {n: readers[n]["max_abs_diff"] for n in names if readers[n]["max_abs_diff"]}
        line = {"source": Path(row["source"]).name, "size": f"{row['width']}x{row['height']}",
                "clip": row["clip"],
                "frames": "identical" if not diffs else f"DIFFER (max abs diff {diffs})"}
        for name in names:
            line[name] = readers[name]["clips_per_s"]
            line[f"{name}/naive"] = readers[name]["ratio_to_naive"]
        table.append(line)
    print("clips/s, one core (open + read + close per clip)")
    print(format_table(table, columns))
    print()
    for target in targets:
        mark = "met " if target["met"] else "MISS"
        print(f"[{mark}] {target['what']}: {target['value']} (target {target['target']})")


def profile_prepared(prepared: Path, count: int, seed: int) -> None:
    num_frames = frame_count(prepared)[0]
    clips = clips_for(num_frames, 16, 4, count, seed)
    profiler = cProfile.Profile()
    profiler.enable()
    for indices in clips:
        read_action3d(prepared, indices)
    profiler.disable()
    print(f"\ncProfile of action3d on {prepared.name}, {count} 16x4 clips:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


# -- prepared at a target frame rate ---------------------------------------------------------------

TARGET_CLIP_SHAPES = ((16, 1), (32, 2))   # clip_len x frame_interval in frames at the target rate


def read_at_rate(path, indices, target_fps):
    """What VideoDataset does with data.target_fps: open, resample, read the clip's frames, close."""
    with VideoReader(path, threads=1) as video:
        return at_frame_rate(video, target_fps).read(indices)


def bench_target_fps(path: Path, prepared: Path, at_fps: Path, target_fps: float, clip_shape, count, seed):
    with VideoReader(prepared) as video:
        resampled = at_frame_rate(video, target_fps)
        num_frames, width, height, native = resampled.num_frames, video.width, video.height, video.fps
    with VideoReader(at_fps) as video:
        if video.num_frames != num_frames:
            raise SystemExit(f"{at_fps}: {video.num_frames} frames, but {prepared} at {target_fps:g} fps has "
                             f"{num_frames}")
    clips = clips_for(num_frames, *clip_shape, count, seed)
    files = {"prepared": prepared, "prepared_at_fps": at_fps}
    for file in files.values():
        read_at_rate(file, clips[0], target_fps)                      # warm-up
    seconds, diffs = dict.fromkeys(files, 0.0), {name: [] for name in files}
    with VideoReader(path, short_side=min(width, height), threads=1) as source:
        reference = at_frame_rate(source, target_fps)
        for indices in clips:
            wanted = reference.read(indices).float()[..., :height, :width]      # even sizes after prepare
            for name, file in files.items():
                start = time.perf_counter()
                frames = read_at_rate(file, indices, target_fps)
                seconds[name] += time.perf_counter() - start
                diffs[name].append(float((frames.float() - wanted).abs().mean()))
    rate = {name: len(clips) / seconds[name] for name in files}
    return {"source": str(path), "native_fps": round(native, 3), "target_fps": target_fps,
            "frames_at_target": num_frames, "size": f"{width}x{height}",
            "clip": f"{clip_shape[0]}x{clip_shape[1]}", "clips": len(clips),
            "file_mb": {name: round(Path(file).stat().st_size / 1e6, 3) for name, file in files.items()},
            "readers": {name: {"clips_per_s": round(rate[name], 2),
                               "mean_abs_diff_to_source": round(float(np.mean(diffs[name])), 2)} for name in files},
            "speedup": round(rate["prepared_at_fps"] / rate["prepared"], 2)}


def print_target_table(rows) -> None:
    columns = [("source", "source", ""), ("native fps", "native_fps", ".3g"), ("clip @ target", "clip", ""),
               ("prepared clips/s", "prepared", ".1f"), ("at-fps clips/s", "at_fps", ".1f"),
               ("speedup", "speedup", ".2f"), ("MB prepared", "mb", ".2f"), ("MB at-fps", "mb_at", ".2f"),
               ("diff prepared", "diff", ".2f"), ("diff at-fps", "diff_at", ".2f")]
    table = [{"source": Path(r["source"]).name, "native_fps": r["native_fps"], "clip": r["clip"],
              "prepared": r["readers"]["prepared"]["clips_per_s"],
              "at_fps": r["readers"]["prepared_at_fps"]["clips_per_s"], "speedup": r["speedup"],
              "mb": r["file_mb"]["prepared"], "mb_at": r["file_mb"]["prepared_at_fps"],
              "diff": r["readers"]["prepared"]["mean_abs_diff_to_source"],
              "diff_at": r["readers"]["prepared_at_fps"]["mean_abs_diff_to_source"]} for r in rows]
    print(f"clips/s at data.target_fps={rows[0]['target_fps']:g}, one core (open + read + close per clip); "
          "diff: mean abs difference to the source's frames at that rate")
    print(format_table(table, columns))


def main_target_fps(args, synthetic, count) -> int:
    started = time.perf_counter()
    sources = [ensure_synthetic(video, args.cache) for video in synthetic] + list(args.videos)
    prepared = {p: ensure_prepared(p, args.cache / "prepared") for p in sources}
    at_fps = {p: ensure_prepared(p, args.cache / "prepared", target_fps=args.target_fps) for p in sources}
    print(f"videos ready in {time.perf_counter() - started:.0f} s")
    rows = [bench_target_fps(p, prepared[p], at_fps[p], args.target_fps, shape, count, args.seed)
            for p in sources for shape in TARGET_CLIP_SHAPES]
    print_target_table(rows)
    out = args.out if args.out is not None else REPO / "bench_results" / "decode_target_fps.json"
    write_json(out, {"command": command_line(), "machine": {**machine_info(), "av": av.__version__},
                     "seed": args.seed, "clips_per_setting": count, "target_fps": args.target_fps, "rows": rows,
                     "seconds": round(time.perf_counter() - started, 1)})
    print(f"\nwrote {out} ({time.perf_counter() - started:.0f} s in all)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="*", type=Path, help="extra videos to measure")
    parser.add_argument("--quick", action="store_true", help="one 256-px video, fewer clips")
    parser.add_argument("--clips", type=int, default=None, help="clips per source and shape")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench_decode",
                        help="where generated and prepared videos are kept between runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: bench_results/decode.json (--target-fps: decode_target_fps.json)")
    parser.add_argument("--target-fps", type=float, default=None,
                        help="measure prepared-at-this-rate videos against today's prepared ones instead")
    parser.add_argument("--no-torchcodec", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the prepared reader")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    count = args.clips or (8 if args.quick else 20)
    synthetic = SYNTHETIC[:1] if args.quick else SYNTHETIC
    for path in args.videos:
        if not path.is_file():
            raise SystemExit(f"no such video: {path}")
    if args.target_fps is not None:
        return main_target_fps(args, synthetic, count)
    args.out = args.out if args.out is not None else REPO / "bench_results" / "decode.json"
    use_torchcodec = not args.no_torchcodec and importlib.util.find_spec("torchcodec") is not None
    if not use_torchcodec:
        print("torchcodec is not installed: its column is skipped")

    started = time.perf_counter()
    generated = [ensure_synthetic(video, args.cache) for video in synthetic]
    sources = generated + [path for path in args.videos]
    for path in args.videos:
        if not path.is_file():
            raise SystemExit(f"no such video: {path}")
    prepared = {path: ensure_prepared(path, args.cache / "prepared") for path in sources}
    print(f"videos ready in {time.perf_counter() - started:.0f} s")

    rows = []
    for path in sources:
        width, height = frame_count(path)[1:3]
        clips = count if width * height < 500_000 else max(2, count // 2)  # HD: naive is slow
        for shape in CLIP_SHAPES:
            rows.append(bench_source(path, prepared[path], shape, clips, args.seed,
                                     use_torchcodec))
    targets = check_targets(rows, {str(p) for p in generated})
    print_table(rows, targets)
    if args.profile:
        profile_prepared(prepared[generated[0]], count, args.seed)

    write_json(args.out, {
        "command": command_line(), "machine": {**machine_info(), "av": av.__version__},
        "seed": args.seed, "clips_per_setting": count, "rows": rows, "targets": targets,
        "seconds": round(time.perf_counter() - started, 1),
    })
    print(f"\nwrote {args.out} ({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
