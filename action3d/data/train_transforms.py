"""Training transforms of uint8 clips `(C, T, H, W)`: a random crop and flip, the same for every frame
of a clip, drawn from the sample's seeded generator (`action3d.data.transforms` for the conventions)."""
from __future__ import annotations

from typing import Optional, Sequence

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



# --------------------------------------------------------------------------- the pipeline from the config

def build_train_transform(data_cfg) -> Compose:
    """Random crop (resized to data.crop_size) and, if data.flip, a random horizontal flip."""
    if data_cfg.train_crop == "multiscale":
        crop_op: Transform = MultiScaleCrop(data_cfg.crop_size, short_side=data_cfg.short_side)
    else:
        crop_op = RandomResizedCrop(data_cfg.crop_size, area_range=tuple(data_cfg.crop_area_range),
                                    short_side=data_cfg.short_side)
    return Compose([crop_op] + ([RandomHorizontalFlip()] if data_cfg.flip else []))
