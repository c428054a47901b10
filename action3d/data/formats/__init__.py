"""The registry of dataset formats: the one place that maps a data.format value to its class.

`format_of(data)` is the format of a data section, bound to it (see `DatasetFormat` in
`action3d.data.formats.base` for what a format declares and does). Code elsewhere asks the format
(`format_of(data).streams`, `.preflight(...)`, `.load_split(...)`) instead of comparing data.format
with a name; tests/test_formats.py keeps it so. A new format is one module in this package and one
entry in `FORMATS`.

Imports no torch, torchvision or PyAV, and nothing of `action3d.config` at module level: the
config check imports this on the command line's light path.
"""
from __future__ import annotations

from typing import Dict, Tuple, Type

from action3d.data.formats.base import DataSection, DatasetFormat
from action3d.data.formats.folder import FolderFormat
from action3d.data.formats.kinetics import KineticsFormat
from action3d.data.formats.list_file import ListFormat
from action3d.data.formats.official_splits import HMDB51Format, UCF101Format
from action3d.data.formats.rawframes import RawframesFormat
from action3d.data.formats.shards import ShardsFormat
from action3d.data.formats.synthetic import SyntheticFormat
from action3d.errors import fail

# In the order the allowed values are listed to users.
FORMATS: Tuple[Type[DatasetFormat], ...] = (
    SyntheticFormat, ListFormat, KineticsFormat, UCF101Format, HMDB51Format, FolderFormat, RawframesFormat,
    ShardsFormat)
FORMAT_NAMES: Tuple[str, ...] = tuple(f.name for f in FORMATS)
_BY_NAME: Dict[str, Type[DatasetFormat]] = {f.name: f for f in FORMATS}


def format_class(name: str) -> Type[DatasetFormat]:
    """The class of data.format=`name`; `ConfigError` naming the allowed values for any other."""
    if name not in _BY_NAME:
        fail("data.format", name, "expected one of " + ", ".join(FORMAT_NAMES))
    return _BY_NAME[name]


def format_of(data: DataSection) -> DatasetFormat:
    """The format of the data section `data` (its data.format), bound to it."""
    return format_class(data.format)(data)


def key_owners(key: str) -> Tuple[str, ...]:
    """The formats that read data key `key` ("split", "data.split" or a sub-key such as
    "synthetic.size"), among the keys only some formats read; () for a key every format reads."""
    key = key.removeprefix("data.")
    return tuple(f.name for f in FORMATS if any(key == k or key.startswith(k + ".") for k in f.keys))


__all__ = ["FORMATS", "FORMAT_NAMES", "DatasetFormat", "format_class", "format_of", "key_owners"]
