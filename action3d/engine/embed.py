"""Pooled backbone features (the classifier's input) of videos, or of windows of a long video.

A video (or window) is sampled the way `eval` samples one: `num_clips` clips spread evenly x
`num_crops` crops; each view goes through the backbone and the head's global average pool (no
dropout, no classifier), and the views' features are averaged. Sampling is deterministic and the
model is in eval mode, so the same video gives the same features every time.

    trained = load_trained("best.pt", torch.device("cpu"))   # action3d.commands._checkpoint
    features, spans = embed_video(trained, "a.mp4", window=4.0)      # (W, D) float32, [(start, end)]
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from action3d.config import DataConfig
from action3d.engine.data import device_batch
from action3d.engine.precision import autocast
from action3d.engine.windows import PROGRESS_MIN_STEPS, open_reader, plan_windows, whole_video, window_views
from action3d.errors import Action3dError
from action3d.files import atomic_write

INDEX_COLUMNS = ("path", "start", "end", "file", "row")


def pooled_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Normalised clips `(N, C, T, H, W)` -> the head's pooled features `(N, D)` (SlowFast: both pathways)."""
    return model.cls_head.pool(model.backbone(x))


@torch.no_grad()
def embed_video(trained, video: str, *, data_cfg: DataConfig | None = None, window: float | None = None,
                stride: float | None = None, num_clips: int = 1, num_crops: int = 1, precision: str = "32",
                progress: bool = True) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """(features (W, D) float32, [(start, end) seconds]) of one video: one row for the whole
    video, or one per window with `window=`. Raises `Action3dError` naming the file when it cannot
    be decoded or is shorter than one window."""
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    device = next(trained.model.parameters()).device
    rows: list[torch.Tensor] = []
    with open_reader(video, data_cfg) as reader:
        windows = ([whole_video(reader.num_frames, reader.fps)] if window is None else
                   plan_windows(reader.num_frames, reader.fps, window=window, stride=stride, video=video))
        for win in tqdm(windows, desc=Path(video).name, unit="window", leave=False,
                        disable=not progress or len(windows) < PROGRESS_MIN_STEPS):
            views = window_views(reader, win, data_cfg, num_clips=num_clips, num_crops=num_crops)  # (V, C, T, H, W)
            x, _ = device_batch((views, torch.zeros(1)), data_cfg, device, channels_last=False)
            with autocast(precision, device):
                rows.append(pooled_features(trained.model, x).float().mean(dim=0).cpu())        # (D,)
    return torch.stack(rows).numpy().astype(np.float32), [(w.start, w.end) for w in windows]


@dataclass
class EmbedSummary:
    index: Path
    videos: int
    rows: int
    dim: int
    errors: list[str]


def embed_videos(trained, videos: Sequence[Path], out_dir: str | Path, *, root: Path | None = None,
                 **options) -> EmbedSummary:
    """Embed each video into `out_dir/<path relative to root>.npy` ((W, D) float32) and list every
    row in `out_dir/index.csv` (path, start, end, file, row). A video that cannot be read is
    skipped and named in `errors`; the others are still embedded."""
    out_dir = Path(out_dir)
    index: list[tuple] = []
    errors: list[str] = []
    dim = 0
    progress = options.pop("progress", True)
    many = progress and len(videos) >= PROGRESS_MIN_STEPS       # a bar over videos, else one over each video's windows
    for video, npy in tqdm(list(_outputs(videos, out_dir, root)), desc="embed", unit="video", leave=False,
                           disable=not many):
        try:
            features, spans = embed_video(trained, str(video), progress=progress and not many, **options)
        except Action3dError as err:
            errors.append(str(err))
            continue
        atomic_write(npy, lambda f, features=features: np.save(f, features))
        dim = features.shape[1]
        relative = npy.relative_to(out_dir).as_posix()
        index += [(str(video), f"{start:.3f}", f"{end:.3f}", relative, row) for row, (start, end) in enumerate(spans)]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows(index)
    path = atomic_write(out_dir / "index.csv", table.getvalue())
    return EmbedSummary(index=path, videos=len({row[0] for row in index}), rows=len(index), dim=dim, errors=errors)


def _outputs(videos: Sequence[Path], out_dir: Path, root: Path | None) -> Iterator[tuple[Path, Path]]:
    """(video, its .npy file): the video's path below `root` (or its name), `.npy` appended, under out_dir."""
    for video in videos:
        relative = Path(video).relative_to(root) if root is not None else Path(Path(video).name)
        yield Path(video), out_dir / relative.with_name(relative.name + ".npy")
