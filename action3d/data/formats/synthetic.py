"""data.format=synthetic: the built-in moving-shapes set, generated on first use (`action3d.data.synthetic`)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from action3d.data.annotation_io import Sample
from action3d.data.formats.base import SPLIT_KEYS, DataSection, existing_file, is_set
from action3d.data.formats.list_file import ListFormat
from action3d.errors import Action3dError


class SyntheticFormat(ListFormat):
    """Resolved (`resolve`), the set is a list-file dataset in its cache folder (or data.root); list
    paths the user set (e.g. data.val_list=subset.txt for an evaluation) are kept."""

    name = "synthetic"
    summary = ("the built-in synthetic set (moving shapes, the class is the motion), generated on first use "
               "into $ACTION3D_CACHE or data.root from data.synthetic.*")
    keys = ("synthetic", "train_list", "val_list", "classes_file", "multi_label")
    generated = True

    def declared_classes(self) -> Optional[Tuple[int, str]]:
        return self.data.synthetic.num_classes, "data.synthetic.num_classes"

    def preflight(self, *, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        """Only what the user gave: data.root is where the set is generated, the lists come with it."""
        self.preflight_classes_file()
        for split in (*required, *optional):
            value = self.split_value(split)
            if is_set(value):
                existing_file(f"data.{SPLIT_KEYS[split]}", value)

    def has_split(self, split: str) -> bool:
        return True  # the generated set always has both

    def read_split(self, split: str) -> Tuple[List[Sample], List[str]]:
        if not self.data.train_list:
            raise Action3dError("data.format=synthetic: the synthetic set is not generated yet; resolve the data "
                                "config first (action3d.engine.data.resolve_data)")
        return super().read_split(split)

    def resolve(self, *, progress: bool = True) -> DataSection:
        """A copy with root/train_list/val_list/classes_file of the set, generated on first use."""
        from action3d.data.synthetic import ensure_synthetic  # numpy and the encoder: only when used

        return ensure_synthetic(self.data, progress=progress)
