"""`action3d data synth|check|prepare|pack|extract ...`: the dataset tools behind one command."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from action3d.commands import _hydra
from action3d.config import DataCommandConfig

log = logging.getLogger("action3d")


def run(cfg: DataCommandConfig) -> Any:
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    _refuse_frame_folders(cfg)
    return {"synth": synth, "check": check, "prepare": prepare, "pack": pack, "extract": extract}[cfg.action](cfg)


def _refuse_frame_folders(cfg: DataCommandConfig) -> None:
    """check, prepare, pack and extract read video files; a frame-folder dataset has none."""
    from action3d.data.formats import format_of
    from action3d.errors import Action3dError

    if cfg.action != "synth" and format_of(cfg.data).frames:
        raise Action3dError(f"data {cfg.action} reads video files and data.format={cfg.data.format} holds folders of "
                            "frames; give the source videos' dataset (data=...), or train and eval on the frames")


def _splits(cfg: DataCommandConfig):
    from action3d.data.annotations import has_split

    wanted = ["train", "val"] if cfg.split == "all" else [cfg.split]
    return [s for s in wanted if has_split(cfg.data, s)]


def _resolved_splits(cfg: DataCommandConfig):
    """The resolved data config, and per split its samples (a SampleIndex, cached) and classes."""
    from action3d.data.index import resolve_index
    from action3d.engine.data import resolve_data

    data = resolve_data(cfg.data)
    return data, {split: resolve_index(data, split) for split in _splits(cfg)}


def synth(cfg: DataCommandConfig) -> Path:
    from action3d.data.synthetic import make_synthetic

    out = Path(cfg.out)
    multi_label = cfg.data.multi_label
    make_synthetic(out, cfg.data.synthetic, progress=True, multi_label=multi_label)
    print(f"synthetic dataset written to {out} (train.txt, val.txt, classes.txt); train on it with "
          f"data=folder data.root={out} data.train_list={out}/train.txt data.val_list={out}/val.txt"
          + (" data.multi_label=true" if multi_label else ""))
    return out


def check(cfg: DataCommandConfig) -> Any:
    from action3d.data.annotation_io import write_list_file
    from action3d.data.check import check_dataset

    data, splits = _resolved_splits(cfg)
    span = (data.clip_len - 1) * data.frame_interval + 1
    reports = {}
    for split, (samples, _) in splits.items():
        report = check_dataset(samples, root=data.root, min_frames=cfg.min_frames or span, workers=cfg.workers)
        reports[split] = report
        print(report.summary() if hasattr(report, "summary") else report)
        if cfg.out:
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            write_list_file(out / f"{split}_clean.txt", report.good, data.root)
            print(f"cleaned list: {out / f'{split}_clean.txt'}")
    return reports


def prepare(cfg: DataCommandConfig) -> Path:
    """Re-encode (all, or part I of N), or merge finished parts; then write the list files."""
    from action3d.config.commands import PREPARE_SHORT_SIDE, parse_part
    from action3d.data.annotation_io import write_classes_file, write_list_file
    from action3d.data.prepare import merge_parts, prepare_dataset, prepared_lists

    part = parse_part(cfg.part)
    data, splits = _resolved_splits(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    every = [sample for samples, _ in splits.values() for sample in samples]  # one job per distinct video
    if cfg.merge:
        failed = merge_parts(every, root=data.root, out=out)
        print(f"merged the finished parts in {out}: {failed} videos failed (prepare_failures.txt)")
    else:
        short_side = PREPARE_SHORT_SIDE if cfg.short_side is None else cfg.short_side
        done = prepare_dataset(every, root=data.root, out=out, short_side=short_side, gop=cfg.gop,
                               workers=cfg.workers, crf=cfg.crf, autorotate=data.autorotate, part=part,
                               target_fps=cfg.target_fps)
        if part:
            print(f"part {part[0]}/{part[1]}: {len({p for p, _ in done})} videos re-encoded into {out}; when every "
                  f"part is done, write the lists with the same command and merge=true instead of part=")
            return out
    lists = prepared_lists({split: samples for split, (samples, _) in splits.items()}, root=data.root, out=out)
    for split, prepared in lists.items():
        write_list_file(out / f"{split}.txt", prepared, out)
        print(f"{split}: {len(prepared)} of {len(splits[split][0])} videos re-encoded into {out} "
              f"-> {out / f'{split}.txt'}")
    classes = next((c for _, c in splits.values() if c), None)
    if classes:
        write_classes_file(out / "classes.txt", classes)
    rate = f" (stored at {cfg.target_fps:g} fps: give data.target_fps={cfg.target_fps:g} too)" if cfg.target_fps else ""
    print(f"train on it with data=folder data.root={out} data.train_list={out}/train.txt "
          f"data.val_list={out}/val.txt data.classes_file={out}/classes.txt{rate}")
    return out


def pack(cfg: DataCommandConfig) -> Path:
    """Write the videos of every split into webdataset tar shards under out=DIR."""
    from action3d.data.shard_pack import pack_dataset

    data, splits = _resolved_splits(cfg)
    out = Path(cfg.out)
    classes = next(c for _, c in splits.values())
    index = pack_dataset({split: samples for split, (samples, _) in splits.items()}, classes=classes, out=out,
                         shard_mb=cfg.shard_mb, source={"format": data.format, "root": str(data.root)})
    for split, entry in index["splits"].items():
        print(f"{split}: {entry['samples']} videos in {len(entry['shards'])} shards -> {out / split}")
    print(f"train on it with data=shards data.root={out} (and the sampling/crop overrides of the source "
          f"dataset, e.g. data.clip_len={data.clip_len} data.crop_size={data.crop_size})")
    return out


def extract(cfg: DataCommandConfig) -> Path:
    """Write the frames of every video of the splits as JPEG folders under out=DIR, with rawframes lists."""
    import os

    from action3d.data.extract import FAILURES_FILE, check_out, extract_dataset, extract_settings

    check_out(cfg.out, extract_settings(short_side=cfg.short_side, quality=cfg.quality,
                                        autorotate=cfg.data.autorotate))   # before the dataset is read
    data, splits = _resolved_splits(cfg)
    out = Path(cfg.out)
    every = [path for samples, _ in splits.values() for path, _ in samples]
    root = data.root or os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in every] or ["."])
    classes = next((c for _, c in splits.values() if c), [])
    done = extract_dataset({split: samples for split, (samples, _) in splits.items()}, classes=classes, root=root,
                           out=out, short_side=cfg.short_side, quality=cfg.quality, workers=cfg.workers,
                           autorotate=data.autorotate)
    for split, entries in done.lists.items():
        print(f"{split}: {len(entries)} of {len(splits[split][0])} videos extracted into {out} "
              f"-> {out / f'{split}.txt'}")
    if done.failures:
        print(f"{done.failures} videos failed: {out / FAILURES_FILE}")
    lists = " ".join(f"data.{split}_list={out / f'{split}.txt'}" for split in done.lists)
    rate = ""
    if len(done.rates) == 1:
        rate = f" (add data.fps={done.rates[0]:g} for data.target_fps: the videos' rate)"
    elif done.rates:
        rate = (f" (the videos' rates differ: {', '.join(f'{r:g}' for r in done.rates)} fps; data.fps is one rate for "
                "all folders)")
    print(f"train on it with data.format=rawframes data.root={out} {lists} data.classes_file={out}/classes.txt{rate}")
    return out
