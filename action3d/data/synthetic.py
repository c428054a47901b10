"""The built-in synthetic dataset: a few shapes that move the same way, the class is their motion.

Classes are motions (move right/left/down/up, rotate clockwise/counter-clockwise, grow, shrink,
then diagonal moves), so no single frame tells the class: a model has to compare frames. The
nuisance is real: a random textured background with static distractor shapes of the same kinds,
random shape, colour, size, speed and start position, sensor noise, and H.264 compression.

The multi-label set (data.multi_label=true, `make_synthetic(..., multi_label=True)`) overlays
motions: each video has a first class (as many videos per class as the single-label set) and,
in 3 of 4 videos (`PAIR_SHARE`), a second class drawn from the others; 1-2 shapes move each
class's way in the same clip, so the labels are the one or two classes whose motion is shown.
Its lists hold `path label [label]` lines, its videos are `train/FIRST/FIRST+SECOND_NNNN.mp4`, and
it lives in a cache folder of its own (`synthetic_folder_name`).

`make_synthetic(out_dir, cfg)` writes `train/CLASS/*.mp4`, `val/CLASS/*.mp4`, `train.txt`,
`val.txt` (list files) and `classes.txt`. `ensure_synthetic(data_cfg)` generates the set on first
use into a cache folder (`$ACTION3D_CACHE` or `~/.cache/action3d`) and fills in data.root,
data.train_list and data.val_list. Everything is a function of `cfg.seed`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from action3d.config.option import check_fields
from action3d.data.annotation_io import write_classes_file, write_list_file
from action3d.errors import Action3dError
from action3d.files import exclusive_lock

log = logging.getLogger("action3d.data")

GENERATOR_VERSION = 2  # bump when the frames change, so cached sets are regenerated
MULTI_LABEL_VERSION = 1  # bump when the multi-label set's frames or labels change
PAIR_SHARE = 0.75  # multi-label set: the share of videos that show a second class's motion too
CLASSES = ("move_right", "move_left", "move_down", "move_up", "rotate_cw", "rotate_ccw", "grow",
           "shrink", "move_down_right", "move_up_left", "move_up_right", "move_down_left")
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1), "down_right": (1, 1),
              "up_left": (-1, -1), "up_right": (1, -1), "down_left": (-1, 1)}
SHAPES = ("bar", "triangle", "ell", "ellipse")
SUPERSAMPLE = 2  # shapes are drawn at 2x and averaged: soft, anti-aliased edges
FPS = 25

# The data.synthetic section (action3d.config.SyntheticConfig). Not imported: the config check reads the
# dataset formats, and the synthetic format generates its set with this module.
Settings = Any


# --------------------------------------------------------------------------- drawing

def shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in object coordinates (u, v in [-1, 1]); none of the shapes looks the same
    after a quarter turn, so rotation is visible."""
    if kind == "bar":
        return (np.abs(u) < 1) & (np.abs(v) < 0.35)
    if kind == "triangle":  # corners (0, -1), (-0.87, 0.5), (0.87, 0.5)
        return (v < 0.5) & (v > 1.732 * np.abs(u) - 1)
    if kind == "ell":
        return ((np.abs(u) < 1) & (v > 0.4) & (v < 1)) | ((u > -1) & (u < -0.4) & (np.abs(v) < 1))
    return u ** 2 + (v / 0.45) ** 2 < 1  # ellipse


def shape_coverage(kind: str, height: int, width: int, *, center: Tuple[float, float], radius: float,
                   angle: float) -> Optional[Tuple[slice, slice, np.ndarray, np.ndarray]]:
    """Where a shape lies on a (height, width) frame: (rows, cols, coverage, dark) with coverage
    and dark (h, w, 1) in [0, 1] over the box `[rows, cols]` (dark: the share of the second tone,
    see `draw_shape`), or None when the shape is entirely outside the frame."""
    x0, y0 = center
    reach = radius * 1.5  # bounding square of the shape at any angle
    top, bottom = max(0, int(y0 - reach)), min(height, int(math.ceil(y0 + reach)) + 1)
    left, right = max(0, int(x0 - reach)), min(width, int(math.ceil(x0 + reach)) + 1)
    if top >= bottom or left >= right:
        return None
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    ys = (np.arange(top, bottom)[:, None] + sub[None, :]).reshape(-1) - y0   # (h*s,)
    xs = (np.arange(left, right)[:, None] + sub[None, :]).reshape(-1) - x0   # (w*s,)
    dy, dx = np.meshgrid(ys, xs, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    u = (cos * dx + sin * dy) / radius  # rotate the pixel grid back by `angle`
    v = (-sin * dx + cos * dy) / radius
    inside = shape_mask(kind, u, v).astype(np.float32)
    stripe = (np.floor((u + 1) * 2.5) % 2).astype(np.float32) * inside   # the darker tone
    shape = (bottom - top, SUPERSAMPLE, right - left, SUPERSAMPLE)
    coverage = inside.reshape(shape).mean(axis=(1, 3))[..., None]
    dark = stripe.reshape(shape).mean(axis=(1, 3))[..., None]
    return slice(top, bottom), slice(left, right), coverage, dark


def draw_shape(canvas: np.ndarray, kind: str, *, center: Tuple[float, float], radius: float,
               angle: float, color: np.ndarray) -> None:
    """Paint a shape (centre in pixels, radius in pixels, angle in radians, clockwise on screen)
    onto `canvas` (H, W, 3) float, in place. Stripes across the shape (a darker second tone) turn
    and move with it, so the inside of the shape shows motion too, not only its outline."""
    height, width, _ = canvas.shape
    found = shape_coverage(kind, height, width, center=center, radius=radius, angle=angle)
    if found is None:
        return  # entirely outside the frame
    rows, cols, coverage, dark = found
    patch = canvas[rows, cols]
    patch += coverage * (color - patch) - dark * 0.45 * color


def paint_mask(mask: np.ndarray, kind: str, *, center: Tuple[float, float], radius: float, angle: float) -> None:
    """Mark the pixels of `mask` (H, W) bool that a shape covers at least half of, in place."""
    found = shape_coverage(kind, *mask.shape, center=center, radius=radius, angle=angle)
    if found is not None:
        rows, cols, coverage, _ = found
        mask[rows, cols] |= coverage[..., 0] >= 0.5


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float: a smooth random colour field plus fine static grain."""
    cells = int(rng.integers(3, 7))
    coarse = rng.uniform(0, 255, size=(cells, cells, 3))
    base = rng.uniform(40, 215, size=3)
    grid = np.linspace(0, cells - 1, size)
    lo = np.floor(grid).astype(int)
    hi = np.minimum(lo + 1, cells - 1)
    w = (grid - lo)[:, None]
    rows = coarse[lo] * (1 - w[..., None]) + coarse[hi] * w[..., None]             # (size, cells, 3)
    field = rows[:, lo] * (1 - w.T[..., None]) + rows[:, hi] * w.T[..., None]      # (size, size, 3)
    grain = rng.normal(0, 6, size=(size, size, 1))
    return np.clip(0.65 * base + 0.35 * field + grain, 0, 255)


def contrasting_color(rng: np.random.Generator, background: np.ndarray, distance: float = 220) -> np.ndarray:
    """A random colour at least `distance` (sum over RGB) away from the background's mean colour."""
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(100):
        color = rng.uniform(0, 255, size=3)
        if np.abs(color - mean).sum() > distance:
            return color
    return np.where(mean > 127, 0.0, 255.0)


# --------------------------------------------------------------------------- one video

def motion_path(name: str, rng: np.random.Generator, *, num_frames: int, size: int
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame centre (T, 2), radius (T,) and angle (T,) of one moving shape of class `name`."""
    t = np.arange(num_frames, dtype=np.float64)
    scale = size / 64  # speeds and sizes are tuned for 64-px frames
    radius = np.full(num_frames, rng.uniform(8, 12) * scale)
    angle = np.full(num_frames, rng.uniform(0, 2 * math.pi))
    drift = rng.uniform(-0.3, 0.3, size=2) * scale  # slow wander of the non-moving classes
    if name.startswith("move_"):
        direction = np.array(DIRECTIONS[name[len("move_"):]], dtype=np.float64)
        direction /= np.linalg.norm(direction)
        speed = rng.uniform(1.5, 2.5) * scale
        travel = direction * speed * (num_frames - 1)
        # start anywhere that keeps the centre inside the frame for the whole path
        low = np.maximum(0.1 * size, 0.1 * size - travel)
        high = np.minimum(0.9 * size, 0.9 * size - travel)
        start = rng.uniform(low, np.maximum(low, high))
        return start + t[:, None] * direction * speed, radius, angle
    start = rng.uniform(0.15 * size, 0.85 * size, size=2)
    center = start + t[:, None] * drift
    if name.startswith("rotate_"):
        spin = math.radians(rng.uniform(8, 14)) * (1 if name == "rotate_cw" else -1)
        return center, radius, angle + spin * t
    ratio = rng.uniform(2.0, 2.6)  # grow / shrink: the radius changes by this factor overall
    small = rng.uniform(5.0, 7.0) * scale
    growth = small * ratio ** (t / max(num_frames - 1, 1))
    return center, growth if name == "grow" else growth[::-1].copy(), angle


def render_video(name: str, rng: np.random.Generator, *, num_frames: int, size: int, with_masks: bool = False
                 ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """uint8 (T, size, size, 3) RGB frames of one video of class `name`: 2 to 4 shapes that all
    move the class's way (each with its own shape, colour, size, speed and start), over a
    textured background with static distractor shapes.

    with_masks: also return where the shapes are, `(frames, movers, distractors)`, both masks
    (T, size, size) bool (pixels a shape covers at least half of; a distractor hidden behind a
    mover is not marked). The frames are the same either way: the masks draw no random numbers.
    """
    return render_motions([name], rng, num_frames=num_frames, size=size, movers_per_class=(2, 4),
                          with_masks=with_masks)


def render_motions(names: Sequence[str], rng: np.random.Generator, *, num_frames: int, size: int,
                   movers_per_class: Tuple[int, int] = (1, 2), with_masks: bool = False
                   ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`render_video` with the motions of several classes overlaid: for each class of `names`,
    `movers_per_class` (low, high: inclusive) shapes moving its way, drawn in a random order over
    the same background and distractors (the multi-label set). One name and (2, 4) draw exactly
    the random numbers `render_video` always drew."""
    background = textured_background(rng, size)
    distractors = []
    for _ in range(int(rng.integers(0, 3))):  # static distractors: only motion tells the movers apart
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        center = tuple(rng.uniform(0, size, size=2))
        radius = rng.uniform(4, 8) * size / 64
        angle = rng.uniform(0, 2 * math.pi)
        draw_shape(background, kind, center=center, radius=radius, angle=angle,
                   color=contrasting_color(rng, background, 120))
        distractors.append(dict(kind=kind, center=center, radius=radius, angle=angle))
    movers = []
    low, high = movers_per_class
    for name in names:
        for _ in range(int(rng.integers(low, high + 1))):
            kind = SHAPES[int(rng.integers(len(SHAPES)))]
            color = contrasting_color(rng, background)  # before the path: the order of the random draws is fixed
            movers.append((kind, color, *motion_path(name, rng, num_frames=num_frames, size=size)))
    if len(names) > 1:  # no class always on top
        movers = [movers[int(i)] for i in rng.permutation(len(movers))]
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for i in range(num_frames):
        canvas = background.copy()
        for kind, color, centers, radii, angles in movers:
            draw_shape(canvas, kind, center=tuple(centers[i]), radius=float(radii[i]),
                       angle=float(angles[i]), color=color)
        canvas += rng.normal(0, 3, size=canvas.shape)  # sensor noise, different in every frame
        frames[i] = np.clip(canvas, 0, 255).round().astype(np.uint8)
    if not with_masks:
        return frames
    return frames, *_masks(movers, distractors, num_frames=num_frames, size=size)


def _masks(movers: List[tuple], distractors: List[dict], *, num_frames: int, size: int
           ) -> Tuple[np.ndarray, np.ndarray]:
    """(movers, distractors) masks (T, size, size) bool of `render_video`'s shapes."""
    still = np.zeros((size, size), dtype=bool)
    for shape in distractors:
        paint_mask(still, shape["kind"], center=shape["center"], radius=shape["radius"], angle=shape["angle"])
    moving = np.zeros((num_frames, size, size), dtype=bool)
    for i in range(num_frames):
        for kind, _, centers, radii, angles in movers:
            paint_mask(moving[i], kind, center=tuple(centers[i]), radius=float(radii[i]), angle=float(angles[i]))
    return moving, still[None] & ~moving


# --------------------------------------------------------------------------- the dataset

def write_mp4(path: Path, frames: np.ndarray) -> None:
    """H.264 with one encoder thread (x264's multi-threaded output differs from run to run; tiny
    videos gain nothing from more). The rendered frames are exactly reproducible for a seed, but the
    encoded files are not always: between two generations in one process 0 to 10 of 64 files differed
    (measured on the 2-core AMD EPYC), so decoded pixels can differ by a few levels between caches.
    Tests that assert a learned effect carry margins wide enough for that."""
    from action3d.data.video_writer import VideoEncoder

    _, height, width, _ = frames.shape
    with VideoEncoder(path, width=width, height=height, fps=FPS, threads=1) as encoder:
        for frame in frames:
            encoder.write(frame)


def write_sequence(path: str | Path, names: Sequence[str], *, clips_per_class: int, num_frames: int = 16,
                   size: int = 64, seed: int = 0) -> List[Tuple[str, float, float]]:
    """A longer video for timelines: for each class in `names` in turn, `clips_per_class` synthetic
    videos of it back to back (new shapes at each cut). Returns the truth, (class, start s, end s)."""
    from action3d.data.video_writer import VideoEncoder

    truth, start = [], 0.0
    with VideoEncoder(path, width=size, height=size, fps=FPS, threads=1) as encoder:
        for label, name in enumerate(names):
            for number in range(clips_per_class):
                rng = np.random.default_rng([seed, 2, label, number])   # stream 2: neither train (0) nor val (1)
                for frame in render_video(name, rng, num_frames=num_frames, size=size):
                    encoder.write(frame)
            end = round(start + clips_per_class * num_frames / FPS, 6)
            truth.append((name, start, end))
            start = end
    return truth


def _video_plan(cfg: Settings) -> Iterator[Tuple[str, str, int, int]]:
    """(split, class name, label, number) of every video to make."""
    for split, count in (("train", cfg.train_per_class), ("val", cfg.val_per_class)):
        for label, name in enumerate(CLASSES[:cfg.num_classes]):
            for number in range(count):
                yield split, name, label, number


def multi_label_classes(first: int, rng: np.random.Generator, num_classes: int) -> Tuple[int, ...]:
    """The classes of one video of the multi-label set: `first`, and in `PAIR_SHARE` of the videos
    a second class drawn uniformly from the others (sorted)."""
    if rng.random() >= PAIR_SHARE:
        return (first,)
    second = int(rng.integers(num_classes - 1))
    return tuple(sorted((first, second + (second >= first))))


def make_synthetic(out_dir: str | Path, cfg: Settings, *, progress: bool = True, multi_label: bool = False) -> Path:
    """Write the synthetic dataset into `out_dir`; returns `out_dir` (train.txt, val.txt, classes.txt).
    multi_label: the multi-label set (see the module docstring), `path label [label]` lists."""
    check_fields(type(cfg), cfg, prefix="data.synthetic.")
    out_dir = Path(out_dir)
    lists: Dict[str, List[Tuple[str, Union[int, Tuple[int, ...]]]]] = {"train": [], "val": []}
    plan = list(_video_plan(cfg))
    for split, name, label, number in tqdm(plan, desc="synthetic videos", disable=not progress,
                                           unit="video", leave=False):
        # one generator per video, keyed by its place in the set: any subset is reproducible
        if multi_label:  # streams 3 and 4: neither the single-label set's (0, 1) nor write_sequence's (2)
            rng = np.random.default_rng([cfg.seed, 3 if split == "train" else 4, label, number])
            labels = multi_label_classes(label, rng, cfg.num_classes)
            names = [name] + [CLASSES[k] for k in labels if k != label]   # its first class first
            path = out_dir / split / name / f"{'+'.join(names)}_{number:04d}.mp4"
            frames = render_motions(names, rng, num_frames=cfg.num_frames, size=cfg.size)
        else:
            rng = np.random.default_rng([cfg.seed, 0 if split == "train" else 1, label, number])
            labels, path = label, out_dir / split / name / f"{name}_{number:04d}.mp4"
            frames = render_video(name, rng, num_frames=cfg.num_frames, size=cfg.size)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(path, frames)
        lists[split].append((str(path), labels))
    write_list_file(out_dir / "train.txt", lists["train"], out_dir)
    write_list_file(out_dir / "val.txt", lists["val"], out_dir)
    settings = {"generator_version": GENERATOR_VERSION, **dataclasses.asdict(cfg)}
    if multi_label:
        settings.update(multi_label=True, multi_label_version=MULTI_LABEL_VERSION, pair_share=PAIR_SHARE)
    (out_dir / "synthetic.json").write_text(json.dumps(settings, indent=1) + "\n")
    write_classes_file(out_dir / "classes.txt", CLASSES[:cfg.num_classes])  # last: marks it complete
    return out_dir


def cache_dir() -> Path:
    return Path(os.environ.get("ACTION3D_CACHE") or Path.home() / ".cache" / "action3d")


def synthetic_folder_name(cfg: Settings, *, multi_label: bool = False) -> str:
    """The cache folder of a set: the single-label and the multi-label set never share one."""
    kind = f"synthetic-multilabel{MULTI_LABEL_VERSION}" if multi_label else "synthetic"
    return (f"{kind}-v{GENERATOR_VERSION}-c{cfg.num_classes}-n{cfg.train_per_class}x{cfg.val_per_class}"
            f"-f{cfg.num_frames}-s{cfg.size}-seed{cfg.seed}")


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("train.txt", "val.txt", "classes.txt"))


def _generate_once(folder: Path, cfg: Settings, progress: bool, multi_label: bool = False) -> None:
    """Make the set in `folder` unless it is there; safe when several processes call it at once
    (a lock makes the others wait, and the set is written to a temporary folder then renamed)."""
    if is_complete(folder):
        _check_kind(folder, multi_label)
        return
    with exclusive_lock(folder.with_name(folder.name + ".lock")):
        if is_complete(folder):  # another process made it while we waited
            _check_kind(folder, multi_label)
            return
        if folder.exists() and any(folder.iterdir()):
            raise Action3dError(f"data.root={folder}: folder exists but holds no complete synthetic set "
                                "(train.txt, val.txt, classes.txt); remove it or choose another folder")
        log.info("generating the synthetic dataset in %s (first use)", folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp", dir=folder.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is readable like any folder
        try:
            make_synthetic(tmp, cfg, progress=progress, multi_label=multi_label)
            if folder.exists():
                folder.rmdir()  # empty (checked above)
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _check_kind(folder: Path, multi_label: bool) -> None:
    """A complete set in `folder` is of the kind asked for (data.root may name either)."""
    try:
        made = bool(json.loads((folder / "synthetic.json").read_text()).get("multi_label", False))
    except (OSError, ValueError, AttributeError):
        return  # made by hand or by an older version: its lists tell
    if made != multi_label:
        kinds = {True: "the multi-label synthetic set", False: "the single-label synthetic set"}
        raise Action3dError(f"data.root={folder} holds {kinds[made]} but data.multi_label="
                            f"{str(multi_label).lower()} asks for {kinds[multi_label][4:]}; choose another data.root")


def ensure_synthetic(data_cfg, *, progress: bool = True):
    """Return a copy of `data_cfg` with root/train_list/val_list/classes_file of the synthetic set
    (the multi-label set under data.multi_label), generating it on first use (into data.root if
    set, else the cache folder)."""
    cfg = data_cfg.synthetic
    check_fields(type(cfg), cfg, prefix="data.synthetic.")
    multi_label = data_cfg.multi_label
    folder = (Path(data_cfg.root) if data_cfg.root
              else cache_dir() / synthetic_folder_name(cfg, multi_label=multi_label))
    _generate_once(folder.absolute(), cfg, progress, multi_label)
    generated = {"root": str(folder), "train_list": str(folder / "train.txt"),
                 "val_list": str(folder / "val.txt"), "classes_file": str(folder / "classes.txt")}
    # Paths the user set (e.g. data.val_list=subset.txt for an evaluation) are kept.
    kept = {key: value for key, value in generated.items() if getattr(data_cfg, key) is None}
    return dataclasses.replace(data_cfg, **kept)
