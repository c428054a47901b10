"""Training transforms of uint8 clips `(C, T, H, W)`: a random crop and flip, then the augmentations of
`action3d.data.augment` that the config turns on, each the same for every frame of a clip and drawn
from the sample's seeded generator (`action3d.data.transforms` for the conventions)."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch

from action3d.data.transforms import (
    Compose,
    Transform,
    hflip,
    multiscale_box,
    random_resized_box,
    resized_crop,
    scale_box,
    virtual_frame,
)


class RandomResizedCrop:
    def __init__(self, size: int, *, area_range: Sequence[float] = (0.08, 1.0),
                 aspect_ratio_range: Sequence[float] = (3 / 4, 4 / 3), short_side: Optional[int] = None):
        self.size, self.area_range, self.aspect_ratio_range = size, tuple(area_range), tuple(aspect_ratio_range)
        self.short_side = short_side

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width, factor = virtual_frame(clip, self.short_side)
        box = random_resized_box(height, width, rng=rng, area_range=self.area_range,
                                 aspect_ratio_range=self.aspect_ratio_range)
        return resized_crop(clip, scale_box(box, factor, *clip.shape[-2:]), self.size)

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, area_range={self.area_range}, short_side={self.short_side})"


class MultiScaleCrop:
    def __init__(self, size: int, *, scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
                 max_wh_scale_gap: int = 1, random_crop: bool = False, short_side: Optional[int] = None):
        self.size, self.scales, self.max_wh_scale_gap = size, tuple(scales), max_wh_scale_gap
        self.random_crop, self.short_side = random_crop, short_side

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width, factor = virtual_frame(clip, self.short_side)
        box = multiscale_box(height, width, rng=rng, scales=self.scales,
                             max_wh_scale_gap=self.max_wh_scale_gap, random_crop=self.random_crop)
        return resized_crop(clip, scale_box(box, factor, *clip.shape[-2:]), self.size)

    def __repr__(self) -> str:
        return f"MultiScaleCrop({self.size}, scales={self.scales}, short_side={self.short_side})"


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return hflip(clip) if rng.random() < self.p else clip

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class ShortSideJitterCrop:
    """PySlowFast's `random_short_side_scale_jitter` then `random_crop`: the short side resized to a
    random whole number in `scale_range` (both ends included), then a random `size` square. The box
    is drawn on that virtual frame and cut from the decoded one with a single resize."""

    def __init__(self, size: int, scale_range: Sequence[int] = (256, 320)):
        self.size, self.scale_range = size, (int(scale_range[0]), int(scale_range[1]))

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        short_side = int(rng.integers(self.scale_range[0], self.scale_range[1] + 1))
        height, width, factor = virtual_frame(clip, short_side)
        size = min(self.size, height, width)
        top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
        return resized_crop(clip, scale_box((top, left, size, size), factor, *clip.shape[-2:]), self.size)

    def __repr__(self) -> str:
        return f"ShortSideJitterCrop({self.size}, scale_range={self.scale_range})"



# --------------------------------------------------------------------------- the pipeline from the config

def build_train_transform(data_cfg) -> Compose:
    """The training crop (resized to data.crop_size), a random horizontal flip (data.flip), then the
    augmentations data_cfg turns on (each off by default; `augmentations`)."""
    if data_cfg.train_crop == "multiscale":
        crop_op: Transform = MultiScaleCrop(data_cfg.crop_size, short_side=data_cfg.short_side)
    elif data_cfg.train_crop == "short_side_jitter":   # data.short_side is then the test resize only
        crop_op = ShortSideJitterCrop(data_cfg.crop_size, scale_range=data_cfg.train_scale_range)
    else:
        crop_op = RandomResizedCrop(data_cfg.crop_size, area_range=tuple(data_cfg.crop_area_range),
                                    short_side=data_cfg.short_side)
    flip = [RandomHorizontalFlip()] if data_cfg.flip else []
    return Compose([crop_op, *flip, *augmentations(data_cfg)])


def augmentations(data_cfg) -> List[Transform]:
    """RandAugment or AugMix, colour jitter, grayscale, random erasing: those data_cfg turns on.

    The order: after the crop and flip, so the pixel ops run on the small crop the model sees (cheaper;
    PySlowFast and VideoMAE run RandAugment on the decoded frame before their crop, which mostly changes
    how far a translate or shear reaches); RandAugment/AugMix, then colour jitter, as timm's
    `transforms_imagenet_train` orders its stages (its colour jitter stands in for an --aa policy, here
    both may run); grayscale after the jitter, as torchvision's and SimCLR's pipelines, so a gray clip
    stays gray; erasing last, as timm and PySlowFast (after normalisation there), so its noise box is
    an occlusion no other op alters. torchvision is imported only when one of them is on.
    """
    wanted = (data_cfg.rand_augment_n > 0 or data_cfg.augmix_severity > 0 or any(data_cfg.color_jitter)
              or data_cfg.grayscale_prob > 0 or data_cfg.erase_prob > 0)
    if not wanted:
        return []
    from action3d.data import augment

    ops: List[Transform] = []
    if data_cfg.rand_augment_n > 0:
        ops.append(augment.RandAugment(data_cfg.rand_augment_n, data_cfg.rand_augment_m, data_cfg.rand_augment_mstd))
    if data_cfg.augmix_severity > 0:
        ops.append(augment.AugMix(data_cfg.augmix_severity, width=data_cfg.augmix_width,
                                  depth=data_cfg.augmix_depth, alpha=data_cfg.augmix_alpha))
    if any(data_cfg.color_jitter):
        ops.append(augment.ColorJitter(data_cfg.color_jitter))
    if data_cfg.grayscale_prob > 0:
        ops.append(augment.RandomGrayscale(data_cfg.grayscale_prob))
    if data_cfg.erase_prob > 0:
        ops.append(augment.RandomErasing(data_cfg.erase_prob, tuple(data_cfg.erase_area_range),
                                         mean=tuple(data_cfg.mean), std=tuple(data_cfg.std)))
    return ops
