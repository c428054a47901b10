#!/usr/bin/env python
"""Build action3d list files (`relative/path.mp4 label`) and classes.txt from a downloaded dataset.

    python scripts/make_lists.py ucf101   --root UCF-101 --annotations ucfTrainTestlist --split 1 --out lists/ucf101
    python scripts/make_lists.py hmdb51   --root hmdb51 --annotations testTrainMulti_7030_splits --split 1 \
        --out lists/hmdb51
    python scripts/make_lists.py kinetics --root kinetics400/videos --train-csv train.csv --val-csv validate.csv \
        --out lists/k400
    python scripts/make_lists.py folder   --root myset --out lists/myset      # myset/{train,val}/CLASS/*.mp4

Writes OUT/train.txt, OUT/val.txt and OUT/classes.txt, with paths relative to --root, so that

    action3d train data=folder data.root=ROOT data.train_list=OUT/train.txt data.val_list=OUT/val.txt

trains on them (classes.txt beside the training list is picked up). With --check, each video is
also decoded and unreadable ones are left out of the lists (as `action3d data check` does).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from action3d.config import DataConfig
from action3d.data.annotations import load_split, write_classes_file, write_list_file
from action3d.errors import Action3dError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = parser.add_subparsers(dest="dataset", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", required=True, help="folder holding the videos")
        p.add_argument("--out", required=True, help="folder for train.txt, val.txt and classes.txt")
        p.add_argument("--check", action="store_true", help="decode every video, leave out unreadable ones")
        p.add_argument("--workers", type=int, default=2, help="processes for --check (default 2)")

    for name in ("ucf101", "hmdb51"):
        p = sub.add_parser(name, help=f"{name.upper()} official split files")
        common(p)
        p.add_argument("--annotations", required=True,
                       help="folder of the split files (ucfTrainTestlist / testTrainMulti_7030_splits)")
        p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p = sub.add_parser("kinetics", help="Kinetics CSVs (label,youtube_id,time_start,time_end,split)")
    common(p)
    p.add_argument("--train-csv", required=True)
    p.add_argument("--val-csv", required=True)
    p = sub.add_parser("folder", help="class folders: ROOT/train/CLASS/* and ROOT/val/CLASS/*")
    common(p)
    p.add_argument("--train-dir", default="train")
    p.add_argument("--val-dir", default="val")
    return parser.parse_args(argv)


def data_config(args: argparse.Namespace) -> DataConfig:
    if args.dataset in ("ucf101", "hmdb51"):
        return DataConfig(format=args.dataset, root=args.root, annotation_dir=args.annotations, split=args.split)
    if args.dataset == "kinetics":
        return DataConfig(format="kinetics", root=args.root, train_list=args.train_csv, val_list=args.val_csv)
    return DataConfig(format="folder", root=args.root, train_list=args.train_dir, val_list=args.val_dir)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        cfg = data_config(args)
        classes = None
        for split in ("train", "val"):
            samples, classes = load_split(cfg, split)
            if args.check:
                from action3d.data.check import check_dataset

                report = check_dataset(samples, root=args.root, min_frames=1, workers=args.workers)
                print(report.summary())
                samples = report.good
            write_list_file(out / f"{split}.txt", samples, args.root)
            print(f"{out / f'{split}.txt'}: {len(samples)} videos")
        write_classes_file(out / "classes.txt", classes)
        print(f"{out / 'classes.txt'}: {len(classes)} classes")
    except Action3dError as err:
        print(f"make_lists: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
