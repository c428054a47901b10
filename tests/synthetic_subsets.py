"""List files over the synthetic set: subsets of its classes (relabelled 0..K-1) with a chosen
number of training videos per class, for the fine-tuning and imbalanced-data tests; and the
settings under which the tiny model learns these motions within a few hundred steps on a CPU.

    overrides = subset_lists(tmp_path, ["move_left", "move_up"], per_class=[16, 4], synthetic=LEARNABLE_SET)
    Trainer(typed_config("train", [*LEARNABLE, *overrides]), run_dir=..., seed=0).fit()
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

# 48 training and 16 validation videos per class, 12 frames of 32 px: generated once per session
# (~500 videos, tens of seconds); with fewer than ~48 videos per class the tiny model stays at chance
# for hundreds of steps.
LEARNABLE_SET = ["data.synthetic.train_per_class=48", "data.synthetic.val_per_class=16",
                 "data.synthetic.num_frames=12", "data.synthetic.size=32"]
# 4 frames 3 apart (the motion spans the clip), whole frames, no max-pool after the stem (a motion
# of 1 px/frame survives), no zero-init of the residual branches, AdamW: the model starts to learn
# at once instead of after a long plateau. fp32 on the CPU: the figures do not depend on whether
# the machine has native bf16. One validation at the end (trainer.val_every set by the tests).
LEARNABLE = [*LEARNABLE_SET, "data.clip_len=4", "data.frame_interval=3", "data.short_side=32", "data.crop_size=32",
             "data.batch_size=4", "data.crop_area_range=[1.0,1.0]", "data.num_workers=0", "model.base_channels=8",
             "model.with_pool1=false", "model.zero_init_residual=false", "model.dropout=0", "optim.name=adamw",
             "optim.lr=0.003", "optim.weight_decay=1e-4", "sched.warmup_epochs=0", "trainer.precise_bn_batches=0",
             "trainer.log_every=1000", "trainer.device=cpu", "trainer.precision=32"]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Import it into a test module: one intra-op thread there (two spinning threads on a shared
    2-core machine are many times slower, and the measured figures assume one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_root(synthetic: Sequence[str]) -> Path:
    """The synthetic set's folder (generated into $ACTION3D_CACHE on first use)."""
    from action3d.commands._hydra import typed_config
    from action3d.engine.data import resolve_data

    return Path(resolve_data(typed_config("train", list(synthetic)).data).root)


def subset_lists(out: Path, names: Sequence[str], *, per_class: Sequence[int], synthetic: Sequence[str]) -> list:
    """Write train.txt (the first `per_class[i]` training videos of class `names[i]`), val.txt
    (all its validation videos) and classes.txt into `out`; return the data overrides that use them."""
    from action3d.data.annotations import read_classes_file, read_list_file

    root = synthetic_root(synthetic)
    classes = read_classes_file(root / "classes.txt")
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        taken = dict.fromkeys(names, 0)
        lines = []
        for path, label in read_list_file(root / f"{split}.txt", root=root):
            name = classes[label]
            if name in taken and (split == "val" or taken[name] < per_class[names.index(name)]):
                taken[name] += 1
                lines.append(f"{path} {names.index(name)}\n")
        (out / f"{split}.txt").write_text("".join(lines))
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    return ["data.format=list", f"data.root={root}", f"data.train_list={out / 'train.txt'}",
            f"data.val_list={out / 'val.txt'}", f"data.classes_file={out / 'classes.txt'}"]


def train(overrides: Sequence[str], run_dir: Path, *, seed: int) -> dict:
    """One in-process training run; returns its summary (best_top1, ...)."""
    from action3d.commands._hydra import typed_config
    from action3d.engine.train import Trainer

    return Trainer(typed_config("train", list(overrides)), run_dir=run_dir, seed=seed).fit()


# The fine-tuning source: the tiny model trained on 4 classes, each the time-reverse of one of the
# other 4 (FINETUNE_TARGET). Trained once per session and kept in the session's synthetic cache.
FINETUNE_SOURCE = ["move_right", "move_down", "rotate_cw", "grow"]
FINETUNE_TARGET = ["move_left", "move_up", "rotate_ccw", "shrink"]
SOURCE_EPOCHS = 30


def pretrained_checkpoint(cache: Path) -> Path:
    """best.pt (validated every 3 epochs) of SOURCE_EPOCHS epochs on FINETUNE_SOURCE, all 48 videos
    per class, seed 0: ~75% val top-1 on those 4 classes (64% after 20 epochs, too weak a source)."""
    run = Path(cache) / f"finetune-source-e{SOURCE_EPOCHS}"
    if not (run / "best.pt").is_file():
        lists = subset_lists(run / "lists", FINETUNE_SOURCE, per_class=[48] * 4, synthetic=LEARNABLE_SET)
        train([*LEARNABLE, *lists, f"trainer.max_epochs={SOURCE_EPOCHS}", "trainer.val_every=3"], run, seed=0)
    return run / "best.pt"
