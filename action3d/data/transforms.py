"""Spatial transforms of uint8 clips `(..., C, T, H, W)`: the same box and flip for every frame.

The training transforms are in `action3d.data.train_transforms`, the test views in
`action3d.data.test_transforms`; this module holds what both use. Every transform is a callable
`transform(clip, rng) -> clip` with `rng` a `numpy.random.Generator`
(deterministic ones ignore it), so a worker-seeded generator makes augmentation reproducible.
Crops that take `short_side` pick their box as if the frame had first been resized to that short
side, then cut it from the decoded frame and resize it once: one resize per clip instead of two.
Multi-view crops (`ThreeCrop`, `TenCrop`) add a view dimension just before C: `(C,T,H,W)` becomes
`(V,C,T,H,W)`, and `(K,C,T,H,W)` becomes `(K,V,C,T,H,W)`.

`normalize` (float conversion and mean/std) runs on the training device, not in the workers.
Resizing is torch's antialiased bilinear `interpolate`, the same call (and, for uint8 on a CPU,
the same pixels) as torchvision's `resize(antialias=True)`, without importing torchvision.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.nn import functional as F

Box = Tuple[int, int, int, int]  # top, left, height, width in pixels of the frame it applies to
Transform = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


# --------------------------------------------------------------------------- functional core

def resize(clip: torch.Tensor, size: Tuple[int, int], *, antialias: bool = True) -> torch.Tensor:
    """Antialiased bilinear resize of `(..., H, W)` to `size` (height, width), any leading dims.

    uint8 on a CPU goes through torch's native uint8 kernel: the pixels of torchvision's
    `resize(antialias=True)` exactly (torchvision makes this very call). Elsewhere (uint8 on
    CUDA, which has no uint8 kernel) it computes in float and rounds: at most 1 level from
    torchvision, 0.2 on average (tests/test_transforms.py). Float clips stay float.
    `antialias=False` (data.resize_antialias): plain bilinear, as torchvision's
    `resize(antialias=False)` computes it for uint8 (float32, rounded), the zoos' resize.
    """
    height, width = clip.shape[-2:]
    if (height, width) == tuple(size):
        return clip
    if not antialias:
        return _resize_bilinear(clip, size)
    if clip.dtype == torch.uint8 and has_uint8_resize(clip.device) and clip.dim() == 4 and clip.shape[0] == 3:
        return _resize_rgb_uint8(clip, size)
    # (N, C', H, W) as torchvision reshapes it: every plane is resized alike, so which leading
    # dim counts as the channel does not matter (the decoder's permuted views are fine too)
    planes = clip.reshape(-1, clip.shape[-3] if clip.dim() > 2 else 1, height, width)
    via_float = clip.dtype == torch.uint8 and not has_uint8_resize(clip.device)
    out = F.interpolate(planes.float() if via_float else planes, size=list(size), mode="bilinear",
                        align_corners=False, antialias=True)
    if via_float:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*clip.shape[:-2], *size)


def _resize_rgb_uint8(clip: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """`(3, T, H, W)` uint8 on a CPU as `(T, 3, H, W)` frames in channels-last memory: torch's
    vectorised uint8 kernel takes that layout (2x faster than planes; the same pixels, tested).
    The decoder's clips are views of `(T, H, W, 3)` memory already, so this copies nothing."""
    frames = clip.permute(1, 0, 2, 3).contiguous(memory_format=torch.channels_last)  # (T, 3, H, W)
    out = F.interpolate(frames, size=list(size), mode="bilinear", align_corners=False, antialias=True)
    return out.permute(1, 0, 2, 3)                                                      # (3, T, h, w)


def _resize_bilinear(clip: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear without antialiasing (align_corners=False): torchvision's uint8 path, float32 then
    rounded; float clips stay float."""
    height, width = clip.shape[-2:]
    planes = clip.reshape(-1, 1, height, width)
    out = F.interpolate(planes.float(), size=list(size), mode="bilinear", align_corners=False, antialias=False)
    if clip.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*clip.shape[:-2], *size)


def has_uint8_resize(device: torch.device) -> bool:
    """Whether torch has an antialiased bilinear uint8 kernel there (CPU only)."""
    return device.type == "cpu"


def short_side_size(height: int, width: int, size: int) -> Tuple[int, int]:
    """(height, width) with the short side `size` and the long side scaled and truncated, as
    torchvision's `resize(clip, [size])` computes it."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so that min(H, W) == size, keeping the aspect ratio (antialiased bilinear)."""
    if min(clip.shape[-2:]) == size:
        return clip
    return resize(clip, short_side_size(*clip.shape[-2:], size))


def crop(clip: torch.Tensor, box: Box) -> torch.Tensor:
    top, left, height, width = box
    return clip[..., top:top + height, left:left + width]


def resized_crop(clip: torch.Tensor, box: Box, size: int, *, antialias: bool = True) -> torch.Tensor:
    """Cut `box` out of every frame and resize it to `size` x `size`."""
    return resize(crop(clip, box), (size, size), antialias=antialias)


def hflip(clip: torch.Tensor) -> torch.Tensor:
    return clip.flip(-1)


def center_box(height: int, width: int, crop_h: int, crop_w: int) -> Box:
    crop_h, crop_w = min(crop_h, height), min(crop_w, width)
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def random_resized_box(height: int, width: int, *, rng: np.random.Generator,
                       area_range: Sequence[float] = (0.08, 1.0),
                       aspect_ratio_range: Sequence[float] = (3 / 4, 4 / 3),
                       max_attempts: int = 10) -> Box:
    """Inception-style box: a random share of the area with a random aspect ratio (mmaction2's)."""
    area = height * width
    log_ratio = (math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1]))
    for _ in range(max_attempts):
        target_area = rng.uniform(*area_range) * area
        ratio = math.exp(rng.uniform(*log_ratio))
        crop_w = int(round(math.sqrt(target_area * ratio)))
        crop_h = int(round(math.sqrt(target_area / ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(height - crop_h + 1))
            left = int(rng.integers(width - crop_w + 1))
            return top, left, crop_h, crop_w
    side = min(height, width)  # fallback: the central square
    return center_box(height, width, side, side)


def multiscale_box(height: int, width: int, *, rng: np.random.Generator,
                   scales: Sequence[float] = (1, 0.875, 0.75, 0.66), max_wh_scale_gap: int = 1,
                   random_crop: bool = False) -> Box:
    """TSN's MultiScaleCrop: width and height from `scales` x the short side (scales at most
    `max_wh_scale_gap` apart), placed at random or at one of 5 fixed spots (corners, centre)."""
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    pairs = [(h, w) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_wh_scale_gap]
    crop_h, crop_w = pairs[int(rng.integers(len(pairs)))]
    if random_crop:
        return int(rng.integers(height - crop_h + 1)), int(rng.integers(width - crop_w + 1)), crop_h, crop_w
    step_h, step_w = (height - crop_h) // 4, (width - crop_w) // 4
    spots = [(0, 0), (0, 4 * step_w), (4 * step_h, 0), (4 * step_h, 4 * step_w), (2 * step_h, 2 * step_w)]
    top, left = spots[int(rng.integers(len(spots)))]
    return top, left, crop_h, crop_w


def three_boxes(height: int, width: int, size: int) -> List[Box]:
    """Three `size` squares along the long side (start, centre, end), centred on the short side."""
    size = min(size, height, width)
    if width >= height:
        top, step = (height - size) // 2, (width - size) // 2
        return [(top, 0, size, size), (top, step, size, size), (top, 2 * step, size, size)]
    left, step = (width - size) // 2, (height - size) // 2
    return [(0, left, size, size), (step, left, size, size), (2 * step, left, size, size)]


def five_boxes(height: int, width: int, size: int) -> List[Box]:
    """Four corners and the centre (the unflipped half of TenCrop)."""
    size = min(size, height, width)
    bottom, right = height - size, width - size
    corners = [(0, 0), (0, right), (bottom, 0), (bottom, right)]
    return [(top, left, size, size) for top, left in corners] + [center_box(height, width, size, size)]


def scale_box(box: Box, factor, height: int, width: int) -> Box:
    """Map a box drawn on a frame resized by `factor` (or by (factor_h, factor_w): a resize that
    does not keep the aspect) back onto the (height, width) frame."""
    factor_h, factor_w = factor if isinstance(factor, tuple) else (factor, factor)
    if factor_h == 1 and factor_w == 1:
        return box
    top, box_h = box[0] / factor_h, box[2] / factor_h
    left, box_w = box[1] / factor_w, box[3] / factor_w
    box_h, box_w = max(1, min(round(box_h), height)), max(1, min(round(box_w), width))
    top, left = min(round(top), height - box_h), min(round(left), width - box_w)
    return top, left, box_h, box_w


def virtual_frame(clip: torch.Tensor, short_side: Optional[int]) -> Tuple[int, int, float]:
    """(height, width, factor) of the frame as if resized to `short_side` (None: as it is)."""
    height, width = clip.shape[-2:]
    if short_side is None:
        return height, width, 1.0
    factor = short_side / min(height, width)
    return int(round(height * factor)), int(round(width * factor)), factor


def normalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float], *,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 `(N,C,T,H,W)` or `(N,V,C,T,H,W)` -> float `(x - mean) / std`, per channel (dim -4).

    `mean`/`std` are on the 0-255 scale (mmaction2's convention). The memory format of the input
    (e.g. `torch.channels_last_3d`) is kept.
    """
    shape = (-1, 1, 1, 1)  # channel dim is -4 in both layouts
    mean_t = torch.as_tensor(mean, dtype=dtype, device=batch.device).view(shape)
    std_t = torch.as_tensor(std, dtype=dtype, device=batch.device).view(shape)
    return batch.to(dtype).sub_(mean_t).div_(std_t)


# --------------------------------------------------------------------------- callables

class Compose:
    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        for transform in self.transforms:
            clip = transform(clip, rng)
        return clip

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"
