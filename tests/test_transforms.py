"""Clip transforms on known inputs: crop positions, flips, resize shapes, normalisation."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF  # the reference only: the package never imports it

from action3d.config import DataConfig
from action3d.data import transforms
from action3d.data.test_transforms import CenterCrop, ResizeShortSide, TenCrop, ThreeCrop, build_test_transform
from action3d.data.train_transforms import (
    MultiScaleCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    build_train_transform,
)
from action3d.data.transforms import (
    Compose,
    hflip,
    multiscale_box,
    normalize,
    random_resized_box,
    resize,
    resize_short_side,
)
from action3d.errors import Action3dError

RNG = np.random.default_rng(0)


def arange_clip(height, width, channels=3, frames=2):
    return (torch.arange(channels * frames * height * width) % 251).to(torch.uint8).reshape(
        channels, frames, height, width)


def ramp_clip(height, width):
    """A smooth image (values grow with x and y) so resampling paths can be compared."""
    y = torch.linspace(0, 120, height)[:, None]
    x = torch.linspace(0, 120, width)[None, :]
    return (y + x).round().to(torch.uint8).expand(3, 2, height, width).contiguous()


def test_center_crop_position():
    clip = arange_clip(6, 8)
    out = CenterCrop(4)(clip, RNG)
    assert torch.equal(out, clip[..., 1:5, 2:6])


def test_three_crop_along_the_long_side():
    wide = arange_clip(6, 10)
    views = ThreeCrop(4)(wide, RNG)
    assert views.shape == (3, 3, 2, 4, 4)  # (V, C, T, H, W)
    for view, left in zip(views, (0, 3, 6)):
        assert torch.equal(view, wide[..., 1:5, left:left + 4])
    tall = arange_clip(10, 6)
    views = ThreeCrop(4)(tall, RNG)
    for view, top in zip(views, (0, 3, 6)):
        assert torch.equal(view, tall[..., top:top + 4, 1:5])


def test_ten_crop_corners_centre_and_mirrors():
    clip = arange_clip(6, 8)
    views = TenCrop(4)(clip, RNG)
    assert views.shape == (10, 3, 2, 4, 4)
    assert torch.equal(views[0], clip[..., :4, :4])
    assert torch.equal(views[3], clip[..., 2:, 4:])
    assert torch.equal(views[4], clip[..., 1:5, 2:6])
    assert torch.equal(views[5], views[0].flip(-1))


def test_multi_view_crop_keeps_clip_dimension_first():
    clips = torch.stack([arange_clip(6, 10), arange_clip(6, 10) // 2])  # (K=2, C, T, H, W)
    views = ThreeCrop(4)(clips, RNG)
    assert views.shape == (2, 3, 3, 2, 4, 4)  # (K, V, C, T, H, W)
    assert torch.equal(views[1, 2], clips[1][..., 1:5, 6:10])


def test_hflip_reverses_width_only():
    clip = arange_clip(4, 5)
    out = hflip(clip)
    assert torch.equal(out[..., 0], clip[..., -1]) and torch.equal(out[..., :, 2], clip[..., :, 2])
    assert torch.equal(RandomHorizontalFlip(p=1.0)(clip, RNG), out)
    assert torch.equal(RandomHorizontalFlip(p=0.0)(clip, RNG), clip)


def test_resize_short_side_shape_and_values():
    clip = torch.full((3, 2, 48, 64), 77, dtype=torch.uint8)
    out = resize_short_side(clip, 32)
    assert out.dtype == torch.uint8 and out.shape[:3] == (3, 2, 32) and out.shape[3] in (42, 43)
    assert (out == 77).all()
    tall = ResizeShortSide(24)(torch.zeros(3, 1, 40, 30, dtype=torch.uint8), RNG)
    assert tall.shape[-1] == 24 and tall.shape[-2] == 32


def natural_frames(frames=4, height=72, width=96, seed=0):
    """(T, H, W, 3) photo-like frames: smooth shading, edges of blocks and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 90 + 60 * np.sin(x / 9.0)[..., None] * np.cos(y / 13.0)[..., None] + np.array([0, 20, -20])
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        image = base + rng.normal(0, 6, base.shape)
        image[10 + t:30 + t, 20:44] = 235                      # a bright block, moving
        out[t] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def decoder_view(frames: np.ndarray) -> torch.Tensor:
    """The layout VideoReader.read returns: a permuted (C, T, H, W) view of (T, H, W, C)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)


RESIZE_CASES = [((72, 96), (64, 85)), ((72, 96), (32, 32)), ((50, 30), (20, 12)), ((20, 12), (50, 30)),
                ((128, 171), (112, 112))]


@pytest.mark.parametrize("source, size", RESIZE_CASES)
@pytest.mark.parametrize("kind", ["random", "natural"])
def test_resize_gives_torchvisions_pixels(source, size, kind, monkeypatch):
    """Tolerance: uint8 on a CPU is torchvision's own kernel, so 0 levels; the float path (what
    runs for uint8 on CUDA) at most 1 level, under 0.5 on average. Layouts do not matter."""
    height, width = source
    if kind == "random":
        frames = np.random.default_rng(1).integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    else:
        frames = natural_frames(4, height, width)
    view = decoder_view(frames)                                   # permuted (C, T, H, W)
    expected = TF.resize(view.contiguous(), list(size), antialias=True)
    for clip in (view, view.contiguous(), view.unsqueeze(0)[0]):
        got = resize(clip, size)
        assert got.dtype == torch.uint8 and got.shape == (3, 4, *size)
        assert torch.equal(got, expected)
    views = torch.stack([view, view.flip(-1)])                     # (V, C, T, H, W) multi-view
    assert torch.equal(resize(views, size)[1], TF.resize(view.flip(-1).contiguous(), list(size), antialias=True))
    monkeypatch.setattr(transforms, "has_uint8_resize", lambda device: False)  # as on CUDA
    via_float = resize(view, size)
    assert via_float.dtype == torch.uint8 and via_float.shape == expected.shape
    difference = (via_float.int() - expected.int()).abs()
    assert difference.max() <= 1 and difference.float().mean() < 0.5


def test_resize_short_side_sizes_match_torchvision():
    for height, width, short in ((48, 64, 32), (40, 30, 24), (171, 128, 112), (100, 101, 37), (33, 33, 16)):
        clip = torch.zeros(3, 1, height, width, dtype=torch.uint8)
        assert resize_short_side(clip, short).shape == TF.resize(clip, [short], antialias=True).shape


def test_random_resized_crop_boxes_stay_inside_with_the_asked_area():
    rng = np.random.default_rng(1)
    for _ in range(200):
        top, left, h, w = random_resized_box(60, 80, rng=rng, area_range=(0.3, 0.6))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.25 <= h * w / (60 * 80) <= 0.65 or (h, w) == (60, 60)  # or the square fallback


def test_random_resized_crop_output_and_determinism():
    clip = arange_clip(48, 64)
    crop = RandomResizedCrop(32, area_range=(0.2, 1.0))
    a = crop(clip, np.random.default_rng(5))
    b = crop(clip, np.random.default_rng(5))
    c = crop(clip, np.random.default_rng(6))
    assert a.shape == (3, 2, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_multiscale_crop_uses_scaled_sizes_at_fixed_spots():
    rng = np.random.default_rng(2)
    sizes = {int(100 * s) for s in (1, 0.875, 0.75, 0.66)}
    for _ in range(100):
        top, left, h, w = multiscale_box(100, 140, rng=rng)
        assert h in sizes and w in sizes
        step_h, step_w = (100 - h) // 4, (140 - w) // 4
        corners_and_centre = {(0, 0), (0, 4 * step_w), (4 * step_h, 0),
                              (4 * step_h, 4 * step_w), (2 * step_h, 2 * step_w)}
        assert (top, left) in corners_and_centre
    assert MultiScaleCrop(56)(arange_clip(100, 140), rng).shape == (3, 2, 56, 56)


def test_short_side_crop_matches_resize_then_crop():
    clip = ramp_clip(128, 160)
    direct = CenterCrop(32, short_side=64)(clip, RNG)  # one resize from the original frame
    two_step = TF.resize(clip, [64], antialias=True)[..., 16:48, 24:56]
    assert direct.shape == (3, 2, 32, 32)
    assert (direct.int() - two_step.int()).abs().max() <= 3


def test_compose_and_config_pipelines():
    cfg = DataConfig(short_side=40, crop_size=32, flip=True)
    clip = arange_clip(36, 48)
    assert build_train_transform(cfg)(clip, np.random.default_rng(0)).shape == (3, 2, 32, 32)
    assert build_test_transform(cfg, 3)(clip, RNG).shape == (3, 3, 2, 32, 32)
    assert build_test_transform(cfg, 10)(clip, RNG).shape == (10, 3, 2, 32, 32)
    assert Compose([ResizeShortSide(40), CenterCrop(32)])(clip, RNG).shape == (3, 2, 32, 32)
    with pytest.raises(Action3dError, match="num_crops=4"):
        build_test_transform(cfg, 4)


def test_normalize_values_layouts_and_memory_format():
    batch = torch.full((2, 3, 4, 5, 5), 100, dtype=torch.uint8)
    batch[:, 1] = 200
    out = normalize(batch, mean=[100, 100, 50], std=[1, 2, 10])
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, 0], torch.zeros(1)) and torch.allclose(out[:, 1], torch.full((1,), 50.0))
    assert torch.allclose(out[:, 2], torch.full((1,), 5.0))
    views = batch.unsqueeze(1).expand(2, 3, 3, 4, 5, 5)  # (N, V, C, T, H, W)
    assert torch.allclose(normalize(views, [100, 100, 50], [1, 2, 10])[:, 2], out.unsqueeze(1).expand_as(views)[:, 2])
    channels_last = batch.contiguous(memory_format=torch.channels_last_3d)
    result = normalize(channels_last, [100, 100, 50], [1, 2, 10])
    assert result.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(result, out)
