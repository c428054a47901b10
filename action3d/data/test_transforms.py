"""Test views of uint8 clips `(C, T, H, W)`: the short side resized, then one centre crop, three crops
along the long side or ten crops (`action3d.data.transforms` for the conventions)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import List, Optional

import numpy as np
import torch

from action3d.data.transforms import (
    Box,
    Compose,
    Transform,
    center_box,
    five_boxes,
    hflip,
    resize_short_side,
    resized_crop,
    scale_box,
    three_boxes,
    virtual_frame,
)
from action3d.errors import Action3dError


class ResizeShortSide:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return resize_short_side(clip, self.size)

    def __repr__(self) -> str:
        return f"ResizeShortSide({self.size})"


class FixedCrops(ABC):
    """Test-time crops at fixed places of the frame as if it had been resized to `short_side`:
    one resize per view. Subclasses say where (`boxes`) and how the views combine (`combine`)."""

    def __init__(self, size: int, *, short_side: Optional[int] = None):
        self.size, self.short_side = size, short_side

    @abstractmethod
    def boxes(self, height: int, width: int) -> List[Box]:
        """The `(top, left, height, width)` box of each view in a frame of this size."""

    def combine(self, views: List[torch.Tensor]) -> torch.Tensor:
        return torch.stack(views, dim=-5)                 # a view dimension before C

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width, factor = virtual_frame(clip, self.short_side)
        return self.combine([resized_crop(clip, scale_box(box, factor, *clip.shape[-2:]), self.size)
                             for box in self.boxes(height, width)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.size}, short_side={self.short_side})"


class CenterCrop(FixedCrops):
    """One centre view: `(..., C,T,H,W)` -> `(..., C,T,size,size)`."""

    def boxes(self, height: int, width: int) -> List[Box]:
        return [center_box(height, width, self.size, self.size)]

    def combine(self, views: List[torch.Tensor]) -> torch.Tensor:
        return views[0]


class ThreeCrop(FixedCrops):
    """Three views along the long side: `(..., C,T,H,W)` -> `(..., 3, C,T,size,size)`."""

    def boxes(self, height: int, width: int) -> List[Box]:
        return three_boxes(height, width, self.size)


class TenCrop(FixedCrops):
    """Four corners, centre, and their mirror images: `(..., C,T,H,W)` -> `(..., 10, C,T,size,size)`."""

    def boxes(self, height: int, width: int) -> List[Box]:
        return five_boxes(height, width, self.size)

    def combine(self, views: List[torch.Tensor]) -> torch.Tensor:
        return torch.stack(views + [hflip(v) for v in views], dim=-5)


# --------------------------------------------------------------------------- the pipeline from the config

def build_test_transform(data_cfg, num_crops: int = 1) -> Transform:
    """Short side to data.short_side, then 1 centre crop, 3 crops along the long side, or 10 crops."""
    views = {1: CenterCrop, 3: ThreeCrop, 10: TenCrop}
    if num_crops not in views:
        raise Action3dError(f"eval.num_crops={num_crops} is not allowed: expected one of 1, 3, 10")
    return Compose([views[num_crops](data_cfg.crop_size, short_side=data_cfg.short_side)])
