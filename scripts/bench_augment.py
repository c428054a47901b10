"""Does each augmentation help? Val top-1 with and without it on a small split of the synthetic set
that overfits, over 3 seeds (run by hand, not in `make test`).

    python scripts/bench_augment.py                      # the full table: ~10 min on 2 cores
    python scripts/bench_augment.py --quick              # a smoke run: 3 rows, 1 seed, 1 epoch

The split: the 8 motions of the synthetic set (48 training and 16 validation videos per class, 12
frames of 32 px), of which training keeps the first 8 videos per class (64 videos) and validation
all 128. The model and inputs are the learned-effect tests' (tests/synthetic_subsets.py): the tiny
model at 8 base channels with a 3x5x5 stem and no stem max-pool, 4 frames 3 apart, AdamW at 3e-3,
batch 8, fp32, one validation after the last epoch (reported: its top-1, the same as best.pt's).
The baseline crops 50-100% of the frame's area (recipe=demo's); data.flip stays false (mirrored
motions are other classes). Each row adds one part to the baseline at the zoos' strength:

- RandAugment m7 n4 mstd0.5 and random erasing 0.25, mixup 0.8 / CutMix 1.0: PySlowFast's MViTv2
  and VideoMAE values (recipe=strong_aug has them all, with label smoothing 0.1);
- AugMix severity 3, width 3, depth 1-3, alpha 1: timm's defaults;
- colour jitter 0.4 (brightness, contrast, saturation) and hue 0.1, grayscale 0.2: torchvision's
  and SimCLR's usual values;
- short-side jitter: the short side to [36, 46] then 32-px crops, the ratio of PySlowFast's
  [256, 320] to its 224 crops.

Runs go `--jobs` at a time (default 2: one per core, one intra-op thread each), each in its own
process. The report (bench_results/augment.json) holds every run's figures and the machine; each
finished run is also appended to bench_results/augment.runs.jsonl, and a rerun with the same
settings takes the runs it finds there (delete the file to start over).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import command_line, format_table, machine_info, write_json  # noqa: E402

SET = ["data.synthetic.train_per_class=48", "data.synthetic.val_per_class=16", "data.synthetic.num_frames=12",
       "data.synthetic.size=32"]
PER_CLASS = 8
MODEL = ["model.base_channels=8", "model.conv1_kernel=[3,5,5]", "model.with_pool1=false",
         "model.zero_init_residual=false", "model.dropout=0"]
TRAINING = ["data.clip_len=4", "data.frame_interval=3", "data.short_side=32", "data.crop_size=32", "data.flip=false",
            "data.num_workers=0", "data.batch_size=8", "optim.name=adamw", "optim.lr=0.003", "optim.weight_decay=1e-4",
            "sched.warmup_epochs=0", "trainer.precise_bn_batches=0", "trainer.device=cpu", "trainer.precision=32",
            "trainer.log_every=1000"]
CROP = ["data.crop_area_range=[0.5,1.0]"]   # the baseline's crop, unless a row chooses another data.train_crop
ROWS: Dict[str, List[str]] = {
    "baseline": [],
    "+RandAugment m7 n4 mstd0.5": ["data.rand_augment_n=4", "data.rand_augment_m=7", "data.rand_augment_mstd=0.5"],
    "+AugMix m3 w3": ["data.augmix_severity=3"],
    "+random erasing 0.25": ["data.erase_prob=0.25"],
    "+colour jitter 0.4/0.1": ["data.color_jitter=[0.4,0.4,0.4,0.1]"],
    "+grayscale 0.2": ["data.grayscale_prob=0.2"],
    "+short-side jitter [36,46]": ["data.train_crop=short_side_jitter", "data.train_scale_range=[36,46]"],
    "+mixup 0.8 / CutMix 1.0": ["data.mixup_alpha=0.8", "data.cutmix_alpha=1.0"],
    "recipe=strong_aug": ["recipe=strong_aug"],
}


def subset_lists(out: Path, root: Path, per_class: int) -> List[str]:
    """train.txt (the first `per_class` training videos of each class), val.txt (all) and
    classes.txt of the synthetic set at `root`, in `out`; the overrides that read them."""
    from action3d.data.annotations import read_list_file

    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        taken: Dict[int, int] = {}
        lines = []
        for path, label in read_list_file(root / f"{split}.txt", root=root):
            if split == "val" or taken.get(label, 0) < per_class:
                taken[label] = taken.get(label, 0) + 1
                lines.append(f"{path} {label}\n")
        (out / f"{split}.txt").write_text("".join(lines))
    (out / "classes.txt").write_text((root / "classes.txt").read_text())
    return ["data.format=list", f"data.root={root}", f"data.train_list={out / 'train.txt'}",
            f"data.val_list={out / 'val.txt'}", f"data.classes_file={out / 'classes.txt'}"]


def row_overrides(base: Sequence[str], row: Sequence[str]) -> List[str]:
    crop = [] if any(o.startswith("data.train_crop=") for o in row) else CROP
    return [*base, *crop, *row]


def run_key(overrides: Sequence[str], seed: int) -> str:
    """What a cached run is looked up by: its overrides (the lists' folder left out) and seed."""
    return json.dumps([sorted(o for o in overrides if "_list=" not in o and "classes_file=" not in o), seed])


def read_cache(path: Path) -> Dict[str, Dict[str, Any]]:
    if not path.is_file():
        return {}
    return {entry["key"]: entry["run"] for entry in map(json.loads, path.read_text().splitlines()) if entry}


def one_run(overrides: Sequence[str], run_dir: str, seed: int) -> Dict[str, Any]:
    """One training run in this (worker) process; its final val top-1 and time."""
    import torch

    torch.set_num_threads(1)
    from action3d.commands._hydra import typed_config
    from action3d.engine.train import Trainer

    start = time.time()
    cfg = typed_config("train", [*overrides, f"trainer.seed={seed}"])
    summary = Trainer(cfg, run_dir=Path(run_dir), seed=seed).fit()
    return {"seed": seed, "top1": summary["best_top1"], "seconds": time.time() - start}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40, help="training epochs per run (8 steps each)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one intra-op thread each")
    parser.add_argument("--rows", nargs="*", default=None, help="row names to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 rows, 1 seed, 1 epoch")
    parser.add_argument("--out", default="bench_results/augment.json")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.rows, args.epochs, args.seeds = ["baseline", "+short-side jitter [36,46]", "recipe=strong_aug"], 1, 1
    unknown = sorted(set(args.rows or ()) - set(ROWS))
    if unknown:
        print(f"bench_augment.py: error: unknown --rows {unknown}: the rows are {list(ROWS)}", file=sys.stderr)
        return 2
    rows = {name: ROWS[name] for name in (args.rows or ROWS)}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from action3d.commands._hydra import typed_config
    from action3d.engine.data import resolve_data

    root = Path(resolve_data(typed_config("train", SET).data).root)        # generated on first use
    machine = machine_info()
    started = time.time()
    cache_path = Path(args.out).with_suffix(".runs.jsonl")   # finished runs: a rerun skips them
    cache = read_cache(cache_path)
    with tempfile.TemporaryDirectory(prefix="bench-augment-") as folder:
        base = [*MODEL, *TRAINING, *subset_lists(Path(folder) / "lists", root, PER_CLASS),
                f"trainer.max_epochs={args.epochs}", f"trainer.val_every={args.epochs}"]
        for name in rows:                  # every row's config is checked before any training
            typed_config("train", row_overrides(base, rows[name]))
        jobs = [(name, seed) for name in rows for seed in range(args.seeds)]
        runs = {job: cache[run_key(row_overrides(base, rows[job[0]]), job[1])] for job in jobs
                if run_key(row_overrides(base, rows[job[0]]), job[1]) in cache}
        todo = [job for job in jobs if job not in runs]
        print(f"{len(todo)} runs of {args.epochs} epochs, {args.jobs} at a time ({len(runs)} from {cache_path})",
              flush=True)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(one_run, row_overrides(base, rows[job[0]]), f"{folder}/{i}", job[1]): job
                       for i, job in enumerate(todo)}
            for future in as_completed(futures):
                (name, seed), run = futures[future], future.result()
                runs[(name, seed)] = run
                with cache_path.open("a") as f:
                    f.write(json.dumps({"key": run_key(row_overrides(base, rows[name]), seed), "run": run}) + "\n")
                print(f"  {name} seed {seed}: top-1 {run['top1']:.3f} ({run['seconds']:.0f} s)", flush=True)
    results = [summarise(name, rows[name], [runs[(name, s)] for s in range(args.seeds)]) for name in rows]
    baseline = next((r for r in results if r["augmentation"] == "baseline"), None)
    for row in results:
        row["vs_baseline"] = None if baseline is None else row["mean"] - baseline["mean"]
    print(format_table(results, COLUMNS))
    report = {"command": command_line(), "machine": machine, "wall_seconds": time.time() - started,
              "settings": {"epochs": args.epochs, "seeds": args.seeds, "per_class_train": PER_CLASS,
                           "overrides": [*base[:len(MODEL) + len(TRAINING)], *CROP]},
              "results": results}
    print(f"wrote {write_json(args.out, report)} ({report['wall_seconds'] / 60:.1f} min)")
    return 0


def summarise(name: str, overrides: Sequence[str], runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    top1 = [run["top1"] for run in runs]
    return {"augmentation": name, "overrides": list(overrides), "top1": top1, "mean": statistics.fmean(top1),
            "sd": statistics.stdev(top1) if len(top1) > 1 else None, "min": min(top1), "max": max(top1),
            "seconds_per_run": statistics.fmean(run["seconds"] for run in runs)}


COLUMNS = [("augmentation", "augmentation", ""), ("val top-1 mean", "mean", ".3f"), ("SD", "sd", ".3f"),
           ("min", "min", ".3f"), ("max", "max", ".3f"), ("vs baseline", "vs_baseline", "+.3f"),
           ("s/run", "seconds_per_run", ".0f")]


if __name__ == "__main__":
    sys.exit(main())
