"""Recognising a checkpoint's kind and renaming its tensors to action3d's recognizer keys.

action3d's keys follow mmaction2/mmcv (`backbone.layer1.0.conv1.conv.weight`,
`backbone.layer1.0.conv1.bn.running_mean`, `cls_head.fc_cls.weight`), so action3d and mmaction2
checkpoints need no renaming. torchvision's video ResNets (`stem.0.weight`,
`layer1.0.conv1.0.weight`, `fc.weight`) are renamed by rules; torchvision's 2D ImageNet ResNets
(`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`) are inflated into whatever 3D model receives
them (`inflate_2d_state_dict`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch

from action3d.errors import Action3dError

ACTION3D = "action3d"
MMACTION2 = "mmaction2"
TORCHVISION_VIDEO = "torchvision-video"
TORCHVISION_2D = "torchvision-2d"
PYTORCHVIDEO = "pytorchvideo"
PYSLOWFAST = "pyslowfast"
CAFFE2 = "pyslowfast-caffe2"
HARA = "hara"

StateDict = Dict[str, torch.Tensor]


@dataclass
class Converted:
    """Source tensors under recognizer keys, plus where each came from (for the report).

    strict: every tensor must land, with its shape (a zoo file: other projects' names and layouts
    are known exactly). made_for: the presets the file's architecture is (empty: unknown). hint:
    what to change when the file does not fit.
    """

    kind: str
    tensors: StateDict                      # recognizer key -> tensor
    origin: Dict[str, str]                  # recognizer key -> source key
    source_keys: List[str]                  # every key of the source state dict
    note: str = ""
    strict: bool = False
    made_for: Tuple[str, ...] = ()
    hint: str = ""


def _first_keys(keys: Iterable[str], n: int = 4) -> str:
    keys = list(keys)
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _strip_prefix(state: StateDict, prefix: str) -> StateDict:
    """Remove `prefix` (e.g. DistributedDataParallel's `module.`) when every key has it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def find_state_dict(ckpt: Any, origin: str) -> Tuple[str, StateDict]:
    """The state dict inside a checkpoint and the container it came in.

    Containers: mmaction2/mmengine `{"state_dict": ..., "meta": ...}`, action3d
    `{"model": ..., "config": ...}` (torchvision's reference scripts also use `"model"`),
    PyTorchVideo's and PySlowFast's `{"model_state": ...}`, Hara's `{"arch": ..., "state_dict": ...}`
    (container "hara"), a Caffe2 `{"blobs": ...}` (weights_caffe2.py), or a bare state dict.
    Other entries (optimizer, meta, message_hub, cfg) are ignored.
    """
    if not isinstance(ckpt, Mapping):
        raise Action3dError(f"{origin}: holds a {type(ckpt).__name__}, not a checkpoint "
                            f"dict or state dict")
    container = "bare"
    if isinstance(ckpt.get("arch"), str) and isinstance(ckpt.get("state_dict"), Mapping):
        container = "hara"
    for key in ("state_dict", "model", "model_state", "blobs"):
        if isinstance(ckpt.get(key), Mapping):
            container, ckpt = ("hara" if container == "hara" else key), ckpt[key]
            break
    state = dict(ckpt)
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not state or not_tensors:
        top = _first_keys(not_tensors or ["(empty)"])
        raise Action3dError(f"{origin}: found no state dict of tensors (entries that are not "
                            f"tensors: {top}); expected an action3d, mmaction2, torchvision, "
                            f"PyTorchVideo, PySlowFast or Hara checkpoint")
    for prefix in ("module.", "_orig_mod."):       # DDP / torch.compile wrappers
        state = _strip_prefix(state, prefix)
    return container, state


def _dim(state: StateDict, key: str) -> int:
    return state[key].dim() if key in state else -1


def detect_kind(container: str, state: StateDict, origin: str) -> str:
    """Name the checkpoint's layout from its keys (see the module docstring and weights_foreign.py)."""
    if container == "hara":
        return HARA
    if container == "blobs":
        return CAFFE2
    if any(k.startswith("blocks.0.") for k in state):
        return PYTORCHVIDEO
    if any(k.startswith("s1.pathway0_stem.") for k in state):
        return PYSLOWFAST
    if "stem.0.weight" in state:
        return TORCHVISION_VIDEO
    if _dim(state, "conv1.weight") == 4 or _dim(state, "backbone.conv1.weight") == 4:
        return TORCHVISION_2D
    if any(k.endswith(".conv.weight") and v.dim() == 5 for k, v in state.items()):
        return MMACTION2 if container == "state_dict" else ACTION3D
    raise Action3dError(f"{origin}: unrecognised checkpoint layout (first keys: "
                        f"{_first_keys(state)}); supported: action3d, mmaction2 recognizers, "
                        f"torchvision r3d_18/mc3_18/r2plus1d_18, torchvision 2D ResNets, PyTorchVideo hub "
                        f"files, PySlowFast .pyth/.pkl, Hara's 3D ResNets")


# --- action3d / mmaction2: the same names; a bare backbone state dict gets `backbone.` ---------

def convert_mm_names(state: StateDict, kind: str) -> Converted:
    has_recognizer_keys = any(k.startswith(("backbone.", "cls_head.")) for k in state)
    rename = (lambda k: k) if has_recognizer_keys else (lambda k: "backbone." + k)
    tensors = {rename(k): v for k, v in state.items()}
    return Converted(kind, tensors, {rename(k): k for k in state}, list(state))


# --- torchvision video ResNets (VideoResNet: r3d_18, mc3_18) ----------------------------------

_TORCHVISION_VIDEO_RULES: List[Tuple[re.Pattern, str]] = [
    (re.compile(r"^stem\.0\.(.+)$"), r"backbone.conv1.conv.\1"),
    (re.compile(r"^stem\.1\.(.+)$"), r"backbone.conv1.bn.\1"),
    (re.compile(r"^(layer\d+\.\d+\.(?:conv\d|downsample))\.0\.(.+)$"), r"backbone.\1.conv.\2"),
    (re.compile(r"^(layer\d+\.\d+\.(?:conv\d|downsample))\.1\.(.+)$"), r"backbone.\1.bn.\2"),
    (re.compile(r"^fc\.(.+)$"), r"cls_head.fc_cls.\1"),
]


def torchvision_video_key(key: str) -> str:
    """`layer1.0.conv1.0.weight` -> `backbone.layer1.0.conv1.conv.weight` (unknown keys kept)."""
    for pattern, replacement in _TORCHVISION_VIDEO_RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return key


def convert_torchvision_video(state: StateDict) -> Converted:
    tensors = {torchvision_video_key(k): v for k, v in state.items()}
    return Converted(TORCHVISION_VIDEO, tensors,
                     {torchvision_video_key(k): k for k in state}, list(state))


# --- torchvision 2D ResNets, inflated -----------------------------------------------------------

_PATHWAY = r"^(?:backbone\.)?(?P<path>slow_path\.|fast_path\.)?"
_TO_2D_RULES: List[Tuple[re.Pattern, str]] = [
    (re.compile(_PATHWAY + r"conv1\.conv\.(?P<p>.+)$"), "conv1.{p}"),
    (re.compile(_PATHWAY + r"conv1\.bn\.(?P<p>.+)$"), "bn1.{p}"),
    (re.compile(_PATHWAY + r"(?P<b>layer\d+\.\d+)\.conv(?P<n>\d)\.conv\.(?P<p>.+)$"),
     "{b}.conv{n}.{p}"),
    (re.compile(_PATHWAY + r"(?P<b>layer\d+\.\d+)\.conv(?P<n>\d)\.bn\.(?P<p>.+)$"),
     "{b}.bn{n}.{p}"),
    # with advanced=True the shortcut is Sequential(AvgPool3d, ConvBNAct): `downsample.1.conv`
    (re.compile(_PATHWAY + r"(?P<b>layer\d+\.\d+)\.downsample\.(?:1\.)?conv\.(?P<p>.+)$"),
     "{b}.downsample.0.{p}"),
    (re.compile(_PATHWAY + r"(?P<b>layer\d+\.\d+)\.downsample\.(?:1\.)?bn\.(?P<p>.+)$"),
     "{b}.downsample.1.{p}"),
]


def key_2d_for(key_3d: str) -> Tuple[Optional[str], str]:
    """The torchvision 2D key holding the weights of a 3D key, and the 3D key's pathway.

    Laterals, non-local blocks and the head have no 2D counterpart (None).
    """
    for pattern, template in _TO_2D_RULES:
        match = pattern.match(key_3d)
        if match:
            return template.format(**match.groupdict()), (match.group("path") or "")
    return None, ""


def inflate_tensor(weight_2d: torch.Tensor, like: torch.Tensor, *,
                   pad_in_channels: bool = False) -> Optional[torch.Tensor]:
    """A 2D tensor made to fit the 3D tensor `like`, or None when its shape cannot fit.

    Conv kernels `(O, I, h, w)` are repeated `t` times along time and divided by `t`, so a
    clip of one repeated image gives the 2D response (mmaction2's `_inflate_conv_params`).
    With `pad_in_channels` a kernel with fewer input channels is zero-filled at the end: the
    slow pathway's extra inputs come from laterals concatenated after its own channels.
    BN parameters and buffers are copied when their shapes agree.
    """
    if weight_2d.dim() == 4 and like.dim() == 5:
        out_2d, in_2d, h, w = weight_2d.shape
        out_3d, in_3d, t, h3, w3 = like.shape
        if (out_2d, h, w) != (out_3d, h3, w3) or in_2d > in_3d:
            return None
        if in_2d < in_3d:
            if not pad_in_channels:
                return None
            zeros = weight_2d.new_zeros(out_2d, in_3d - in_2d, h, w)
            weight_2d = torch.cat([weight_2d, zeros], dim=1)
        return (weight_2d.unsqueeze(2).expand(-1, -1, t, -1, -1) / t).contiguous()
    return weight_2d.clone() if weight_2d.shape == like.shape else None


def _plain_2d_names(state_2d: StateDict) -> StateDict:
    """mmpretrain/mmcls 2D ResNets name their keys `backbone.conv1.weight`: drop `backbone.`."""
    if "conv1.weight" in state_2d:
        return state_2d
    return {k.removeprefix("backbone."): v for k, v in state_2d.items()}


def inflate_2d_state_dict(state_2d: StateDict, target: StateDict) -> Tuple[StateDict, Dict[str, str]]:
    """Inflate a torchvision 2D ResNet state dict into the keys of a 3D model's state dict.

    `target` is the 3D model's state dict (recognizer, backbone or SlowFast keys all work).
    Returns `(tensors, origin)`: for every target key with a 2D counterpart, the inflated tensor
    (or the raw 2D tensor when its shape cannot fit, so the caller can report the mismatch),
    and the 2D key it came from. The 2D `fc` never maps to anything.
    A SlowFast fast pathway is inflated only when its stem is as wide as the 2D stem (it is
    normally `channel_ratio` times narrower); otherwise it is left out.
    """
    state_2d = _plain_2d_names(state_2d)
    fast_stem = [v for k, v in target.items() if k.endswith("fast_path.conv1.conv.weight")]
    skip_fast = bool(fast_stem) and fast_stem[0].shape[0] != state_2d["conv1.weight"].shape[0]
    tensors: StateDict = {}
    origin: Dict[str, str] = {}
    for key, like in target.items():
        key_2d, pathway = key_2d_for(key)
        if key_2d is None or key_2d not in state_2d or (skip_fast and pathway == "fast_path."):
            continue
        inflated = inflate_tensor(state_2d[key_2d], like, pad_in_channels=pathway == "slow_path.")
        tensors[key] = state_2d[key_2d] if inflated is None else inflated
        origin[key] = key_2d
    return tensors, origin


def convert_torchvision_2d(state: StateDict, target: StateDict) -> Converted:
    state = _plain_2d_names(state)
    tensors, origin = inflate_2d_state_dict(state, target)
    converted = Converted(TORCHVISION_2D, tensors, origin, list(state))
    fast = [k for k in target if ".fast_path." in "." + k]
    if fast and not any(".fast_path." in "." + k for k in tensors):
        converted.note = ("fast pathway left at its initialisation: narrower than the 2D ResNet "
                          "(SlowFast's usual recipe)")
    return converted


# --- aligning names with the receiving model --------------------------------------------------

# Spellings that differ between model options (advanced shortcut, non-local sub-sampling).
_ALTERNATE_NAMES: List[Tuple[str, str]] = [
    (".downsample.conv.", ".downsample.1.conv."),
    (".downsample.bn.", ".downsample.1.bn."),
    (".conv2.conv.", ".conv2.0.conv."),               # CSN's middle conv is a Sequential
    (".conv2.bn.", ".conv2.0.bn."),
    (".non_local_block.g.conv.", ".non_local_block.g.0.conv."),
    (".non_local_block.phi.conv.", ".non_local_block.phi.0.conv."),
]


def align_to_target(converted: Converted, target: Mapping) -> None:
    """Rename keys the target spells differently (e.g. `downsample.conv` -> `downsample.1.conv`)."""
    for key in [k for k in converted.tensors if k not in target]:
        for a, b in _ALTERNATE_NAMES + [(b, a) for a, b in _ALTERNATE_NAMES]:
            new = key.replace(a, b)
            if a in key and new in target and new not in converted.tensors:
                converted.tensors[new] = converted.tensors.pop(key)
                converted.origin[new] = converted.origin.pop(key)
                break
