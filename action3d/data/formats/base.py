"""`DatasetFormat`: everything that depends on `data.format`, owned by one class per format.

A format class is bound to a data section (`format_of(data)` in `action3d.data.formats`): a
`DataConfig` dataclass, or an OmegaConf node with the DataConfig schema (the command line's
check). It only reads the section's attributes; DataConfig defines every key, so there are no
defaults to guess.

What a format declares (class attributes, for the config checks and the docs):
- `name`: the value of data.format ("ucf101").
- `summary`: one line for the docs' reference.
- `keys`: the data keys (without "data.") that only some formats read, and this one does:
  UCF101/HMDB51 ("annotation_dir", "split"), synthetic ("synthetic", ...), shards ("shard_shuffle",).
  `key_owners(key)` in the registry names the formats that read a key, so a check can say
  "data.split does not apply here: it applies to data.format=ucf101|hmdb51, and data.format=list".
- `refuses`: data key -> why (one clause) it cannot apply to this format; what `check` or the
  key-applicability check reports, e.g. ucf101's classes_file: "data.format=ucf101 takes its
  classes from the official split files".
- `streams`: its splits are streamed by `action3d.data.shards.ShardDataset` from data.root
  (`load_shard_split`), never resolved into a sample list (shards).
- `generated`: `resolve` makes its videos on first use: before that there is nothing on disk to
  check, and in a distributed job rank 0 makes them while the others wait (synthetic).
- `frames`: its samples are folders of frame images, not video files: the dataset reads them with
  `action3d.data.frames` (rawframes).

What a format does (methods; the one-line errors name the key at fault):
- `check()`: its config rules that need no files (`ConfigError`), e.g. shards with
  data.sampler=balanced, the synthetic generator's ranges. Runs on the command line's check. By
  default it refuses data.multi_label=true where `refuses` names "multi_label" (the formats whose
  annotations give one label per video: `one_label_per_video`), whoever set it.
- `declared_classes()`: (count, key) when the config alone fixes the number of classes.
- `preflight(required=..., optional=...)`: the files and folders that loading the splits will
  read exist (`Action3dError`); before any run directory is made (`action3d.commands.preflight`).
- `has_split(split)`: whether the section defines split "train" or "val", reading no annotation.
- `load_split(split)`: `(samples, classes)`, samples `(absolute video path, label)`, classes in
  label order (the subclass implements `read_split`).
- `resolve(progress=...)`: the section with generated paths filled in (synthetic), else itself.
- `annotation_files()`, `listed_folders()`: what the resolved-index cache (`action3d.data.index`)
  hashes and watches: the files whose bytes, and the folders whose listings, `load_split` reads.

Nothing here imports torch, torchvision or PyAV, nor `action3d.config`: the config check
(`action3d.config.validation`) reads the registry, so the formats sit below it (their errors come
from `action3d.errors`).
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Iterable, List, Mapping, Optional, Sequence, Tuple

from action3d.data.annotation_io import SPLITS, Sample
from action3d.errors import Action3dError, fail

DataSection = Any  # a DataConfig, or an OmegaConf node with the DataConfig schema
SPLIT_KEYS = {"train": "train_list", "val": "val_list"}  # the data key that names each split's annotation


def one_label_per_video(name: str, what: str) -> str:
    """Why data.format=`name` refuses data.multi_label (`what`: where its one label per video comes from)."""
    return (f"data.format={name} gives one label per video ({what}); several labels per video need list files "
            "(data.format=list, 'path label label ...' lines)")


def is_set(value: Any) -> bool:
    return value not in (None, "")


def existing_file(key: str, value: Any, hint: str = "") -> None:
    """A one-line error naming `key` unless `value` is a file."""
    path = Path(str(value)).expanduser()  # as the checkpoint readers do; never stricter than them
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise Action3dError(f"{key}={value}: {what}{'; ' + hint if hint else ''}")


def existing_files(paths: Iterable[Path]) -> List[Path]:
    """The absolute paths among `paths` that are files, each once, in order."""
    seen, files = set(), []
    for path in paths:
        resolved = path.absolute()
        if resolved not in seen and resolved.is_file():
            seen.add(resolved)
            files.append(resolved)
    return files


class DatasetFormat(abc.ABC):
    """One value of data.format; see the module docstring for what each attribute and method means."""

    name: ClassVar[str]
    summary: ClassVar[str]
    keys: ClassVar[Tuple[str, ...]] = ()
    refuses: ClassVar[Mapping[str, str]] = {}
    streams: ClassVar[bool] = False
    generated: ClassVar[bool] = False
    frames: ClassVar[bool] = False

    def __init__(self, data: DataSection):
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.data.root!r})"

    # -- the config, before any file is read -------------------------------------------------------

    def check(self) -> None:
        """Raise `ConfigError` for a setting this format cannot take; most formats have none."""
        self.check_multi_label()

    def check_multi_label(self) -> None:
        """data.multi_label=true (a preset's value or the user's) where this format refuses it."""
        why = self.refuses.get("multi_label")
        if why and self.data.multi_label:
            fail("data.multi_label", "true", why)

    def declared_classes(self) -> Optional[Tuple[int, str]]:
        """(number of classes, the key that sets it) when the config fixes it; None: the files tell."""
        return None

    # -- the files ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def preflight(self, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        """The folders and annotation files `load_split` will open exist.

        required: splits that must be defined ("train", "val"); optional: splits checked only when
        their annotation key is set.
        """

    @abc.abstractmethod
    def has_split(self, split: str) -> bool:
        """Whether the section defines `split` ("train" | "val") without reading any annotation."""

    def load_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        """The samples of split "train" or "val" and the class names, in label order."""
        if split not in SPLITS:
            raise Action3dError(f"split={split} is not allowed: expected one of {', '.join(SPLITS)}")
        return self.read_split(split)

    @abc.abstractmethod
    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        """`load_split` of a split name already checked."""

    def resolve(self, *, progress: bool = True) -> DataSection:
        """The section ready to load: generated paths filled in (see `generated`); here unchanged."""
        return self.data

    @abc.abstractmethod
    def annotation_files(self) -> List[Path]:
        """Every existing file whose bytes can change what `load_split` returns (absolute paths)."""

    def listed_folders(self) -> List[Path]:
        """The folders whose listing (whole tree) `load_split` reads; none for formats that are told the paths."""
        return []

    # -- helpers of the subclasses -----------------------------------------------------------------

    def require(self, key: str, hint: str) -> str:
        """data.`key` as a string, or a one-line error that it is not set with `hint` (what to give)."""
        value = getattr(self.data, key)
        if not is_set(value):
            raise Action3dError(f"data.{key} is not set (data.format={self.name}): {hint}")
        return str(value)

    def require_folder(self, key: str) -> None:
        """data.`key` is set and an existing folder (a preflight check)."""
        value = getattr(self.data, key)
        if not is_set(value):
            raise Action3dError(f"data.{key} is not set (data.format={self.name}): give the dataset's folder "
                                f"as data.{key}=PATH")
        if not Path(str(value)).is_dir():
            raise Action3dError(f"data.{key}={value}: no such folder (data.format={self.name})")

    def preflight_classes_file(self) -> None:
        if is_set(self.data.classes_file):
            existing_file("data.classes_file", self.data.classes_file)

    def split_value(self, split: str) -> Any:
        """What the section gives for `split`: data.train_list or data.val_list."""
        return getattr(self.data, SPLIT_KEYS[split])
