"""Frame-rate resampling (data.target_fps) and the zoos' test protocols (eval.protocol): clip start
indices and crop boxes equal each zoo's rule exactly, on videos of several lengths and frame rates,
and the pixels are within one uint8 level of the reference on the same decoded frames.

References: torchvision's own VideoClips / UniformClipSampler / VideoClassification and
PyTorchVideo 0.1.5's ConstantClipsPerVideoSampler (the installed packages); PySlowFast's decoder
and uniform_crop, mmaction2 0.x's SampleFrames and crops and Hara's test windows are transcribed
below from their code (those packages are not installed).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from action3d.data.sampling import (
    NoFullWindow,
    ResampledReader,
    at_frame_rate,
    protocol_clip_indices,
    resample_indices,
)
from action3d.data.stream_timing import StreamTiming
from action3d.data.test_transforms import ZooViews, protocol_boxes, protocol_frame_size

pytestmark = pytest.mark.filterwarnings("ignore:There aren't enough frames:UserWarning")

LENGTHS = (5, 16, 17, 31, 33, 64, 100, 301)
RATES = (24.0, 25.0, 30000 / 1001, 30.0, 60.0)


class FakeReader:
    """A reader whose frame i is a clip of value i: what was read is visible in the pixels."""

    def __init__(self, num_frames, fps, timing=None, path="fake.mp4"):
        self.num_frames, self.fps, self.path = num_frames, fps, path
        if timing is not None:
            self.timing = timing

    def read(self, indices):
        values = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return values.view(1, -1, 1, 1).expand(3, -1, 2, 2)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


# --------------------------------------------------------------------------- data.target_fps

def torchvision_resampled(num_frames, fps, frame_rate):
    """torchvision's VideoClips: the native index of each resampled frame."""
    from torchvision.datasets.video_utils import VideoClips

    total = int(math.floor(num_frames * frame_rate / fps))
    idxs = VideoClips._resample_video_idx(total, fps, frame_rate)
    return torch.arange(num_frames)[idxs].numpy()


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("fps", RATES)
@pytest.mark.parametrize("target", (15.0, 24.0, 30.0))
def test_target_fps_picks_torchvisions_frames(num_frames, fps, target):
    """floor(j * native / target), float32, and [::step] for an integer ratio, as torchvision."""
    expected = torchvision_resampled(num_frames, fps, target)
    got = resample_indices(num_frames, fps, target, StreamTiming.constant(num_frames, fps))
    if len(expected) == 0:
        assert got.tolist() == [0]            # never empty: a video shorter than one frame keeps its first
    else:
        assert got.tolist() == expected.tolist()


def test_variable_frame_rate_videos_are_resampled_by_their_timestamps():
    # 10 frames at 1/30 s, then 5 frames held 1/10 s each (a phone slowing down)
    pts = np.concatenate([np.arange(10) * 3000, 30000 + np.arange(5) * 9000])
    timing = StreamTiming(pts=pts, time_base=Fraction(1, 90000), start_pts=0, duration_pts=None)
    assert not timing.is_constant_rate()
    got = resample_indices(15, 20.0, 15, timing)
    # j / 15 s -> the frame shown then: 0 0.067 0.133 0.2 0.267 0.333 | 0.4 0.467 ... (frame 10 from 1/3 s)
    seconds = pts / 90000
    times = np.arange(len(got)) / 15
    assert got.tolist() == [int(np.searchsorted(seconds, t + 1e-9, side="right") - 1) for t in times]
    assert len(got) == 13 and got[:6].tolist() == [0, 2, 4, 6, 8, 10] and got[-1] == 14   # to 0.833 s: its end


def test_a_reader_at_a_frame_rate_counts_and_reads_resampled_frames():
    reader = at_frame_rate(FakeReader(100, 30.0), 15)
    assert isinstance(reader, ResampledReader) and reader.num_frames == 50 and reader.fps == 15
    assert reader.read([0, 1, 49])[0, :, 0, 0].tolist() == [0, 2, 98]
    native = FakeReader(10, 30.0)
    assert at_frame_rate(native, None) is native


def test_target_fps_reaches_training_eval_clips_and_windows(monkeypatch):
    """The dataset (train and test clips; shards share its decoding) and the windows of predict,
    embed and explain (`open_reader`) sample at the target rate: frame_interval counts target frames."""
    import action3d.data.decode as decode
    import action3d.engine.windows as windows
    from action3d.config import DataConfig
    from action3d.data.dataset import VideoDataset
    from action3d.engine.windows import open_reader, plan_windows, window_views

    def fake(path, **kwargs):
        return FakeReader(120, 60.0, path=str(path))
    monkeypatch.setattr(decode, "VideoReader", fake)
    monkeypatch.setattr(windows, "VideoReader", fake)
    identity = lambda clip, rng: clip  # noqa: E731
    test = VideoDataset([("a.mp4", 0)], transform=identity, train=False, clip_len=4, frame_interval=2,
                        target_fps=15)
    clip, label, _ = test[0]
    # 30 frames at 15 fps; span 7, centred at offset 11: 11 13 15 17 -> native x4
    assert clip[0, :, 0, 0].tolist() == [44, 52, 60, 68]
    train = VideoDataset([("a.mp4", 0)], transform=identity, train=True, clip_len=4, frame_interval=2, target_fps=15)
    picks = train[(0, 0)][0][0, :, 0, 0]
    assert (picks % 8 == picks[0] % 8).all() and (torch.diff(picks) == 8).all()
    data = DataConfig(clip_len=4, frame_interval=1, target_fps=15, short_side=2, crop_size=2)
    with open_reader("a.mp4", data) as reader:
        assert (reader.num_frames, reader.fps) == (30, 15)
        win = plan_windows(reader.num_frames, reader.fps, window=1.0, stride=1.0)[1]     # the 2nd second
        assert window_views(reader, win, data, num_clips=1, num_crops=1)[0, 0, :, 0, 0].tolist() == [80, 84, 88, 92]


# --------------------------------------------------------------------------- clip start indices

def mmaction2_v0_reference(total, clip_len, interval, num_clips, out_of_bound):
    """mmaction2 0.x SampleFrames(test_mode=True).__call__ (transcribed)."""
    ori_clip_len = clip_len * interval
    avg_interval = (total - ori_clip_len + 1) / float(num_clips)
    if total > ori_clip_len - 1:
        base_offsets = np.arange(num_clips) * avg_interval
        clip_offsets = (base_offsets + avg_interval / 2.0).astype(np.int64)
    else:
        clip_offsets = np.zeros((num_clips,), dtype=np.int64)
    frame_inds = clip_offsets[:, None] + np.arange(clip_len)[None, :] * interval
    if out_of_bound == "loop":
        return np.mod(frame_inds, total)
    safe_inds = frame_inds < total
    unsafe_inds = 1 - safe_inds
    last_ind = np.max(safe_inds * frame_inds, axis=1)
    return safe_inds * frame_inds + (unsafe_inds.T * last_ind).T


def pyslowfast_reference(total, fps, clip_len, rate, clip_idx, num_clips):
    """PySlowFast decoder.decode on a whole decoded video: get_start_end_idx + temporal_sampling."""
    clip_sz = rate * clip_len / 30 * fps
    delta = max(total - clip_sz, 0)
    start_idx = delta * clip_idx / num_clips
    end_idx = start_idx + clip_sz - 1
    index = torch.linspace(start_idx, end_idx, clip_len)
    return torch.clamp(index, 0, total - 1).long().tolist()


def hara_reference(n_frames, size, release):
    """2018: make_dataset(n_samples_for_each_video=0) + LoopPadding; 2020: SlidingWindow (1-based)."""
    def loop(out):
        for index in out:
            if len(out) >= size:
                break
            out.append(index)
        return out
    if release == 2018:
        return [[i - 1 for i in loop(list(range(j, min(n_frames + 1, j + size))))] for j in range(1, n_frames, size)]
    frame_indices, out = list(range(1, n_frames + 1)), []
    for begin_index in frame_indices[::size]:
        sample = list(range(begin_index, min(frame_indices[-1] + 1, begin_index + size)))
        if len(sample) < size:
            out.append(loop(sample))
            break
        out.append(sample)
    return [[i - 1 for i in window] for window in out]


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("clip_len, interval, num_clips", [(8, 8, 10), (32, 2, 10), (4, 16, 3), (16, 1, 1)])
def test_mmaction2_v0_offsets(num_frames, clip_len, interval, num_clips):
    for oob in ("loop", "repeat_last"):
        got = protocol_clip_indices("mmaction2_v0", FakeReader(num_frames, 30.0), clip_len=clip_len,
                                frame_interval=interval, num_clips=num_clips, out_of_bound=oob)
        assert got.tolist() == mmaction2_v0_reference(num_frames, clip_len, interval, num_clips, oob).tolist()


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("fps", RATES)
def test_pyslowfast_spans_scale_with_the_frame_rate(num_frames, fps):
    for clip_len, rate in ((8, 8), (32, 2), (4, 12), (13, 6)):
        got = protocol_clip_indices("pyslowfast", FakeReader(num_frames, fps), clip_len=clip_len, frame_interval=rate,
                                num_clips=10)
        assert got.tolist() == [pyslowfast_reference(num_frames, fps, clip_len, rate, i, 10) for i in range(10)]


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("fps", RATES)
def test_torchvision_windows_at_15_fps_equal_videoclips_and_uniformclipsampler(num_frames, fps):
    from torchvision.datasets.samplers import UniformClipSampler
    from torchvision.datasets.video_utils import VideoClips

    clips, idxs = VideoClips.compute_clips_for_video(torch.arange(num_frames), 16, 1, fps, 15)
    reader = at_frame_rate(FakeReader(num_frames, fps), 15)
    if len(clips) == 0:
        with pytest.raises(NoFullWindow, match="fewer than one window of 16"):
            protocol_clip_indices("torchvision", reader, clip_len=16, num_clips=5)
        return
    holder = VideoClips.__new__(VideoClips)       # the sampler reads .clips only
    holder.clips = [clips]
    picked = list(UniformClipSampler(holder, 5))
    got = reader.native[protocol_clip_indices("torchvision", reader, clip_len=16, frame_interval=1, num_clips=5)]
    assert got.tolist() == [clips[i].tolist() for i in picked]     # the native frames of each chosen window


@pytest.mark.parametrize("num_frames", LENGTHS)
@pytest.mark.parametrize("fps", RATES)
def test_ptv_constant_clips_per_video_by_timestamps(num_frames, fps):
    clip_sampling = pytest.importorskip("pytorchvideo.data.clip_sampling")
    from pytorchvideo.data.utils import secs_to_pts

    tick = Fraction(1, 15360) if fps != 30000 / 1001 else Fraction(1, 30000)
    step = round(Fraction(fps).limit_denominator(1001) ** -1 / tick)
    for start_pts in (0, 3 * step):
        pts = start_pts + np.arange(num_frames) * step
        timing = StreamTiming(pts=pts, time_base=tick, start_pts=start_pts, duration_pts=start_pts + num_frames * step)
        reader = FakeReader(num_frames, fps, timing=timing)
        for clip_len, rate in ((8, 8), (32, 2), (16, 5)):
            got = protocol_clip_indices("ptv", reader, clip_len=clip_len, frame_interval=rate, num_clips=10)
            sampler = clip_sampling.ConstantClipsPerVideoSampler(clip_len * rate / 30, 10, 3)
            duration = int(timing.duration_pts - start_pts) * tick
            expected = []
            for _ in range(30):
                info = sampler(0, duration, {})
                if info.aug_index:
                    continue
                first = secs_to_pts(info.clip_start_sec, tick, start_pts, round_mode="ceil")
                stop = secs_to_pts(info.clip_end_sec, tick, start_pts, round_mode="ceil")
                inside = [k for k, p in enumerate(pts) if first <= p < stop]
                index = torch.clamp(torch.linspace(0, len(inside) - 1, clip_len), 0, len(inside) - 1).long()
                expected.append([inside[i] for i in index])
            assert got.tolist() == expected


@pytest.mark.parametrize("num_frames", (1, 15, 16, 17, 32, 33, 49, 100))
def test_hara_windows_of_both_releases(num_frames):
    for protocol, release in (("hara", 2020), ("hara_2018", 2018)):
        got = protocol_clip_indices(protocol, FakeReader(num_frames, 30.0), clip_len=16)
        expected = hara_reference(num_frames, 16, release)
        assert got.tolist() == (expected or [[0] * 16]), protocol
    assert len(protocol_clip_indices("hara", FakeReader(33, 30.0), clip_len=16)) == 3       # 2020 loops frame 33
    assert len(protocol_clip_indices("hara_2018", FakeReader(33, 30.0), clip_len=16)) == 2  # 2018 stops before it


# --------------------------------------------------------------------------- crop boxes and pixels

SIZES = ((240, 320), (256, 340), (360, 640), (320, 240), (256, 256), (257, 455))


def reference_boxes(protocol, h, w, size, num_crops):
    """Each zoo's crop code, transcribed: (top, left) of every unmirrored view."""
    if protocol == "mmaction2_v0":
        if num_crops == 1:
            return [((h - size) // 2, (w - size) // 2)]
        if num_crops == 3:
            if size == h:
                s = (w - size) // 2
                return sorted([(0, 0), (0, 2 * s), (0, s)])   # its order: left, right, middle; the set counts
            s = (h - size) // 2
            return sorted([(0, 0), (2 * s, 0), (s, 0)])
        ws, hs = (w - size) // 4, (h - size) // 4
        return [(0, 0), (0, 4 * ws), (4 * hs, 0), (4 * hs, 4 * ws), (2 * hs, 2 * ws)]

    def uniform_crop(idx):                                  # PySlowFast / PyTorchVideo
        y, x = int(math.ceil((h - size) / 2)), int(math.ceil((w - size) / 2))
        if h > w:
            y = {0: 0, 1: y, 2: h - size}[idx]
        else:
            x = {0: 0, 1: x, 2: w - size}[idx]
        return y, x
    if protocol == "pyslowfast":
        return [uniform_crop(i) for i in ((1,) if num_crops == 1 else (0, 1, 2))]
    if protocol == "ptv":
        return [uniform_crop(i) for i in range(num_crops)]   # aug_index 0 .. num_crops - 1
    return [(int(round((h - size) / 2.0)), int(round((w - size) / 2.0)))]   # torchvision / Hara: center_crop


def reference_size(protocol, h, w, short):
    if protocol == "mmaction2_v0":                 # mmcv.rescale_size((w, h), (inf, short))
        scale = min(np.inf / max(h, w), short / min(h, w))
        return int(h * float(scale) + 0.5), int(w * float(scale) + 0.5)
    if protocol == "pyslowfast":                   # random_short_side_scale_jitter
        if (w <= h and w == short) or (h <= w and h == short):
            return h, w
        if w < h:
            return int(math.floor(float(h) / w * short)), short
        return short, int(math.floor(float(w) / h * short))
    if protocol == "ptv":                          # short_side_scale
        if w < h:
            return int(math.floor((float(h) / w) * short)), short
        return short, int(math.floor((float(w) / h) * short))
    return (int(short * h / w), short) if w <= h else (short, int(short * w / h))   # torchvision Resize([short])


CASES = [("mmaction2_v0", 256, 256, 3), ("mmaction2_v0", 256, 224, 1), ("mmaction2_v0", 256, 224, 10),
         ("pyslowfast", 256, 256, 3), ("pyslowfast", 256, 224, 1), ("ptv", 182, 182, 3), ("ptv", 256, 256, 1),
         ("torchvision", 128, 112, 1), ("hara", 112, 112, 1), ("hara_2018", 112, 112, 1)]


@pytest.mark.parametrize("protocol, short, size, crops", CASES)
def test_crop_boxes_and_frame_sizes_are_the_zoos(protocol, short, size, crops):
    for h, w in SIZES:
        rh, rw = protocol_frame_size(protocol, h, w, short_side=short)
        assert (rh, rw) == reference_size(protocol, h, w, short), (h, w)
        boxes = [(top, left) for top, left, _, _ in protocol_boxes(protocol, rh, rw, size, crops)]
        expected = reference_boxes(protocol, rh, rw, size, crops)
        assert (sorted(boxes) if protocol == "mmaction2_v0" and crops == 3 else boxes) == expected, (h, w)


@pytest.mark.parametrize("protocol, short, size, crops", CASES)
def test_zoo_views_are_within_one_level_of_a_plain_bilinear_resize_then_crop(protocol, short, size, crops):
    """data.resize_antialias=false: F.interpolate(bilinear, antialias=False, align_corners=False) of
    the whole frame, then the zoo's crops; true: antialiased (other pixels where it shrinks)."""
    clip = torch.randint(0, 256, (3, 2, 240, 320), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    views = ZooViews(protocol, size, num_crops=crops, short_side=short, antialias=False)(clip, None)
    views = views if views.dim() == 5 else views.unsqueeze(0)
    rh, rw = reference_size(protocol, 240, 320, short)
    frames = F.interpolate(clip.float().permute(1, 0, 2, 3), size=(rh, rw), mode="bilinear", antialias=False,
                           align_corners=False).permute(1, 0, 2, 3)
    expected = [frames[..., t:t + size, x:x + size] for t, x in reference_boxes(protocol, rh, rw, size, crops)]
    if crops == 10:
        expected += [e.flip(-1) for e in expected]
    assert (views.float() - torch.stack(expected)).abs().max() <= 1.0
    smooth = ZooViews(protocol, size, num_crops=crops, short_side=short, antialias=True)(clip, None)
    assert not torch.equal(smooth, views.squeeze(0) if crops == 1 else views)


def test_torchvision_views_equal_videoclassification_on_the_same_frames():
    """data.test_resize=[128,171], centre crop 112, no antialias: torchvision's preset, to a level."""
    from torchvision.transforms._presets import VideoClassification

    for h, w in SIZES:
        clip = torch.randint(0, 256, (3, 4, h, w), generator=torch.Generator().manual_seed(h + w), dtype=torch.uint8)
        ours = ZooViews("torchvision", 112, short_side=128, resize_to=[128, 171], antialias=False)(clip, None)
        preset = VideoClassification(crop_size=(112, 112), resize_size=(128, 171), mean=(0, 0, 0), std=(1, 1, 1))
        reference = preset(clip.permute(1, 0, 2, 3)) * 255                      # (C, T, 112, 112) in [0, 255]
        assert ours.shape == (3, 4, 112, 112)
        assert (ours.float() - reference).abs().max() <= 1.0 + 1e-4


def test_test_resize_replaces_the_short_side_in_the_action3d_views():
    """eval.protocol=action3d with data.test_resize: the boxes of a [40, 60] frame (aspect not kept),
    one resize per view, close to resizing the frame first."""
    from action3d.config import DataConfig
    from action3d.data.test_transforms import build_test_transform
    from action3d.data.transforms import resize

    y = torch.linspace(0, 200, 80)[:, None]
    clip = (y + torch.linspace(0, 50, 90)[None, :]).round().to(torch.uint8).expand(3, 2, 80, 90).contiguous()
    views = build_test_transform(DataConfig(test_resize=[40, 60], short_side=40, crop_size=32), 1)(clip, None)
    first = resize(clip, (40, 60))[..., 4:36, 14:46]                    # centre box of the resized frame
    plain = build_test_transform(DataConfig(short_side=40, crop_size=32), 1)(clip, None)
    assert views.shape == (3, 2, 32, 32)
    assert (views.float() - first.float()).abs().mean() < 2 < (plain.float() - first.float()).abs().mean()


def test_a_protocol_refuses_a_crop_count_its_code_lacks():
    from action3d.errors import Action3dError

    with pytest.raises(Action3dError, match="eval.num_crops=3 is not allowed with eval.protocol=torchvision"):
        ZooViews("torchvision", 112, num_crops=3, short_side=128)
