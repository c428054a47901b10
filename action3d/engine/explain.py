"""Grad-CAM of a class over every frame of a video (captum's `LayerGradCam`, which handles 3D layers).

The video is cut into consecutive clips of `clip_len x frame_interval` frames; each clip (whole
frames resized to `data.short_side`, not cropped, so that the map covers the whole picture) goes
through the model and Grad-CAM weighs the target layer's feature maps by the class score's mean
gradient. The map `(t, h, w)` is resized to the clip's frames and normalised to [0, 1] per clip.

Target layer, per backbone: the output of the deepest stage whose grid is at least `MIN_GRID`
cells on its short side at this input size (the 7x7 of ResNet-50 at 224 px, Grad-CAM's usual
choice), else the first stage; for SlowFast that stage of both pathways, their maps averaged.
Deeper layers see more context but give coarser maps: the `tiny` model ends in a 2x2 grid at
64 px, so there its second stage (8x8) is chosen.

    target, prob = choose_target(trained, "a.mp4", class_name=None, data_cfg=trained.config.data)
    result = explain_video(trained, "a.mp4", "a_gradcam.mp4", target=target)
    print(result.layers, result.grid)                   # ['backbone.layer2'] (8, 8) for tiny at 64 px
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from action3d.config import DataConfig
from action3d.data.decode import VideoReader
from action3d.data.sampling import clip_indices
from action3d.data.transforms import normalize, resize_short_side
from action3d.data.video_writer import VideoEncoder
from action3d.engine.precision import autocast
from action3d.engine.predict import predict
from action3d.engine.windows import PROGRESS_MIN_STEPS, open_reader
from action3d.errors import Action3dError
from action3d.files import fsync_dir

MIN_GRID = 7
HEAT_ALPHA = 0.45  # opacity of the colour map over the frame

Layer = tuple[str, nn.Module]


@dataclass
class ExplainResult:
    out: Path
    target: int
    class_name: str
    layers: list[str]
    grid: tuple[int, int]     # the chosen layer's (h, w) for a clip of this video
    frames: int


# ------------------------------------------------------------------ target class and layer

def choose_target(trained, video: str, *, class_name: str | None, data_cfg: DataConfig, num_clips: int = 1,
                  num_crops: int = 1, average: str = "prob", precision: str = "32") -> tuple[int, float]:
    """(class index, its probability for the video): `class_name`, or the video's top class as
    `predict` scores it. An unknown name raises `Action3dError` naming `class_name`."""
    if class_name is not None and class_name not in trained.classes:
        shown = ", ".join(trained.classes[:20]) + (", ..." if len(trained.classes) > 20 else "")
        raise Action3dError(f"class_name={class_name}: not a class of ckpt={trained.path} (classes: {shown})")
    [result] = predict(trained, [video], data_cfg=data_cfg, topk=1, num_clips=num_clips, num_crops=num_crops,
                       average=average, precision=precision)
    if "error" in result:
        raise Action3dError(result["error"])
    index = trained.classes.index(class_name) if class_name is not None else result["top"][0]["index"]
    return index, float(result["scores"][index])


def stage_layers(model: nn.Module) -> list[list[Layer]]:
    """Per stage, the modules whose output Grad-CAM may use: one per stage, two for SlowFast."""
    backbone = model.backbone
    if hasattr(backbone, "slow_path"):
        return [[(f"backbone.slow_path.{name}", getattr(backbone.slow_path, name)),
                 (f"backbone.fast_path.{name}", getattr(backbone.fast_path, name))]
                for name in backbone.slow_path.res_layers]
    return [[(f"backbone.{name}", getattr(backbone, name))] for name in backbone.res_layers]


@torch.no_grad()
def pick_layers(model: nn.Module, x: torch.Tensor, *, min_grid: int = MIN_GRID) -> tuple[list[Layer], tuple[int, int]]:
    """The deepest stage whose output grid on `x` has at least `min_grid` cells on its short side (else
    the first stage), and that grid (h, w). One forward pass with hooks that record the output shapes."""
    stages = stage_layers(model)
    grids: list[tuple[int, int]] = []
    hooks = [layers[0][1].register_forward_hook(lambda _m, _i, out: grids.append(tuple(out.shape[-2:])))
             for layers in stages]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    chosen = max([i for i, grid in enumerate(grids) if min(grid) >= min_grid], default=0)
    return stages[chosen], grids[chosen]


# ------------------------------------------------------------------ Grad-CAM

def grad_cam(model: nn.Module, layers: Sequence[Layer], x: torch.Tensor, *, target: int, size: tuple[int, int, int],
             precision: str = "32") -> torch.Tensor:
    """Heat map (T, H, W) in [0, 1] of class `target` for one normalised clip `x` (1, C, T', H', W'),
    resized to `size` = (T, H, W); the mean of the layers' maps, each normalised to its maximum."""
    try:
        from captum.attr import LayerGradCam
    except ImportError:
        raise Action3dError("explain needs captum: pip install 'action3d[deploy]'") from None
    maps = []
    for _, layer in layers:
        with autocast(precision, x.device):
            cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)   # (1, 1, t, h, w)
        cam = F.interpolate(cam.detach().float(), size=size, mode="trilinear", align_corners=False)[0, 0]
        peak = cam.max()
        maps.append(cam / peak if peak > 0 else cam)
    return torch.stack(maps).mean(dim=0).clamp_(0, 1)


def video_layers(trained, reader: VideoReader, data_cfg: DataConfig) -> tuple[list[Layer], tuple[int, int]]:
    """`pick_layers` for this video's frame size (a clip of its first frame, repeated)."""
    clip = resize_short_side(reader.read([0]), data_cfg.short_side)               # (C, 1, h, w)
    clip = clip.expand(-1, data_cfg.clip_len, -1, -1).unsqueeze(0)                 # (1, C, T, h, w)
    device = next(trained.model.parameters()).device
    return pick_layers(trained.model, normalize(clip.to(device), data_cfg.mean, data_cfg.std))


def explain_clips(trained, reader: VideoReader, *, target: int, layers: Sequence[Layer],
                  data_cfg: DataConfig | None = None, precision: str = "32", progress: bool = True
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frames (n, H, W, 3) uint8, heat (n, H, W) float32 in [0, 1]) for consecutive stretches of the
    video, every frame once, in order. One clip's frames are decoded at a time."""
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    device = next(trained.model.parameters()).device
    span, total = data_cfg.clip_len * data_cfg.frame_interval, reader.num_frames
    starts = range(0, total, span)
    for start in tqdm(starts, desc=Path(reader.path).name, unit="clip", leave=False,
                      disable=not progress or len(starts) < PROGRESS_MIN_STEPS):
        base = min(start, max(0, total - span))            # the last clip ends with the video
        stop = min(base + span, total)
        frames = reader.read(np.arange(base, stop))                               # (C, n, H, W)
        picks = clip_indices(np.array([base]), num_frames=total, clip_len=data_cfg.clip_len,
                             frame_interval=data_cfg.frame_interval, out_of_bound=data_cfg.out_of_bound)[0]
        clip = resize_short_side(frames[:, picks - base], data_cfg.short_side).unsqueeze(0)   # (1, C, T, h, w)
        x = normalize(clip.to(device), data_cfg.mean, data_cfg.std)
        heat = grad_cam(trained.model, layers, x, target=target, size=(span, *frames.shape[-2:]), precision=precision)
        keep = slice(start - base, stop - base)
        yield frames[:, keep].permute(1, 2, 3, 0).numpy(), heat[keep].cpu().numpy().astype(np.float32)


def overlay(frames: np.ndarray, heat: np.ndarray, *, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """Frames (n, H, W, 3) uint8 blended with the heat (n, H, W) in [0, 1] in jet colours (blue: 0, red: 1)."""
    import matplotlib

    colors = matplotlib.colormaps["jet"](heat)[..., :3] * 255.0                  # (n, H, W, 3)
    return np.clip(frames * (1 - alpha) + colors * alpha, 0, 255).round().astype(np.uint8)


# ------------------------------------------------------------------ the whole video

def explain_video(trained, video: str, out: str | Path, *, target: int, data_cfg: DataConfig | None = None,
                  precision: str = "32", progress: bool = True) -> ExplainResult:
    """Write `out` (H.264 MP4, the video's size and frame rate; even sizes: one edge pixel may be cut)
    with the Grad-CAM heat map of class `target` over every frame."""
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The file appears under its name only once complete (the encoder writes a path, not a stream).
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix or '.mp4'}")
    count, encoder = 0, None
    try:
        with open_reader(video, data_cfg, resize=False) as reader:              # frames at their own size
            layers, grid = video_layers(trained, reader, data_cfg)
            for frames, heat in explain_clips(trained, reader, target=target, layers=layers, data_cfg=data_cfg,
                                              precision=precision, progress=progress):
                height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2    # yuv420p: even sizes
                if encoder is None:
                    encoder = VideoEncoder(tmp, width=width, height=height, fps=reader.fps, container_format="mp4")
                for frame in overlay(frames[:, :height, :width], heat[:, :height, :width]):
                    encoder.write(frame)
                    count += 1
        encoder.close()
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        if encoder is not None:
            encoder.close()
        tmp.unlink(missing_ok=True)
        raise
    return ExplainResult(out=out, target=target, class_name=trained.classes[target],
                         layers=[name for name, _ in layers], grid=grid, frames=count)
