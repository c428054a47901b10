"""Video-consistent augmentation in the loader (issue 21, data side: `action3d.data.augment`).

Each key, set as the command line sets it (`typed_config`), changes the clips as documented; every
part is drawn once per clip from the sample's generator and applied to every frame alike (a clip of
identical frames stays one of identical frames), the same seed gives the same clip, another seed
another, and every part is off by default. The clips are small synthetic pictures (a colour ramp
with a square), so what each op did can be read from the pixels.
"""
from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from synthetic_subsets import single_thread, train  # noqa: F401 - one intra-op thread in this module

from action3d.commands import data as data_command
from action3d.commands._hydra import compose_config, typed_config
from action3d.config.checks import ConfigError
from action3d.data import augment
from action3d.data.dataset import build_dataset
from action3d.data.test_transforms import build_test_transform
from action3d.data.train_transforms import build_train_transform
from action3d.data.video_writer import write_video
from action3d.engine.data import shared_index

from conftest import SMALL

FRAMES = 4


def data_cfg(*overrides: str):
    """The `data` section of `action3d train OVERRIDES` (checked, as the command line checks it)."""
    return typed_config("train", ["data.crop_size=32", "data.short_side=32", *overrides]).data


def picture(size: int = 32) -> torch.Tensor:
    """(3, H, W) uint8: red grows to the right, green downwards, blue is a bright square on a dark field."""
    ramp = torch.arange(size, dtype=torch.float32) * (248 / (size - 1))
    red, green = ramp.expand(size, size), ramp[:, None].expand(size, size)
    blue = torch.full((size, size), 40.0)
    blue[size // 4:size // 2, size // 4:size // 2] = 220
    return torch.stack([red, green, blue]).round().to(torch.uint8)


def static_clip(size: int = 32) -> torch.Tensor:
    """(3, T, H, W): the picture on every frame."""
    return picture(size)[:, None].expand(3, FRAMES, size, size).contiguous()


def apply(ops, clip: torch.Tensor, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    for op in ops:
        clip = op(clip, rng)
    return clip


def parts(*overrides: str) -> list:
    """The augmentations the config turns on (what build_train_transform appends after crop and flip)."""
    return build_train_transform(data_cfg("data.flip=false", *overrides)).transforms[1:]


class Recorder:
    """Stands in for an op: records (level, sign) of every call and returns the frames unchanged."""

    def __init__(self):
        self.calls = []

    def __call__(self, frames, level, sign):
        self.calls.append((level, sign))
        return frames


# --------------------------------------------------------------------------- every part

PARTS = {
    "rand_augment": ["data.rand_augment_n=2"],
    "augmix": ["data.augmix_severity=3"],
    "color_jitter": ["data.color_jitter=[0.4,0.4,0.4,0.1]"],
    "grayscale": ["data.grayscale_prob=0.5"],
    "erasing": ["data.erase_prob=0.5"],
}


@pytest.mark.parametrize("part", PARTS)
def test_each_part_draws_once_per_clip_applies_to_every_frame_and_follows_the_seed(part):
    ops = parts(*PARTS[part])
    assert len(ops) == 1, ops
    clip = static_clip()
    outs = [apply(ops, clip, seed) for seed in range(8)]
    for out in outs:
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert torch.equal(out, out[:, :1].expand_as(out)), "a frame differs from the others"
    assert torch.equal(apply(ops, clip, 3), outs[3]), "the same seed gave another clip"
    outcomes = 2 if part == "grayscale" else 3     # a clip is gray or not
    assert len({out.numpy().tobytes() for out in outs}) >= outcomes, "other seeds gave the same clip"
    assert any(not torch.equal(out, clip) for out in outs), "nothing changed"


def test_every_part_is_off_by_default():
    pipeline = build_train_transform(data_cfg("data.flip=true"))
    assert [type(t).__name__ for t in pipeline.transforms] == ["RandomResizedCrop", "RandomHorizontalFlip"]


def test_the_pipeline_runs_crop_flip_rand_augment_jitter_grayscale_then_erasing():
    pipeline = build_train_transform(data_cfg("data.flip=true", "data.rand_augment_n=1",
                                              "data.color_jitter=[0.1,0,0,0]", "data.grayscale_prob=0.1",
                                              "data.erase_prob=0.1"))
    assert [type(t).__name__ for t in pipeline.transforms] == [
        "RandomResizedCrop", "RandomHorizontalFlip", "RandAugment", "ColorJitter", "RandomGrayscale", "RandomErasing"]
    assert type(parts("data.augmix_severity=2", "data.erase_prob=0.1")[0]).__name__ == "AugMix"


# --------------------------------------------------------------------------- RandAugment

def test_rand_augment_n_draws_n_ops_per_clip_each_applied_half_the_time(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(augment, "RAND_AUGMENT_OPS", tuple((name, recorder) for name, _ in augment.RAND_AUGMENT_OPS))
    for n in (1, 4):
        (op,) = parts(f"data.rand_augment_n={n}")
        applied = []
        for seed in range(200):
            recorder.calls.clear()
            op(static_clip(), np.random.default_rng(seed))
            applied.append(len(recorder.calls))
        assert max(applied) == n and min(applied) == 0
        assert abs(statistics.fmean(applied) - n / 2) < 0.1 * n + 0.1, (n, statistics.fmean(applied))
    assert parts("data.rand_augment_n=0") == []


def test_rand_augment_m_and_mstd_set_the_magnitude_of_every_op(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(augment, "RAND_AUGMENT_OPS", (("Recorder", recorder),))

    def levels(*overrides):
        recorder.calls.clear()
        (op,) = parts("data.rand_augment_n=4", *overrides)
        for seed in range(100):
            op(static_clip(), np.random.default_rng(seed))
        return [level for level, _ in recorder.calls]

    assert set(levels("data.rand_augment_m=7", "data.rand_augment_mstd=0")) == {7.0}
    noisy = levels("data.rand_augment_m=5", "data.rand_augment_mstd=0.5")
    assert abs(statistics.fmean(noisy) - 5) < 0.1 and 0.4 < statistics.stdev(noisy) < 0.6
    assert max(levels("data.rand_augment_m=10", "data.rand_augment_mstd=2")) == 10.0   # clipped to timm's scale
    # on the pixels: a rotation by 30 x m / 10 degrees, none at m=0
    monkeypatch.setattr(augment, "RAND_AUGMENT_OPS", (("Rotate", augment.rotate),))
    change = {}
    for m in (0, 3, 9):
        (op,) = parts("data.rand_augment_n=4", f"data.rand_augment_m={m}", "data.rand_augment_mstd=0")
        outs = [op(static_clip(), np.random.default_rng(seed)) for seed in range(10)]
        change[m] = statistics.fmean((out.float() - static_clip().float()).abs().mean().item() for out in outs)
    assert change[0] == 0 < change[3] < change[9], change


def test_rand_augment_ops_follow_timms_ranges():
    frames = augment._frames(static_clip())
    black = torch.zeros_like(frames)
    rotated = augment.rotate(black, 10, 1)
    assert rotated[..., 0, 0].eq(128).all() and rotated[..., 16, 16].eq(0).all()   # timm's grey fill
    assert torch.equal(augment.posterize(frames, 0, 1), frames & 0xF0)              # 4 bits kept at level 0
    assert augment.posterize(frames, 10, 1).eq(0).all()                               # none at 10
    assert torch.equal(augment.solarize(frames, 0, 1), frames)                        # threshold 256: nothing
    assert torch.equal(augment.solarize(frames, 10, 1), 255 - frames)                 # threshold 0: everything
    added = augment.solarize_add(frames, 10, 1)                                       # +110 below 128
    assert torch.equal(added[frames < 128], (frames[frames < 128].int() + 110).clamp(max=255).to(torch.uint8))
    assert torch.equal(added[frames >= 128], frames[frames >= 128])
    assert torch.equal(augment.brightness(frames, 0, 1), frames)                      # factor 1 at level 0
    assert augment._enhance_factor(10, 1) == pytest.approx(1.9) and augment._enhance_factor(10, -1) == 0.1
    shifted = augment.translate_x(frames, 10, 1)                                      # 45% of the width
    assert torch.equal(shifted[..., 14:], frames[..., :-14])


# --------------------------------------------------------------------------- AugMix

def test_augmix_severity_width_and_depth_set_the_chains(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(augment, "AUGMIX_OPS", (("Recorder", recorder),))

    def calls_per_clip(*overrides):
        (op,) = parts(*overrides)
        counts, levels = [], []
        for seed in range(60):
            recorder.calls.clear()
            op(static_clip(), np.random.default_rng(seed))
            counts.append(len(recorder.calls))
            levels += [level for level, _ in recorder.calls]
        return counts, levels

    assert set(calls_per_clip("data.augmix_severity=3", "data.augmix_width=2", "data.augmix_depth=1")[0]) == {2}
    assert set(calls_per_clip("data.augmix_severity=3", "data.augmix_width=3", "data.augmix_depth=2")[0]) == {6}
    counts, levels = calls_per_clip("data.augmix_severity=3", "data.augmix_width=1")
    assert set(counts) == {1, 2, 3}                                                   # depth -1: 1 to 3 ops
    strong = calls_per_clip("data.augmix_severity=8", "data.augmix_width=1")[1]
    assert 0 <= min(levels) and 2.5 < max(levels) <= 3 < max(strong) <= 8          # each ~ U(0, severity)
    assert parts("data.augmix_severity=0") == []


def test_augmix_alpha_sets_how_far_the_mix_moves_from_the_clip(monkeypatch):
    """With one op that blacks the frames out, every chain is black and the output is (1 - m) x
    the clip, m ~ Beta(alpha, alpha): near 0 or 1 for a small alpha, near 1/2 for a large one."""
    monkeypatch.setattr(augment, "AUGMIX_OPS", (("Black", lambda frames, level, sign: torch.zeros_like(frames)),))
    clip = torch.full((3, FRAMES, 8, 8), 200, dtype=torch.uint8)

    def kept(alpha):
        (op,) = parts("data.augmix_severity=3", f"data.augmix_alpha={alpha}")
        return [op(clip, np.random.default_rng(seed)).float().mean().item() / 200 for seed in range(100)]

    small, large = kept(0.05), kept(50)
    assert sum(k < 0.1 or k > 0.9 for k in small) > 80, small
    assert all(0.3 < k < 0.7 for k in large), large


def test_augmix_and_rand_augment_together_are_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        compose_config("train", ["data.rand_augment_n=2", "data.augmix_severity=3"])
    assert str(err.value).startswith("data.augmix_severity=3 is not allowed: AugMix and RandAugment")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- colour jitter, grayscale

def test_color_jitter_entries_set_brightness_contrast_saturation_and_hue():
    clip, flat = static_clip(), torch.full((3, FRAMES, 32, 32), 90, dtype=torch.uint8)
    gray = picture()[1:2].expand(3, 32, 32)[:, None].expand(3, FRAMES, 32, 32)   # equal channels

    def outs(strengths, source):
        (op,) = parts(f"data.color_jitter={strengths}")
        return [op(source, np.random.default_rng(seed)) for seed in range(20)]

    factors = [out.float().mean().item() / flat.float().mean().item() for out in outs("[0.5,0,0,0]", flat)]
    assert 0.5 <= min(factors) < 0.8 and 1.2 < max(factors) <= 1.5             # brightness ~ U(0.5, 1.5)
    assert all((out.int() - flat.int()).abs().max() <= 1 for out in outs("[0,0.5,0,0]", flat))   # flat stays flat
    assert any(not torch.equal(out, clip) for out in outs("[0,0.5,0,0]", clip))
    for strengths in ("[0,0,0.5,0]", "[0,0,0,0.2]"):          # saturation, hue: no colour, no change
        assert all((out.int() - gray.int()).abs().max() <= 1 for out in outs(strengths, gray))
        changes = [(out.float() - clip.float()).abs().mean().item() for out in outs(strengths, clip)]
        assert statistics.fmean(changes) > 3 and sum(c > 1 for c in changes) >= 15, (strengths, changes)
    assert parts("data.color_jitter=[0,0,0,0]") == []


def test_grayscale_prob_turns_that_share_of_clips_gray():
    clip = static_clip()
    (always,) = parts("data.grayscale_prob=1")
    out = always(clip, np.random.default_rng(0)).float()
    luma = 0.299 * clip[0].float() + 0.587 * clip[1].float() + 0.114 * clip[2].float()
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2]) and (out[0] - luma).abs().max() < 1.5
    (some,) = parts("data.grayscale_prob=0.3")
    grays = sum(torch.equal(o[0], o[2]) for o in (some(clip, np.random.default_rng(s)) for s in range(300)))
    assert 60 <= grays <= 120, grays
    assert parts("data.grayscale_prob=0") == []


# --------------------------------------------------------------------------- random erasing

def erased_box(out: torch.Tensor, clip: torch.Tensor):
    """(top, left, height, width) of the changed pixels, which must form one box on every frame alike."""
    changed = (out != clip).any(0)                      # (T, H, W)
    assert torch.equal(changed, changed[:1].expand_as(changed))
    rows, cols = changed[0].any(1).nonzero().flatten(), changed[0].any(0).nonzero().flatten()
    if len(rows) == 0:
        return None
    top, left = int(rows[0]), int(cols[0])
    height, width = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
    return top, left, height, width


def test_erase_prob_fills_one_box_per_clip_with_noise_of_the_data_mean_and_std():
    clip = torch.zeros((3, FRAMES, 64, 64), dtype=torch.uint8)
    (always,) = parts("data.erase_prob=1", "data.mean=[60,120,180]", "data.std=[10,20,30]")
    noise = []
    for seed in range(20):
        out = always(clip, np.random.default_rng(seed))
        top, left, height, width = erased_box(out, clip)
        assert torch.equal(out[:, :, :top], clip[:, :, :top]) and torch.equal(out[:, 0], out[:, -1])
        noise.append(out[:, 0, top:top + height, left:left + width].reshape(3, -1).float())
    noise = torch.cat(noise, 1)
    assert noise.mean(1).sub(torch.tensor([60.0, 120, 180])).abs().max() < 2
    assert noise.std(1).sub(torch.tensor([10.0, 20, 30])).abs().max() < 2
    (quarter,) = parts("data.erase_prob=0.25")
    hits = sum(erased_box(quarter(static_clip(), np.random.default_rng(s)), static_clip()) is not None
               for s in range(200))
    assert 30 <= hits <= 70, hits
    assert parts("data.erase_prob=0") == []


def test_erase_area_range_sets_the_share_of_the_frame_the_box_covers():
    clip = torch.zeros((3, FRAMES, 64, 64), dtype=torch.uint8)
    for area, (low, high) in (("[0.1,0.1]", (0.08, 0.12)), ("[0.02,0.04]", (0.01, 0.05))):
        (op,) = parts("data.erase_prob=1", f"data.erase_area_range={area}", "data.std=[1,1,1]",
                      "data.mean=[200,200,200]")
        for seed in range(20):
            _, _, height, width = erased_box(op(clip, np.random.default_rng(seed)), clip)
            assert low <= height * width / 64 ** 2 <= high, (area, height, width)


# --------------------------------------------------------------------------- short-side jitter

def vertical_ramp(height: int = 48, width: int = 64) -> torch.Tensor:
    """(3, T, H, W): the value of row y is 255 y / (H - 1): a crop's range is the share of the height it covers."""
    ramp = torch.linspace(0, 255, height).round().to(torch.uint8)
    return ramp[None, None, :, None].expand(3, FRAMES, height, width).contiguous()


def covered(clip: torch.Tensor) -> float:
    return (clip.float().max() - clip.float().min()).item() / 255


def test_train_crop_short_side_jitter_resizes_the_short_side_into_train_scale_range():
    ramp = vertical_ramp()                           # short side 48, crops of 32

    def shares(*overrides):
        (crop,) = build_train_transform(data_cfg("data.flip=false", "data.train_crop=short_side_jitter",
                                                 *overrides)).transforms
        outs = [crop(ramp, np.random.default_rng(seed)) for seed in range(30)]
        assert all(out.shape == (3, FRAMES, 32, 32) for out in outs)
        return [covered(out) for out in outs], outs

    whole, _ = shares("data.train_scale_range=[32,32]")        # short side 32: the crop is the whole height
    half, outs = shares("data.train_scale_range=[64,64]")      # short side 64: half of it
    assert min(whole) > 0.95 and all(0.45 < s < 0.56 for s in half), (whole, half)
    assert len({int(out[0, 0, 0, 0]) for out in outs}) > 5      # at random heights
    jittered, _ = shares("data.train_scale_range=[32,64]")
    assert min(jittered) < 0.6 and max(jittered) > 0.85        # every scale in between
    # data.short_side is then only the test resize
    same = [shares("data.train_scale_range=[40,56]", f"data.short_side={side}")[0] for side in (32, 48)]
    assert same[0] == same[1]
    tests = [build_test_transform(data_cfg("data.train_crop=short_side_jitter", f"data.short_side={side}"), 1)
             for side in (32, 64)]
    assert covered(tests[0](ramp, None)) > 0.95 and covered(tests[1](ramp, None)) < 0.56


def test_train_scale_range_below_the_crop_is_refused_only_in_short_side_jitter():
    with pytest.raises(ConfigError, match=r"^data.train_scale_range=\[16,64\] is not allowed: both sides must be "
                                          r">= data.crop_size=32$"):
        data_cfg("data.train_crop=short_side_jitter", "data.train_scale_range=[16,64]")
    assert data_cfg("data.crop_size=300", "data.short_side=320").train_scale_range == [256, 320]


# --------------------------------------------------------------------------- datasets, K clips, shards, recipe

@pytest.fixture(scope="module")
def still_videos(tmp_path_factory):
    """Two list-file videos of a still picture (and its packed shards)."""
    root = tmp_path_factory.mktemp("still")
    frames = picture(48).permute(1, 2, 0).numpy()[None].repeat(10, 0)
    for name in ("a", "b"):
        write_video(root / f"{name}.mp4", frames, gop=10)
    (root / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (root / "val.txt").write_text("a.mp4 0\n")
    files = ["data=folder", f"data.root={root}", f"data.train_list={root}/train.txt", f"data.val_list={root}/val.txt"]
    packed = root / "packed"
    data_command.run(compose_config("data", ["action=pack", f"out={packed}", *files]))
    return files, packed


STILL = ["data.clip_len=2", "data.num_workers=0", "data.flip=false", "data.crop_area_range=[1,1]"]


def k_clips(source: list, *overrides: str, seed: int = 0) -> torch.Tensor:
    """The two clips of the first training video, (2, C, T, H, W), as the trainer's dataset gives them."""
    cfg = data_cfg(*source, *STILL, "data.num_clips=2", *overrides)
    dataset = build_dataset(cfg, "train", train=True, seed=seed, **shared_index(cfg, "train", None))
    if not hasattr(dataset, "assign"):
        return dataset[(0, 0)][0]
    dataset.assign(rank=0, world_size=1, num_workers=0, batch_size=1, train=True)
    return next(iter(dataset))[0]


def test_each_of_k_clips_gets_its_own_draw_in_files_and_shards(still_videos, monkeypatch):
    import action3d.data.shards as shards_module

    monkeypatch.setattr(shards_module, "get_worker_info", lambda: None)
    files, packed = still_videos
    rand_augment = ["data.rand_augment_n=3", "data.rand_augment_mstd=0"]
    for source in (files, ["data=shards", f"data.root={packed}"]):
        plain, augmented = k_clips(source), k_clips(source, *rand_augment)
        assert plain.shape == augmented.shape == (2, 3, 2, 32, 32)
        assert (plain[0].float() - plain[1].float()).abs().mean() < 2          # the same still, the same crop
        assert (augmented[0].float() - augmented[1].float()).abs().mean() > 5  # each clip its own ops
        assert torch.equal(augmented, k_clips(source, *rand_augment))
        assert not torch.equal(augmented, k_clips(source, *rand_augment, seed=1))


def test_recipe_strong_aug_turns_on_the_zoo_augmentation():
    cfg = compose_config("train", ["recipe=strong_aug"])
    data = cfg.data
    assert (data.rand_augment_n, data.rand_augment_m, data.rand_augment_mstd) == (4, 7, 0.5)
    assert (data.erase_prob, data.mixup_alpha, data.cutmix_alpha, data.mix_prob, data.mix_switch_prob) == (
        0.25, 0.8, 1.0, 1.0, 0.5)
    assert cfg.trainer.label_smoothing == 0.1 and data.augmix_severity == 0
    plain = compose_config("train", [])
    assert (plain.data.train_crop, list(plain.data.crop_area_range)) == (data.train_crop, list(data.crop_area_range))
    names = [type(t).__name__ for t in build_train_transform(typed_config("train", ["recipe=strong_aug"]).data)
             .transforms]
    assert names[-2:] == ["RandAugment", "RandomErasing"]
    both = compose_config("train", ["recipe=[finetune,strong_aug]", "data.rand_augment_m=9"])
    assert (both.optim.name, both.model.frozen_stages, both.data.rand_augment_n, both.data.rand_augment_m) == (
        "adamw", 1, 4, 9)


def test_training_with_augmix_jitter_grayscale_erasing_and_scale_jitter_on(tmp_path, cache_dir):
    """Every loader part at once, two clips per video: a short run trains and its loss is finite."""
    overrides = [*SMALL, "trainer.max_epochs=1", "data.num_clips=2", "data.augmix_severity=3",
                 "data.color_jitter=[0.3,0.3,0.3,0.05]", "data.grayscale_prob=0.2", "data.erase_prob=0.5",
                 "data.train_crop=short_side_jitter", "data.train_scale_range=[32,40]", "trainer.precise_bn_batches=0"]
    summary = train(overrides, tmp_path / "run", seed=0)
    assert summary["steps"] == 4 and np.isfinite(summary["best_top1"])
