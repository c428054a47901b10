"""`VideoDataset`: (video path, label) samples -> `(clip uint8, label, index)`.

The label an item carries is the sample's class index (an int, -1 unknown), or under
`multi_label` (data.multi_label) a float32 multi-hot vector (K,) of the sample's class indices.

Training: one random clip per item (or `num_clips` random clips, one per segment), a random crop and
flip. Testing: `num_clips` clips spread evenly x `num_crops` crops; one view gives `(C,T,H,W)`,
several give `(V,C,T,H,W)` with V = num_clips * num_crops (clip-major).

Bad input never stops a run: a file that cannot be decoded is, in training (`on_error="replace"`),
replaced by another sample drawn with the worker's seeded generator, and in evaluation
(`on_error="mark"`) returned as a zero clip with label -1 (a row of -1.0 under multi-label).
Either way the failure is appended to a small file (`action3d.data.load_failures.FailureLog`)
that every process (data-loader workers included) can write and that the main process reads
back with `drain_failures()`, which also logs each bad file once (logger "action3d.data"). If
more than `max_fail_ratio` of the first 50 files a process tries fail (or, in training, 20 in a
row), it raises `DatasetBrokenError` naming the dataset root and a few failing files.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from action3d.data.formats.rawframes import DEFAULT_FILENAME_TMPL, DEFAULT_START_INDEX
from action3d.data.index import as_sample_index
from action3d.data.load_failures import DatasetBrokenError, FailureLog
from action3d.data.sampling import VARIABLE_VIEWS, NoFullWindow, at_frame_rate, protocol_clip_indices, sample_frames
from action3d.errors import Action3dError

if TYPE_CHECKING:  # the frame-folder reader imports torchvision: only where folders are read
    from action3d.data.frames import FrameCounts

log = logging.getLogger("action3d.data")

FAIL_WINDOW = 50  # the share of failures is judged on the first files tried
EXCLUDED = "excluded: "  # a failure record's reason starts with it: the protocol scores no view of the video
MAX_ATTEMPTS = 20  # per item in training: the item itself and up to 19 replacements


class VideoDataset(Dataset):
    """Map-style dataset of videos; works with any sampler, `DistributedSampler` included.

    samples: `(path, label)` pairs (label -1: unknown, for prediction; a tuple of class indices
    under `multi_label`). transform: a callable `(clip, rng) -> clip` from
    `action3d.data.transforms`. train: random sampling (else evenly spread clips). on_error:
    "replace" (default in training) or "mark" (default in evaluation). multi_label: items carry
    float32 multi-hot vectors of `num_classes` (default: len(classes), else one more than the
    largest label) instead of class indices; an unknown label (-1) gives a row of -1.0.
    """

    def __init__(self, samples: Sequence[Tuple[str, int]], *, transform: Callable, train: bool,
                 clip_len: int = 8, frame_interval: int = 2, num_clips: int = 1, num_crops: int = 1,
                 crop_size: int = 64, out_of_bound: str = "loop", decode_short_side: Optional[int] = None,
                 decode_threads: int = 1, on_error: Optional[str] = None, max_fail_ratio: float = 0.5,
                 root: Optional[str] = None, classes: Optional[Sequence[str]] = None, seed: int = 0,
                 autorotate: bool = True, target_fps: Optional[float] = None, protocol: str = "action3d",
                 multi_label: bool = False, num_classes: Optional[int] = None):
        if not samples:
            raise Action3dError(f"no videos to load (dataset root {root})")
        on_error = on_error or ("replace" if train else "mark")
        if on_error not in ("replace", "mark"):
            raise Action3dError(f"on_error={on_error} is not allowed: expected replace or mark")
        # Compact arrays, not a list of tuples: forked loader workers reading a Python list copy its
        # pages one by one (copy-on-read); reading numpy arrays keeps them shared (action3d.data.index).
        self.samples = as_sample_index(samples)
        self.classes = list(classes) if classes is not None else None
        self.multi_label = multi_label
        self.transform, self.train, self.on_error = transform, train, on_error
        self.clip_len, self.frame_interval, self.num_clips = clip_len, frame_interval, num_clips
        self.num_views = num_clips * (1 if train else num_crops)
        self.crop_size, self.out_of_bound = crop_size, out_of_bound
        self.decode_short_side, self.decode_threads = decode_short_side, decode_threads
        self.autorotate = autorotate  # frames upright as the video's display matrix says
        self.target_fps = target_fps  # frames resampled to this rate first (None: native)
        self.protocol = protocol      # test clips placed as this zoo's test code places them (eval.protocol)
        self.variable_views = not train and protocol in VARIABLE_VIEWS   # views per video vary (collate_views)
        self.max_fail_ratio = max_fail_ratio
        self.root = root or os.path.commonpath([os.path.dirname(p) for p, _ in self.samples])
        self.num_classes = self._count_classes(num_classes)   # of the multi-hot rows; None: single-label
        self.seed = seed
        self.failures = FailureLog()
        self._logged: set = set()  # main process: files already named in the log
        self._rng: Optional[np.random.Generator] = None
        self._rng_key = None
        self._known_bad: Dict[str, str] = {}  # per process: path -> reason, never decoded twice
        self._tried = 0  # distinct files tried in this process, up to FAIL_WINDOW
        self._window_failures: List[Tuple[str, str]] = []

    def _count_classes(self, num_classes: Optional[int]) -> Optional[int]:
        """K of the multi-hot rows (None for single-label items); labels the index holds must fit."""
        if self.samples.multi_label and not self.multi_label:
            raise Action3dError(f"dataset at {self.root}: the samples carry several labels per video; "
                                "set data.multi_label=true to train on them")
        if not self.multi_label:
            return None
        labels = self.samples.labels
        largest = int(labels.max()) if len(labels) else -1
        if num_classes is None:
            num_classes = len(self.classes) if self.classes is not None else largest + 1
        if largest >= num_classes:
            raise Action3dError(f"dataset at {self.root}: label {largest} is out of range for "
                                f"{num_classes} classes")
        return num_classes

    def target(self, label) -> int | torch.Tensor:
        """What an item carries for a sample's `label`: the label itself, or under multi-label its
        float32 multi-hot row (K,), a row of -1.0 for an unknown or unreadable video (-1)."""
        if not self.multi_label:
            return label
        if isinstance(label, (int, np.integer)):
            if label < 0:
                return torch.full((self.num_classes,), -1.0)
            label = (int(label),)
        row = torch.zeros(self.num_classes, dtype=torch.float32)
        row[list(label)] = 1.0
        return row

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def clip_shape(self) -> Tuple[int, ...]:
        single = (3, self.clip_len, self.crop_size, self.crop_size)
        return single if self.num_views == 1 else (self.num_views, *single)

    def set_seed(self, seed: int) -> None:
        """Seed of the main-process generator (used when the loader has no workers)."""
        self.seed = seed
        self._rng = None

    def __getitem__(self, key) -> Tuple[torch.Tensor, int | torch.Tensor, int]:
        """`key` is an index, or `(epoch, index)` from the trainer's sampler: then the sample's
        randomness comes from (seed, epoch, index) alone, whichever worker or process loads it,
        so a resumed or multi-process run draws exactly what a single uninterrupted one does.
        The label: the sample's (see `target`), or, for a replaced video, its replacement's."""
        if isinstance(key, (tuple, list)):
            epoch, index = int(key[0]), int(key[1])
            rng = np.random.default_rng((self.seed, epoch, index))
        else:
            index, rng = int(key), self._generator()
        current = index
        for _ in range(MAX_ATTEMPTS):
            path, label = self.samples[current]
            clip = self._try_load(path, rng)
            if clip is not None:
                return clip, self.target(label), index
            if self.on_error == "mark":
                return torch.zeros(self.clip_shape, dtype=torch.uint8), self.target(-1), index
            current = self._replacement(rng)
        raise DatasetBrokenError(
            f"dataset at {self.root}: {MAX_ATTEMPTS} files in a row failed to decode while loading "
            f"item {index}; e.g. {self._examples()}")

    # -- loading --------------------------------------------------------------------------------

    def _try_load(self, path: str, rng: np.random.Generator) -> Optional[torch.Tensor]:
        """The transformed clip, or None after recording why `path` could not be decoded."""
        reason = self._known_bad.get(path)
        if reason is None:
            try:
                frames = self._decode(path, rng)
            except NoFullWindow as err:  # not a failure: the protocol has no view of it (not counted)
                reason = self._known_bad[path] = f"{EXCLUDED}{err}"
                self.failures.record(path, reason)
                return None
            except Exception as err:  # any decoding failure is the file's fault, not the run's
                reason = _describe(err, path)
            else:
                self._count_try(failed=False)
                return self._finish(frames, rng)
            self._known_bad[path] = reason
            self._count_try(failed=True, path=path, reason=reason)
        self.failures.record(path, reason)
        return None

    def _source(self, path: str):
        """What the decoder opens for sample `path`: the file (`ShardDataset` gives the bytes from its shard)."""
        return path

    def _open_reader(self, path: str):
        """The reader `_decode` samples the clips of `path` from: a `VideoReader` of `_source(path)`
        (`FrameFolderDataset` opens frame folders instead). Any reader with
        `num_frames`, `fps`, `path`, `read(indices)` and `close` will do (see `at_frame_rate`)."""
        from action3d.data.decode import VideoReader

        return VideoReader(self._source(path), short_side=self.decode_short_side, threads=self.decode_threads,
                           autorotate=self.autorotate)

    def _decode(self, path: str, rng: np.random.Generator) -> torch.Tensor:
        """Frames of every sampled clip, `(num_clips, C, clip_len, H, W)` uint8, in one decode pass.

        Training draws each clip's start independently anywhere in the video (repeated sampling,
        as PySlowFast); testing spreads the clips evenly.
        """
        with self._open_reader(path) as video:
            reader = at_frame_rate(video, self.target_fps)
            if self.train:
                indices = np.concatenate([
                    sample_frames(reader.num_frames, clip_len=self.clip_len, frame_interval=self.frame_interval,
                                  num_clips=1, train=True, rng=rng, out_of_bound=self.out_of_bound)
                    for _ in range(self.num_clips)])                     # (K, L)
            else:
                indices = protocol_clip_indices(self.protocol, reader, clip_len=self.clip_len,
                                            frame_interval=self.frame_interval, num_clips=self.num_clips,
                                            out_of_bound=self.out_of_bound)
            frames = reader.read(indices.reshape(-1))  # (C, K*L, H, W)
        channels, _, height, width = frames.shape
        return frames.view(channels, len(indices), self.clip_len, height, width).transpose(0, 1)

    def _finish(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(C,T,H,W), or (V,C,T,H,W) for several clips/crops. In training each of the K clips gets
        its own crop and flip: K independent samples from one decode."""
        if self.variable_views:                                   # every window: (K, C,T,H,W) always
            clip = self.transform(frames, rng)
        elif self.num_clips == 1:
            clip = self.transform(frames[0], rng)                 # (C,T,H,W) | (crops,C,T,H,W)
        elif self.train:
            clip = torch.stack([self.transform(f, rng) for f in frames])   # (K, C, T, H, W)
        else:
            clip = self.transform(frames, rng)                    # (K,C,T,H,W) | (K,crops,C,T,H,W)
        if clip.dim() == 6:
            clip = clip.flatten(0, 1)                             # clip-major views
        return clip.contiguous()

    # -- failures -------------------------------------------------------------------------------

    def _count_try(self, *, failed: bool, path: str = "", reason: str = "") -> None:
        if self._tried >= FAIL_WINDOW:
            return
        self._tried += 1
        if failed:
            self._window_failures.append((path, reason))
        if len(self._window_failures) > self.max_fail_ratio * FAIL_WINDOW:
            raise DatasetBrokenError(
                f"dataset at {self.root} looks broken: {len(self._window_failures)} of the first "
                f"{self._tried} files tried failed to decode (more than {self.max_fail_ratio:.0%} of "
                f"{FAIL_WINDOW}), e.g. {self._examples()}; check data.root and the annotation list, "
                f"or run `action3d data check`")

    def _examples(self, count: int = 3) -> str:
        bad = self._window_failures or list(self._known_bad.items())
        return "; ".join(reason for _, reason in bad[:count])

    def _replacement(self, rng: np.random.Generator) -> int:
        """A random other sample, avoiding files this process already knows are bad."""
        for _ in range(100):
            candidate = int(rng.integers(len(self.samples)))
            if self.samples[candidate][0] not in self._known_bad:
                return candidate
        return int(rng.integers(len(self.samples)))

    def drain_failures(self, *, log_new: bool = True) -> List[Tuple[str, str]]:
        """Failures `(path, reason)` recorded by any process since the last call (one per failed
        load, so a file that failed in two epochs appears twice). Logs each file once, unless
        `log_new=False` (the trainer gathers every rank's failures and rank 0 names them)."""
        records = self.failures.drain()
        for path, reason in records if log_new else ():
            if path not in self._logged:
                self._logged.add(path)
                if reason.startswith(EXCLUDED):
                    log.warning("not scored: %s", reason[len(EXCLUDED):])
                else:
                    log.warning("skipping unreadable video %s", reason)
        return records

    # -- randomness -----------------------------------------------------------------------------

    def _generator(self) -> np.random.Generator:
        """This process's generator: in a loader worker it is seeded from torch's per-worker seed
        (so a seeded loader gives the same run), in the main process from `seed`."""
        info = get_worker_info()
        key = ("worker", info.seed) if info is not None else ("main", self.seed)
        if self._rng is None or key != self._rng_key:
            self._rng = np.random.default_rng(info.seed if info is not None else self.seed)
            self._rng_key = key
        return self._rng

    def __getstate__(self):  # spawn-started workers get a copy without the main-process log state
        state = self.__dict__.copy()
        state["_logged"] = set()
        return state


class FrameFolderDataset(VideoDataset):
    """A `VideoDataset` whose samples are frame folders: `_open_reader` opens a `FrameFolderReader`
    with the folder's listed frame count. A sample that is a file (`predict` on videos with a
    checkpoint trained on frame folders) is read as a video."""

    def __init__(self, samples, *, counts: FrameCounts, filename_tmpl: str = DEFAULT_FILENAME_TMPL,
                 start_index: int = DEFAULT_START_INDEX, fps: Optional[float] = None, **kwargs):
        super().__init__(samples, **kwargs)
        self.counts, self.filename_tmpl, self.start_index, self.fps = counts, filename_tmpl, start_index, fps

    def _open_reader(self, path: str):
        from action3d.data.frames import FrameFolderReader  # torchvision's JPEG decoder: only for folders

        if os.path.isfile(path):
            return super()._open_reader(path)
        return FrameFolderReader(path, self.counts.get(path), filename_tmpl=self.filename_tmpl,
                                 start_index=self.start_index, fps=self.fps, short_side=self.decode_short_side,
                                 threads=self.decode_threads, autorotate=self.autorotate)


def frame_folder_dataset(data_cfg, split: str, *, protocol: str = "action3d"):
    """The dataset class `build_dataset` makes for a frame-folder section: `FrameFolderDataset`
    bound to the folders' file names, rate and the frame counts of `split`'s list. Refuses, in one
    line, what needs a frame rate the folders do not have."""
    from action3d.data.frames import FPS_PROTOCOLS, FrameCounts

    if data_cfg.fps is None:
        if data_cfg.target_fps is not None:
            raise Action3dError(f"data.target_fps={data_cfg.target_fps:g} is not allowed: frame folders carry no frame "
                                "rate: give theirs as data.fps=F (the rate they were extracted at), or leave "
                                "data.target_fps unset")
        if protocol in FPS_PROTOCOLS:
            raise Action3dError(f"eval.protocol={protocol} places clips by the frame rate and frame folders carry "
                                "none: give theirs as data.fps=F")
    listed = data_cfg.train_list if split == "train" else data_cfg.val_list
    counts = (FrameCounts.from_list(listed, root=data_cfg.root, multi_label=data_cfg.multi_label)
              if listed and os.path.isfile(listed) else FrameCounts())
    return functools.partial(FrameFolderDataset, counts=counts, filename_tmpl=data_cfg.filename_tmpl,
                             start_index=data_cfg.start_index, fps=data_cfg.fps)


def collate_views(batch):
    """A DataLoader's collate for a varying number of views per video (eval.protocol=hara): the
    views of all videos one after the other `(sum V, C, T, H, W)`, then labels, indices and each
    video's view count."""
    clips = [clip if clip.dim() == 5 else clip.unsqueeze(0) for clip, _, _ in batch]
    return (torch.cat(clips), torch.as_tensor([label for _, label, _ in batch]),
            torch.as_tensor([index for _, _, index in batch]), torch.as_tensor([len(c) for c in clips]))


def _describe(err: Exception, path: str) -> str:
    """One line `path: reason` for a failed load."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, Action3dError) and path in text:
        return text
    return f"{path}: {type(err).__name__}: {text}"


def build_dataset(data_cfg, split: str, *, train: bool, num_clips: Optional[int] = None,
                  num_crops: int = 1, samples: Optional[Sequence[Tuple[str, int]]] = None,
                  classes: Optional[Sequence[str]] = None, dataset_class: Optional[type] = None, seed: int = 0,
                  protocol: str = "action3d") -> VideoDataset:
    """The dataset of `split` ("train" | "val") that `data_cfg` describes (resolved: a synthetic
    set must have its paths, see `action3d.engine.data.resolve_data`).

    train: random clips and crops (else evenly spread clips, `num_crops` 1/3/10 crops; `protocol`:
    the clips and crops of a zoo's test code, eval.protocol).
    num_clips: clips per video (default data.num_clips). samples: load these `(path, label)`
    instead of the annotation list (e.g. `predict` on arbitrary files, label -1), with `classes`
    and the `dataset_class` to build (default VideoDataset): `action3d.engine.data.shared_index`
    gives them, resolved once per job, and for data.format=shards a `ShardDataset`. Under
    data.multi_label the items carry multi-hot rows of len(classes) classes.
    """
    from action3d.data.formats import format_of
    from action3d.data.index import resolve_index
    from action3d.data.test_transforms import build_test_transform
    from action3d.data.train_transforms import build_train_transform

    if dataset_class is None and format_of(data_cfg).frames:  # folders of JPEGs (data.format=rawframes)
        dataset_class = frame_folder_dataset(data_cfg, split, protocol=protocol)
    dataset_class = dataset_class or VideoDataset
    if samples is None:
        samples, classes = resolve_index(data_cfg, split)  # cached: see action3d.data.index
        if not samples:
            raise Action3dError(f"data.{split}_list of data.root={data_cfg.root}: no videos in split {split}")
    transform = build_train_transform(data_cfg) if train else build_test_transform(data_cfg, num_crops, protocol)
    return dataset_class(
        samples, transform=transform, train=train, clip_len=data_cfg.clip_len,
        frame_interval=data_cfg.frame_interval,
        num_clips=data_cfg.num_clips if num_clips is None else num_clips, num_crops=num_crops,
        crop_size=data_cfg.crop_size, out_of_bound=data_cfg.out_of_bound,
        decode_short_side=data_cfg.decode_short_side, decode_threads=data_cfg.decode_threads,
        max_fail_ratio=data_cfg.max_fail_ratio, root=data_cfg.root, classes=classes, seed=seed,
        autorotate=data_cfg.autorotate, target_fps=data_cfg.target_fps, protocol=protocol,
        multi_label=data_cfg.multi_label, num_classes=len(classes) if classes is not None else None)
