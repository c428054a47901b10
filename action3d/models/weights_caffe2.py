"""PySlowFast's Caffe2 model-zoo files (`.pkl`): a restricted unpickler and the blob names.

The files are Python 2 pickles of `{"blobs": {name: numpy array}, ...}`. They are read with a
`pickle.Unpickler` (`encoding="latin1"`, as PySlowFast reads them) whose `find_class` admits only
what numpy arrays need: `numpy.core.multiarray._reconstruct` and `scalar` (and their numpy 2
`numpy._core` spellings), `numpy.ndarray` and `numpy.dtype`. Any other global (code) is refused.
The `momentum`, `lr` and `model_iter` entries are dropped, as PySlowFast's loader drops them.

Blob names are renamed to PySlowFast's module names by PySlowFast's own rules
(`slowfast/utils/c2_model_loading.py`), then to action3d's (weights_foreign.py).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Dict, Union

import torch

from action3d.errors import Action3dError

ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})
DROPPED = ("momentum", "lr", "model_iter")


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain data; refuses every other class or function."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        import numpy

        if module == "numpy":
            return getattr(numpy, name)
        multiarray = getattr(numpy, "_core", None) or numpy.core
        return getattr(multiarray.multiarray, name)


def read_caffe2(path: Union[str, Path]) -> Dict[str, Any]:
    """`{"blobs": {name: tensor}}` of a Caffe2 `.pkl` (training entries dropped); one-line errors."""
    import numpy

    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = ArraysOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise Action3dError(f"checkpoint {path}: not a Caffe2 model-zoo pickle ({reason}); only numpy arrays "
                            f"are read from .pkl files") from None
    if not isinstance(data, dict) or not isinstance(data.get("blobs"), dict):
        raise Action3dError(f"checkpoint {path}: a .pkl without the Caffe2 `blobs` dict")
    blobs = {k: v for k, v in data["blobs"].items() if not any(word in k for word in DROPPED)}
    return {"blobs": {k: torch.from_numpy(numpy.ascontiguousarray(v)) if isinstance(v, numpy.ndarray) else v
                      for k, v in blobs.items()}}


# PySlowFast's get_name_convert_func() pairs, applied in order (re.sub, each on the result).
_C2_TO_PYSLOWFAST = [
    (r"^nonlocal_conv([0-9]+)_([0-9]+)_(.*)", r"s\1.pathway0_nonlocal\2_\3"),
    (r"^(.*)_nonlocal([0-9]+)_(theta)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(g)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(phi)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(out)(.*)", r"\1_nonlocal\2.conv_\3\4"),
    (r"^(.*)_nonlocal([0-9]+)_(bn)_(.*)", r"\1_nonlocal\2.\3.\4"),
    (r"^t_pool1_subsample_bn_(.*)", r"s1_fuse.bn.\1"),
    (r"^t_pool1_subsample_(.*)", r"s1_fuse.conv_f2s.\1"),
    (r"^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_bn_(.*)", r"s\1_fuse.bn.\3"),
    (r"^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_(.*)", r"s\1_fuse.conv_f2s.\3"),
    (r"^res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)", r"s\1.pathway0_res\2.branch\3.\4_\5"),
    (r"^res_conv1_bn_(.*)", r"s1.pathway0_stem.bn.\1"),
    (r"^conv1_xy(.*)", r"s1.pathway0_stem.conv_xy\1"),
    (r"^conv1_(.*)", r"s1.pathway0_stem.conv.\1"),
    (r"^res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)", r"s\1.pathway0_res\2.branch\3_\4"),
    (r"^res_conv1_(.*)", r"s1.pathway0_stem.conv.\1"),
    (r"^t_res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)", r"s\1.pathway1_res\2.branch\3.\4_\5"),
    (r"^t_res_conv1_bn_(.*)", r"s1.pathway1_stem.bn.\1"),
    (r"^t_conv1_(.*)", r"s1.pathway1_stem.conv.\1"),
    (r"^t_res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)", r"s\1.pathway1_res\2.branch\3_\4"),
    (r"^t_res_conv1_(.*)", r"s1.pathway1_stem.conv.\1"),
    (r"pred_(.*)", r"head.projection.\1"),
    (r"(.*)b_bn_fc(.*)", r"\1se.fc\2"),
    (r"conv_5(.*)", r"head.conv_5\1"),
    (r"lin_5(.*)", r"head.lin_5\1"),
    (r"(.*)bn.b\Z", r"\1bn.bias"),
    (r"(.*)bn.s\Z", r"\1bn.weight"),
    (r"(.*)bn.rm\Z", r"\1bn.running_mean"),
    (r"(.*)bn.riv\Z", r"\1bn.running_var"),
    (r"(.*)[\._]b\Z", r"\1.bias"),
    (r"(.*)[\._]w\Z", r"\1.weight"),
]


def caffe2_to_pyslowfast(name: str) -> str:
    """`res2_0_branch2a_bn_s` -> `s2.pathway0_res0.branch2.a_bn.weight` (PySlowFast's rules)."""
    for pattern, replacement in _C2_TO_PYSLOWFAST:
        name = re.sub(pattern, replacement, name)
    return name
