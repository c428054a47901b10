"""What the deploy-and-inspect tests share: one trained checkpoint, untrained preset checkpoints, configs.

`trained_checkpoint(cache)` trains a tiny model once per test session and keeps it in the session's
cache folder, so every test module that asks gets the same file: the four translation classes of
the synthetic set at 64 px (frames large enough for tiny's 8x8 stage-2 grid, where Grad-CAM can
tell the shapes apart), 480 steps at base width 8, one thread (~1 minute; 100% validation top-1).
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf

from action3d.commands._hydra import compose_config, typed_config

# move_right/left/down/up x 24 training / 6 validation videos of 16 frames at 64 px; 8x2 clips.
DATA64 = ["data.synthetic.num_classes=4", "data.synthetic.train_per_class=24", "data.synthetic.val_per_class=6",
          "data.synthetic.num_frames=16", "data.synthetic.size=64", "data.clip_len=8", "data.frame_interval=2",
          "data.short_side=64", "data.crop_size=64", "data.num_workers=0"]
TRAIN64 = [*DATA64, "model=tiny", "model.base_channels=8", "trainer.max_epochs=40", "trainer.precision=32",
           "trainer.log_every=50", "trainer.precise_bn_batches=4", "trainer.val_every=10"]


def trained_checkpoint(cache: Path) -> Path:
    """best.pt of the tiny model trained on DATA64 (trained on the first call of the session)."""
    from conftest import cache_lock

    run_dir = cache / "deploy-trained"
    with cache_lock(run_dir):
        if not (run_dir / "best.pt").is_file():
            from action3d.engine.train import Trainer

            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # on a shared 2-core machine one thread trains several times faster than two
            try:
                with contextlib.redirect_stderr(io.StringIO()):  # progress bars
                    Trainer(typed_config("train", TRAIN64), run_dir=run_dir, seed=0).fit()
            finally:
                torch.set_num_threads(threads)
    return run_dir / "best.pt"


def preset_checkpoint(path: Path, preset: str, overrides: Sequence[str] = (), *, num_classes: int = 5,
                      dtype: torch.dtype = torch.float32) -> Path:
    """An untrained checkpoint of `preset` (BN statistics randomised, so normalisation shows in the
    logits) in the layout `action3d train` writes, its weights stored as `dtype`."""
    from action3d.engine.checkpoint import save_checkpoint
    from action3d.models import build_model

    cfg = compose_config("train", [f"model={preset}", f"model.num_classes={num_classes}", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, log=lambda _: None)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.copy_(0.2 * torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)  # zero_init_residual would hide whole blocks
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint({"model": state, "config": OmegaConf.to_container(cfg, resolve=True),
                     "classes": [f"class_{i}" for i in range(num_classes)]}, path)
    return path


def small_slowfast(num_classes: int = 3) -> torch.nn.Module:
    """The slowfast_r50 preset with one block per stage (untrained, eval mode)."""
    from action3d.models import build_model

    cfg = compose_config("train", ["model=slowfast_r50", "model.stage_blocks=[1,1,1,1]",
                                   f"model.num_classes={num_classes}"])
    return build_model(cfg.model, log=lambda _: None).eval()
