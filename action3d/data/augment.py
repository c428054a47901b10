"""Video-consistent augmentations of uint8 clips `(C, T, H, W)`, in the loader (training only).

Each transform is a callable `transform(clip, rng) -> clip` (the convention of
`action3d.data.transforms`). Everything random (which ops, their magnitudes and signs, boxes,
factors) is drawn once per clip from the sample's generator `rng`, seeded by (seed, epoch, index),
and applied identically to every frame: a frame-wise draw would flicker, which is motion the model
would learn from, and it would break exact resume. With `data.num_clips=K` the dataset calls the
transform once per clip, so each clip gets its own draw.

Sources:
- RandAugment (Cubuk et al. 2019) and AugMix (Hendrycks et al. 2020) as timm's `auto_augment.py`
  implements them: its op list, its magnitude scale (level / 10 of each op's range), its magnitude
  noise (`mstd`), AugMix's Dirichlet/Beta mixing; the ops are the "increasing" set (timm's `inc1`),
  whose strength grows with the magnitude, as PySlowFast (MViTv2) and VideoMAE train with
  (`rand-m7-n4-mstd0.5-inc1`). PySlowFast's and VideoMAE's video RandAugment likewise draws once
  per clip and applies the op to every frame.
- Random erasing (Zhong et al. 2020) as timm's `RandomErasing(mode="pixel")` with PySlowFast's
  `cube=True` (the same box on every frame).
- Colour jitter and grayscale as torchvision's `ColorJitter` and `RandomGrayscale`.

The pixel ops are torchvision's `transforms.v2.functional` on uint8 `(T, C, H, W)` frames (a batch
of T images to it); torchvision is imported only when one of these is on (`build_train_transform`).
Geometric ops resample bilinearly with timm's grey fill (128); timm draws bilinear or bicubic.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, Tuple

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

LEVEL_DENOM = 10.0   # timm's magnitude scale: a magnitude m means m / 10 of each op's range
FILL = 128.0         # timm's fill of the pixels a geometric op uncovers (its _FILL)
BILINEAR = InterpolationMode.BILINEAR

# An op: (frames (T, C, H, W) uint8, level in [0, 10], sign +1 or -1) -> frames.
Op = Callable[[torch.Tensor, float, int], torch.Tensor]


# --------------------------------------------------------------------------- the ops (timm's ranges)

def _frames(clip: torch.Tensor) -> torch.Tensor:
    """(C, T, H, W) -> (T, C, H, W), a view: torchvision treats T as a batch of images."""
    return clip.transpose(0, 1)


def _enhance_factor(level: float, sign: int) -> float:
    """timm's `_enhance_increasing_level_to_arg`: 1 +- 0.9 x level / 10, at least 0.1."""
    return max(0.1, 1.0 + sign * level / LEVEL_DENOM * 0.9)


def _affine(frames: torch.Tensor, *, translate=(0, 0), shear=(0.0, 0.0), angle: float = 0.0,
            center=None) -> torch.Tensor:
    return TF.affine(frames, angle=angle, translate=list(translate), scale=1.0, shear=list(shear),
                     interpolation=BILINEAR, fill=[FILL], center=center)


def auto_contrast(frames, level, sign):
    return TF.autocontrast(frames)


def equalize(frames, level, sign):
    return TF.equalize(frames)


def invert(frames, level, sign):
    return TF.invert(frames)


def rotate(frames, level, sign):
    """Up to +-30 degrees."""
    return _affine(frames, angle=sign * level / LEVEL_DENOM * 30.0)


def posterize(frames, level, sign):
    """Keep 4 down to 0 bits as the level rises (timm's PosterizeIncreasing)."""
    return TF.posterize(frames, 4 - int(level / LEVEL_DENOM * 4))


def solarize(frames, level, sign):
    """Invert pixels >= a threshold that falls from 256 (none) to 0 (timm's SolarizeIncreasing)."""
    threshold = 256 - int(level / LEVEL_DENOM * 256)
    return frames if threshold > 255 else TF.solarize(frames, threshold)


def solarize_add(frames, level, sign):
    """Add up to 110 to the pixels below 128."""
    added = (frames.to(torch.int16) + int(level / LEVEL_DENOM * 110)).clamp_(max=255).to(torch.uint8)
    return torch.where(frames < 128, added, frames)


def color(frames, level, sign):
    return TF.adjust_saturation(frames, _enhance_factor(level, sign))


def contrast(frames, level, sign):
    return TF.adjust_contrast(frames, _enhance_factor(level, sign))


def brightness(frames, level, sign):
    return TF.adjust_brightness(frames, _enhance_factor(level, sign))


def sharpness(frames, level, sign):
    return TF.adjust_sharpness(frames, _enhance_factor(level, sign))


def shear_x(frames, level, sign):
    """A shear factor up to +-0.3 about the top-left corner (PIL's affine, as timm and
    torchvision's RandAugment apply it)."""
    factor = sign * level / LEVEL_DENOM * 0.3
    return _affine(frames, shear=(math.degrees(math.atan(factor)), 0.0), center=[0, 0])


def shear_y(frames, level, sign):
    factor = sign * level / LEVEL_DENOM * 0.3
    return _affine(frames, shear=(0.0, math.degrees(math.atan(factor))), center=[0, 0])


def translate_x(frames, level, sign):
    """Up to +-45% of the width (timm's TranslateXRel)."""
    return _affine(frames, translate=(round(sign * level / LEVEL_DENOM * 0.45 * frames.shape[-1]), 0))


def translate_y(frames, level, sign):
    return _affine(frames, translate=(0, round(sign * level / LEVEL_DENOM * 0.45 * frames.shape[-2])))


# timm's _RAND_INCREASING_TRANSFORMS, in its order
RAND_AUGMENT_OPS: Tuple[Tuple[str, Op], ...] = (
    ("AutoContrast", auto_contrast), ("Equalize", equalize), ("Invert", invert), ("Rotate", rotate),
    ("PosterizeIncreasing", posterize), ("SolarizeIncreasing", solarize), ("SolarizeAdd", solarize_add),
    ("ColorIncreasing", color), ("ContrastIncreasing", contrast), ("BrightnessIncreasing", brightness),
    ("SharpnessIncreasing", sharpness), ("ShearX", shear_x), ("ShearY", shear_y),
    ("TranslateXRel", translate_x), ("TranslateYRel", translate_y))
# timm's _AUGMIX_TRANSFORMS: the paper's ops plus the increasing Color, Contrast, Brightness and Sharpness,
# which the paper leaves out (they overlap ImageNet-C's corruptions) and timm adds back
AUGMIX_OPS: Tuple[Tuple[str, Op], ...] = (
    ("AutoContrast", auto_contrast), ("ColorIncreasing", color), ("ContrastIncreasing", contrast),
    ("BrightnessIncreasing", brightness), ("SharpnessIncreasing", sharpness), ("Equalize", equalize),
    ("Rotate", rotate), ("PosterizeIncreasing", posterize), ("SolarizeIncreasing", solarize),
    ("ShearX", shear_x), ("ShearY", shear_y), ("TranslateXRel", translate_x), ("TranslateYRel", translate_y))


def _sign(rng: np.random.Generator) -> int:
    """timm's `_randomly_negate`: each signed op goes either way, half the time."""
    return -1 if rng.random() > 0.5 else 1


# --------------------------------------------------------------------------- the transforms

class RandAugment:
    """timm's `rand-m{m}-n{n}-mstd{mstd}-inc1`: n ops drawn with replacement from RAND_AUGMENT_OPS,
    each applied with probability 0.5 at a magnitude ~ N(m, mstd) clipped to [0, 10]."""

    def __init__(self, num_ops: int, magnitude: float, magnitude_std: float = 0.0):
        self.num_ops, self.magnitude, self.magnitude_std = num_ops, magnitude, magnitude_std

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        frames = _frames(clip)
        for index in rng.integers(len(RAND_AUGMENT_OPS), size=self.num_ops):
            apply, level, sign = rng.random() < 0.5, self._level(rng), _sign(rng)
            if apply:
                frames = RAND_AUGMENT_OPS[index][1](frames, level, sign)
        return _frames(frames)

    def _level(self, rng: np.random.Generator) -> float:
        noisy = rng.normal(self.magnitude, self.magnitude_std) if self.magnitude_std > 0 else self.magnitude
        return float(min(max(noisy, 0.0), LEVEL_DENOM))

    def __repr__(self) -> str:
        return f"RandAugment(n={self.num_ops}, m={self.magnitude}, mstd={self.magnitude_std})"


class AugMix:
    """timm's `augmix-m{severity}-w{width}-d{depth}-a{alpha}`: `width` chains of `depth` ops (-1: 1
    to 3 at random) from AUGMIX_OPS, each at a magnitude ~ U(0, severity); the chains are averaged
    with Dirichlet(alpha) weights and blended with the clip by m ~ Beta(alpha, alpha). The
    transform only (no Jensen-Shannon consistency loss)."""

    def __init__(self, severity: int, width: int = 3, depth: int = -1, alpha: float = 1.0):
        self.severity, self.width, self.depth, self.alpha = severity, width, depth, alpha

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        frames = _frames(clip)
        weights = rng.dirichlet([self.alpha] * self.width)
        blend = float(rng.beta(self.alpha, self.alpha))
        mixed = torch.zeros(frames.shape, dtype=torch.float32)
        for weight in weights:
            mixed += float(weight) * self._chain(frames, rng).float()
        out = frames.float().mul_(1 - blend).add_(mixed.clamp_(0, 255).mul_(blend))
        return _frames(out.round_().to(torch.uint8))

    def _chain(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        depth = self.depth if self.depth > 0 else int(rng.integers(1, 4))
        for index in rng.integers(len(AUGMIX_OPS), size=depth):
            frames = AUGMIX_OPS[index][1](frames, float(rng.uniform(0, self.severity)), _sign(rng))
        return frames

    def __repr__(self) -> str:
        return f"AugMix(severity={self.severity}, width={self.width}, depth={self.depth}, alpha={self.alpha})"


class ColorJitter:
    """torchvision's `ColorJitter(brightness, contrast, saturation, hue)`: the four adjustments in
    a random order, factors ~ U(max(0, 1 - s), 1 + s) (hue: a shift ~ U(-h, h)); a zero strength
    leaves its adjustment out."""

    ADJUST = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)

    def __init__(self, strengths: Sequence[float]):
        self.strengths = tuple(float(s) for s in strengths)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        frames = _frames(clip)
        for which in rng.permutation(4):
            strength = self.strengths[which]
            if strength > 0:
                low, high = (-strength, strength) if which == 3 else (max(0.0, 1 - strength), 1 + strength)
                frames = self.ADJUST[which](frames, float(rng.uniform(low, high)))
        return _frames(frames)

    def __repr__(self) -> str:
        return f"ColorJitter({list(self.strengths)})"


class RandomGrayscale:
    """torchvision's `RandomGrayscale(p)`: the clip's luma (ITU-R 601) in all three channels."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if rng.random() >= self.p:
            return clip
        return _frames(TF.rgb_to_grayscale(_frames(clip), num_output_channels=3))

    def __repr__(self) -> str:
        return f"RandomGrayscale(p={self.p})"


class RandomErasing:
    """timm's `RandomErasing(mode="pixel")` with PySlowFast's `cube=True`: with probability p, one
    box (a share of the frame in `area_range`, aspect ratio 0.3 to 1/0.3) on every frame is filled
    with per-pixel noise. timm's noise is N(0, 1) per pixel on the normalised clip; on uint8 that is
    mean + std x N(0, 1) per channel (data.mean, data.std), rounded and clipped to 0-255. The noise
    is drawn once and is the same on every frame (PySlowFast redraws it per frame: a flickering
    patch, i.e. motion, inside a static box)."""

    def __init__(self, p: float, area_range: Sequence[float] = (0.02, 1 / 3), *,
                 mean: Sequence[float] = (128.0,) * 3, std: Sequence[float] = (64.0,) * 3,
                 aspect_range: Sequence[float] = (0.3, 1 / 0.3), attempts: int = 100):
        self.p, self.area_range, self.attempts = p, tuple(area_range), attempts
        self.log_aspect = (math.log(aspect_range[0]), math.log(aspect_range[1]))
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1, 1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1, 1)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if rng.random() >= self.p:
            return clip
        channels, _, height, width = clip.shape
        for _ in range(self.attempts):   # timm's rule: the first box that fits inside the frame
            area = rng.uniform(*self.area_range) * height * width
            aspect = math.exp(rng.uniform(*self.log_aspect))
            box_h, box_w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < box_h < height and 0 < box_w < width:
                top, left = int(rng.integers(height - box_h + 1)), int(rng.integers(width - box_w + 1))
                noise = self.mean + self.std * rng.standard_normal((channels, 1, box_h, box_w))
                out = clip.clone()
                out[:, :, top:top + box_h, left:left + box_w] = torch.from_numpy(
                    np.clip(np.rint(noise), 0, 255).astype(np.uint8))
                return out
        return clip

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, area_range={self.area_range})"
