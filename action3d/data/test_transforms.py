"""Test views of uint8 clips `(C, T, H, W)`: the short side resized (or the frame resized to
`data.test_resize`), then one centre crop, three crops along the long side or ten crops
(`action3d.data.transforms` for the conventions).

`eval.protocol=action3d` (the default) picks each crop's box as if the frame had been resized and
resizes only the box (one resize per view). The zoos' protocols (`ZooViews`) resize whole frames
first, exactly as their test code does, then crop where their code crops:

- mmaction2_v0: short side by mmcv's `rescale_size` (rounded); crops: centre `(W - c) // 2`, 3 along
  the long side, 10: corners at 4 x ((W - c) // 4) and the centre, mirrored;
- torchvision: data.test_resize (else the short side, truncated); centre `round((W - c) / 2)`;
- pyslowfast: short side (kept when it is already the size, long side floored); uniform_crop, one
  view its centre (index 1, `ceil`), three views indices 0, 1, 2;
- ptv: ShortSideScale (long side floored); uniform_crop with PyTorchVideo's aug index: one view
  index 0, three views 0, 1, 2;
- hara, hara_2018: short side, truncated; centre `round((W - c) / 2)`.

`data.test_resize` ([H, W]) replaces the short-side rule in every protocol; `data.resize_antialias`
chooses antialiased or plain bilinear resizing (the zoos resize without antialiasing).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from action3d.config.train import PROTOCOL_CROPS
from action3d.data.transforms import (
    Box,
    Compose,
    Transform,
    center_box,
    crop,
    five_boxes,
    hflip,
    resize,
    resize_short_side,
    resized_crop,
    scale_box,
    short_side_size,
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
    """Test-time crops at fixed places of the frame as if it had been resized to `short_side`
    (or to `resize_to` = (height, width), aspect not kept): one resize per view. Subclasses say
    where (`boxes`) and how the views combine (`combine`)."""

    def __init__(self, size: int, *, short_side: Optional[int] = None, resize_to: Optional[Sequence[int]] = None,
                 antialias: bool = True):
        self.size, self.short_side, self.antialias = size, short_side, antialias
        self.resize_to = None if resize_to is None else (int(resize_to[0]), int(resize_to[1]))

    @abstractmethod
    def boxes(self, height: int, width: int) -> List[Box]:
        """The `(top, left, height, width)` box of each view in a frame of this size."""

    def combine(self, views: List[torch.Tensor]) -> torch.Tensor:
        return torch.stack(views, dim=-5)                 # a view dimension before C

    def _frame(self, clip: torch.Tensor):
        if self.resize_to is None:
            return virtual_frame(clip, self.short_side)
        height, width = clip.shape[-2:]
        return (*self.resize_to, (self.resize_to[0] / height, self.resize_to[1] / width))

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width, factor = self._frame(clip)
        return self.combine([resized_crop(clip, scale_box(box, factor, *clip.shape[-2:]), self.size,
                                          antialias=self.antialias)
                             for box in self.boxes(height, width)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.size}, short_side={self.short_side}, resize_to={self.resize_to})"


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


# --------------------------------------------------------------------------- the zoos' protocols

def protocol_frame_size(protocol: str, height: int, width: int, *, short_side: int,
                        resize_to: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """(height, width) a `height` x `width` frame is resized to before the crops, by the zoo's code."""
    if resize_to is not None:
        return int(resize_to[0]), int(resize_to[1])
    if protocol == "mmaction2_v0":             # mmcv.rescale_size((w, h), (inf, short)): rounded half up
        scale = short_side / min(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)
    if protocol == "pyslowfast":               # random_short_side_scale_jitter(min = max = short)
        if (width <= height and width == short_side) or (height <= width and height == short_side):
            return height, width
        if width < height:
            return int(math.floor(height / width * short_side)), short_side
        return short_side, int(math.floor(width / height * short_side))
    if protocol == "ptv":                      # pytorchvideo short_side_scale: always resizes
        if width < height:
            return int(math.floor(float(height) / width * short_side)), short_side
        return short_side, int(math.floor(float(width) / height * short_side))
    return short_side_size(height, width, short_side)   # torchvision Resize([size]), Hara's Resize(112)


def uniform_crop_box(height: int, width: int, size: int, spatial_idx: int) -> Box:
    """PySlowFast's (and PyTorchVideo's) `uniform_crop`: index 0, 1, 2 along the long side (the
    centre rounded up)."""
    y_offset = int(math.ceil((height - size) / 2))
    x_offset = int(math.ceil((width - size) / 2))
    if height > width:
        y_offset = {0: 0, 1: y_offset, 2: height - size}[spatial_idx]
    else:
        x_offset = {0: 0, 1: x_offset, 2: width - size}[spatial_idx]
    return y_offset, x_offset, size, size


def protocol_boxes(protocol: str, height: int, width: int, size: int, num_crops: int) -> List[Box]:
    """The crop boxes of the zoo's test code in a resized `height` x `width` frame (for 10 crops:
    the five unmirrored ones)."""
    if num_crops not in PROTOCOL_CROPS[protocol]:
        allowed = ", ".join(str(n) for n in PROTOCOL_CROPS[protocol])
        raise Action3dError(f"eval.num_crops={num_crops} is not allowed with eval.protocol={protocol}: "
                            f"expected {allowed}")
    if protocol == "mmaction2_v0":
        if num_crops == 1:                      # CenterCrop: floor
            return [((height - size) // 2, (width - size) // 2, size, size)]
        if num_crops == 3:                      # ThreeCrop: along the long side
            return three_boxes(height, width, size)
        w_step, h_step = (width - size) // 4, (height - size) // 4     # TenCrop
        return [(0, 0, size, size), (0, 4 * w_step, size, size), (4 * h_step, 0, size, size),
                (4 * h_step, 4 * w_step, size, size), (2 * h_step, 2 * w_step, size, size)]
    if protocol == "pyslowfast":
        return [uniform_crop_box(height, width, size, i) for i in ((1,) if num_crops == 1 else (0, 1, 2))]
    if protocol == "ptv":
        return [uniform_crop_box(height, width, size, i) for i in range(num_crops)]
    # torchvision's center_crop (and Hara's CornerCrop 'c' / CenterCrop): rounded
    return [(int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), size, size)]


class ZooViews:
    """The test views of a zoo's protocol: whole frames resized (`protocol_frame_size`), then the
    boxes of its code cut out; 10 crops add their mirror images. One view: `(..., C,T,c,c)`;
    several: `(..., V, C,T,c,c)`."""

    def __init__(self, protocol: str, size: int, *, num_crops: int = 1, short_side: int,
                 resize_to: Optional[Sequence[int]] = None, antialias: bool = False):
        self.protocol, self.size, self.num_crops = protocol, size, num_crops
        self.short_side, self.resize_to, self.antialias = short_side, resize_to, antialias
        protocol_boxes(protocol, size, size, size, num_crops)   # refuses a crop count the protocol lacks

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width = protocol_frame_size(self.protocol, *clip.shape[-2:], short_side=self.short_side,
                                            resize_to=self.resize_to)
        frames = resize(clip, (height, width), antialias=self.antialias)
        views = [crop(frames, box) for box in protocol_boxes(self.protocol, height, width, self.size,
                                                             self.num_crops)]
        if self.num_crops == 10:
            views += [hflip(v) for v in views]
        return views[0] if len(views) == 1 else torch.stack(views, dim=-5)

    def __repr__(self) -> str:
        return (f"ZooViews({self.protocol}, {self.size}, num_crops={self.num_crops}, short_side={self.short_side}, "
                f"resize_to={self.resize_to}, antialias={self.antialias})")


# --------------------------------------------------------------------------- the pipeline from the config

def build_test_transform(data_cfg, num_crops: int = 1, protocol: str = "action3d") -> Transform:
    """The test views of `protocol` (eval.protocol): for action3d, the short side to
    data.short_side (or the frame to data.test_resize), then 1 centre crop, 3 crops along the long
    side, or 10 crops."""
    if protocol != "action3d":
        return Compose([ZooViews(protocol, data_cfg.crop_size, num_crops=num_crops, short_side=data_cfg.short_side,
                                 resize_to=data_cfg.test_resize, antialias=data_cfg.resize_antialias)])
    views = {1: CenterCrop, 3: ThreeCrop, 10: TenCrop}
    if num_crops not in views:
        raise Action3dError(f"eval.num_crops={num_crops} is not allowed: expected one of 1, 3, 10")
    return Compose([views[num_crops](data_cfg.crop_size, short_side=data_cfg.short_side,
                                     resize_to=data_cfg.test_resize, antialias=data_cfg.resize_antialias)])
