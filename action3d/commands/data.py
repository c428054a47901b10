"""`action3d data synth|check|prepare ...`: the dataset tools behind one command."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from action3d.errors import Action3dError

log = logging.getLogger("action3d")


def run(cfg: DictConfig) -> Any:
    return {"synth": synth, "check": check, "prepare": prepare}[cfg.action](cfg)


def _out_dir(cfg: DictConfig) -> Path:
    if not cfg.out:
        raise Action3dError(f"data {cfg.action} needs out=DIR (the folder to write)")
    return Path(cfg.out)


def _splits(cfg: DictConfig):
    from action3d.data.annotations import has_split

    wanted = ["train", "val"] if cfg.split == "all" else [cfg.split]
    return [s for s in wanted if has_split(cfg.data, s)]


def synth(cfg: DictConfig) -> Path:
    from action3d.data.synthetic import make_synthetic

    out = _out_dir(cfg)
    make_synthetic(out, cfg.data.synthetic, progress=True)
    print(f"synthetic dataset written to {out} (train.txt, val.txt, classes.txt); train on it with "
          f"data=folder data.root={out} data.train_list={out}/train.txt data.val_list={out}/val.txt")
    return out


def check(cfg: DictConfig) -> Any:
    from action3d.data.annotations import load_split, write_list_file
    from action3d.data.check import check_dataset
    from action3d.engine.data import resolve_data

    data = resolve_data(cfg.data)
    span = (data.clip_len - 1) * data.frame_interval + 1
    reports = {}
    for split in _splits(cfg):
        samples, _ = load_split(data, split)
        report = check_dataset(samples, root=data.root, min_frames=cfg.min_frames or span, workers=cfg.workers)
        reports[split] = report
        print(report.summary() if hasattr(report, "summary") else report)
        if cfg.out:
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            write_list_file(out / f"{split}_clean.txt", report.good, data.root)
            print(f"cleaned list: {out / f'{split}_clean.txt'}")
    return reports


def prepare(cfg: DictConfig) -> Path:
    from action3d.data.annotations import load_split, write_list_file
    from action3d.data.prepare import prepare_dataset
    from action3d.engine.data import resolve_data

    data = resolve_data(cfg.data)
    out = _out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    classes = None
    for split in _splits(cfg):
        samples, classes = load_split(data, split)
        new = prepare_dataset(samples, root=data.root, out=out, short_side=cfg.short_side, gop=cfg.gop,
                              workers=cfg.workers, crf=cfg.crf)
        write_list_file(out / f"{split}.txt", [(str(out / p), label) for p, label in new], out)
        print(f"{split}: {len(new)} of {len(samples)} videos re-encoded into {out} -> {out / f'{split}.txt'}")
    if classes:
        (out / "classes.txt").write_text("\n".join(classes) + "\n")
    print(f"train on it with data=folder data.root={out} data.train_list={out}/train.txt "
          f"data.val_list={out}/val.txt data.classes_file={out}/classes.txt")
    return out
