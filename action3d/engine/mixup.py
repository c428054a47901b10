"""mixup and CutMix in batch mode, on the training device (timm's `Mixup`, PySlowFast's `MixUp`).

Each mixed batch is combined with itself in reverse order (the partner of clip i is clip N-1-i,
as in timm and PySlowFast): the sampler already shuffles the batch, so the partners are a random
pairing, and reversing needs no index tensor on the device. Partners come from this process's
own micro-batch, so a run with mixing is not equal, step for step, to one process with the
global batch (the N x B equivalence of runs without it); exact resume still holds.

- mixup: x = lam x + (1 - lam) x_reversed, lam ~ Beta(mixup_alpha, mixup_alpha).
- CutMix: one box, the same on every frame of a clip (a clip is (C, T, H, W)), takes the
  reversed batch's pixels; its side is sqrt(1 - lam) of the frame's, lam ~ Beta(cutmix_alpha,
  cutmix_alpha), its centre uniform, clipped at the frame's edges, and lam becomes 1 - the box's
  actual share of the frame.
- Per batch: mixed with probability `mix_prob`; with both alphas > 0, CutMix with probability
  `switch_prob`, else mixup.
- Targets mix by the same lam: one-hot rows (single-label) or multi-hot rows (multi-label), as
  (N, K) floats; label smoothing is the loss's (`action3d.engine.loss.Criterion`).

Every draw comes from `numpy.random.default_rng((seed, epoch, micro_batch, rank, MIX_STREAM))`:
a function of the run's seed, the epoch, the micro-batch's index in the epoch and the process's
rank alone, so a resumed run mixes exactly what the uninterrupted one did, and the draws take
nothing from torch's random state (dropout) or the device (no host sync).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from action3d.engine.loss import one_hot

MIX_STREAM = 0x6D6978  # "mix": keeps these draws apart from the dataset's (seed, epoch, index) streams


@dataclass(frozen=True)
class MixDraw:
    """What one micro-batch gets: the kind ("none", "mixup", "cutmix"), lam, and CutMix's box
    (top, bottom, left, right) in pixels."""
    kind: str
    lam: float = 1.0
    box: Optional[Tuple[int, int, int, int]] = None


class BatchMixer:
    def __init__(self, *, mixup_alpha: float, cutmix_alpha: float, prob: float = 1.0, switch_prob: float = 0.5,
                 num_classes: int, seed: int, rank: int = 0):
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.num_classes, self.seed, self.rank = num_classes, seed, rank

    @classmethod
    def from_config(cls, data_cfg, *, num_classes: int, seed: int, rank: int) -> Optional[BatchMixer]:
        """The mixer of `data.mixup_alpha`/`data.cutmix_alpha`; None when both are 0 (off)."""
        if data_cfg.mixup_alpha <= 0 and data_cfg.cutmix_alpha <= 0:
            return None
        return cls(mixup_alpha=data_cfg.mixup_alpha, cutmix_alpha=data_cfg.cutmix_alpha, prob=data_cfg.mix_prob,
                   switch_prob=data_cfg.mix_switch_prob, num_classes=num_classes, seed=seed, rank=rank)

    def draw(self, *, epoch: int, micro_batch: int, height: int, width: int) -> MixDraw:
        """This micro-batch's draw, from (seed, epoch, micro_batch, rank) alone."""
        rng = np.random.default_rng((self.seed, epoch, micro_batch, self.rank, MIX_STREAM))
        if rng.random() >= self.prob:
            return MixDraw("none")
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < self.switch_prob)
        if not use_cutmix:
            return MixDraw("mixup", float(rng.beta(self.mixup_alpha, self.mixup_alpha)))
        lam = float(rng.beta(self.cutmix_alpha, self.cutmix_alpha))
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        top, bottom = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
        left, right = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)   # the box's actual share
        return MixDraw("cutmix", float(lam), (int(top), int(bottom), int(left), int(right)))

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor, *, epoch: int, micro_batch: int
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """clips (N, C, T, H, W) normalised on the device (mixed in place), labels (N,) class
        indices or (N, K) multi-hot -> (clips, targets (N, K) float)."""
        targets = one_hot(labels, self.num_classes)
        draw = self.draw(epoch=epoch, micro_batch=micro_batch, height=clips.shape[-2], width=clips.shape[-1])
        if draw.kind == "none":
            return clips, targets
        if draw.kind == "mixup":
            partner = clips.flip(0).mul_(1.0 - draw.lam)
            clips.mul_(draw.lam).add_(partner)
        else:
            top, bottom, left, right = draw.box                  # every frame: the T axis is whole
            box = clips[..., top:bottom, left:right]
            clips[..., top:bottom, left:right] = box.flip(0)    # flip copies before the write
        return clips, targets.mul(draw.lam).add_(targets.flip(0), alpha=1.0 - draw.lam)
