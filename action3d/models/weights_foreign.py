"""The names of other projects' checkpoints, renamed to action3d's recognizer keys.

- PyTorchVideo hub files (`{"model_state": ...}`, keys `blocks.N...`): `blocks.0` the stem,
  the blocks holding `res_blocks` the stages in order, the one holding `proj` the head; SlowFast's
  `multipathway_blocks.{0,1}` are the slow and fast pathways, `multipathway_fusion` the laterals;
- PySlowFast (`.pyth` `{"model_state": ...}`, keys `s1.pathway0_stem...`, `s2.pathway0_res0...`,
  `s1_fuse...`, `head...`; Caffe2 `.pkl` blobs are renamed to these first, weights_caffe2.py);
- Hara's 3D-ResNets-PyTorch (`{"arch": "resnet-50", "state_dict": ...}`, both releases);
- torchvision's r2plus1d_18 (`stem.0`, `stem.3`, `layer1.0.conv1.0.0`, ...).

PyTorchVideo and PySlowFast classify `cat(slow, fast)` where action3d's SlowFastHead takes
`cat(fast, slow)` (mmaction2's order): the classifier's columns are swapped on the way in.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from action3d.errors import Action3dError
from action3d.models.weights_caffe2 import caffe2_to_pyslowfast
from action3d.models.weights_convert import (
    CAFFE2,
    HARA,
    PYSLOWFAST,
    PYTORCHVIDEO,
    TORCHVISION_VIDEO,
    Converted,
    StateDict,
)

Rules = Sequence[Tuple[str, str]]

# A residual block's parts: PyTorchVideo's names, then PySlowFast's.
_PTV_BLOCK: Rules = [
    (r"branch1_conv\.(.+)", r"downsample.conv.\1"), (r"branch1_norm\.(.+)", r"downsample.bn.\1"),
    (r"branch2\.conv_a\.(.+)", r"conv1.conv.\1"), (r"branch2\.norm_a\.(.+)", r"conv1.bn.\1"),
    (r"branch2\.conv_b\.conv_t\.(.+)", r"conv2.conv.conv_t.\1"),
    (r"branch2\.conv_b\.norm\.(.+)", r"conv2.conv.bn_t.\1"),
    (r"branch2\.conv_b\.conv_xy\.(.+)", r"conv2.conv.conv_s.\1"), (r"branch2\.conv_b\.(.+)", r"conv2.conv.\1"),
    (r"branch2\.norm_b\.0\.(.+)", r"conv2.bn.\1"), (r"branch2\.norm_b\.1\.block\.0\.(.+)", r"se.fc1.\1"),
    (r"branch2\.norm_b\.1\.block\.2\.(.+)", r"se.fc2.\1"), (r"branch2\.norm_b\.(.+)", r"conv2.bn.\1"),
    (r"branch2\.conv_c\.(.+)", r"conv3.conv.\1"), (r"branch2\.norm_c\.(.+)", r"conv3.bn.\1"),
]
_PYSLOWFAST_BLOCK: Rules = [
    (r"branch1\.(.+)", r"downsample.conv.\1"), (r"branch1_bn\.(.+)", r"downsample.bn.\1"),
    (r"branch2\.a\.(.+)", r"conv1.conv.\1"), (r"branch2\.a_bn\.(.+)", r"conv1.bn.\1"),
    (r"branch2\.b\.(.+)", r"conv2.conv.\1"), (r"branch2\.b_bn\.(.+)", r"conv2.bn.\1"),
    (r"branch2\.c\.(.+)", r"conv3.conv.\1"), (r"branch2\.c_bn\.(.+)", r"conv3.bn.\1"),
    (r"branch2\.se\.(fc[12]\..+)", r"se.\1"),
]
_PTV_STEM: Rules = [
    (r"conv\.conv_t\.(.+)", r"conv1.conv.conv_s.\1"),      # X3D: PyTorchVideo's conv_t is the spatial conv
    (r"conv\.conv_xy\.(.+)", r"conv1.conv.conv_t.\1"),     # ... and its conv_xy the temporal one
    (r"conv\.(.+)", r"conv1.conv.\1"), (r"norm\.(.+)", r"conv1.bn.\1"),
]
_PTV_HEAD: Rules = [
    (r"proj\.(.+)", r"cls_head.fc_cls.\1"), (r"pool\.pre_conv\.(.+)", r"cls_head.pre_conv.conv.\1"),
    (r"pool\.pre_norm\.(.+)", r"cls_head.pre_conv.bn.\1"), (r"pool\.post_conv\.(.+)", r"cls_head.post_conv.conv.\1"),
]
_PYSLOWFAST_HEAD: Rules = [
    (r"head\.projection\.(.+)", r"cls_head.fc_cls.\1"), (r"head\.conv_5\.(.+)", r"cls_head.pre_conv.conv.\1"),
    (r"head\.conv_5_bn\.(.+)", r"cls_head.pre_conv.bn.\1"), (r"head\.lin_5\.(.+)", r"cls_head.post_conv.conv.\1"),
]
_LATERAL: Rules = [(r"(?:conv_fast_to_slow|conv_f2s)\.(.+)", r"conv.\1"), (r"(?:norm|bn)\.(.+)", r"bn.\1")]
_HARA: Rules = [
    (r"conv1\.(.+)", r"backbone.conv1.conv.\1"), (r"bn1\.(.+)", r"backbone.conv1.bn.\1"),
    (r"(layer\d+\.\d+)\.conv(\d)\.(.+)", r"backbone.\1.conv\2.conv.\3"),
    (r"(layer\d+\.\d+)\.bn(\d)\.(.+)", r"backbone.\1.conv\2.bn.\3"),
    (r"(layer\d+\.\d+)\.downsample\.0\.(.+)", r"backbone.\1.downsample.conv.\2"),
    (r"(layer\d+\.\d+)\.downsample\.1\.(.+)", r"backbone.\1.downsample.bn.\2"),
    (r"fc\.(.+)", r"cls_head.fc_cls.\1"),
]


def rename(name: str, rules: Rules) -> Optional[str]:
    """The first rule whose pattern matches all of `name`, applied; None when none does."""
    for pattern, template in rules:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(template)
    return None


def _pathway(index: int, two_pathways: bool) -> str:
    return ("slow_path.", "fast_path.")[index] if two_pathways else ""


def _lateral(stage: int) -> str:
    """The lateral after the stem (stage 0) or after stage k."""
    return "conv1_lateral" if stage == 0 else f"layer{stage}_lateral"


def _collect(state: StateDict, kind: str, key_of) -> Converted:
    """Rename every key with `key_of` (None: kept as is, so that the strict check names it)."""
    tensors: StateDict = {}
    origin: Dict[str, str] = {}
    for key, tensor in state.items():
        new = key_of(key) or key
        tensors[new], origin[new] = tensor, key
    return Converted(kind, tensors, origin, list(state), strict=True)


# --- PyTorchVideo --------------------------------------------------------------------------------

def _ptv_roles(state: StateDict) -> Dict[int, str]:
    """`blocks.N` -> 'stem', 'stage K' or 'head', from the tensors each block holds."""
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    stages = [i for i in indices if any(k.startswith(f"blocks.{i}.") and ".res_blocks." in k for k in state)]
    roles = {i: f"stage {n + 1}" for n, i in enumerate(stages)}
    roles[indices[0]] = "stem"
    roles.update({i: "head" for i in indices if i not in roles})
    return roles


def _ptv_part(role: str, rest: str, path: str) -> Optional[str]:
    if role == "stem":
        new = rename(rest, _PTV_STEM)
        return f"backbone.{path}{new}" if new else None
    if role == "head":
        return rename(rest, _PTV_HEAD)
    match = re.fullmatch(r"res_blocks\.(\d+)\.(.+)", rest)
    new = rename(match.group(2), _PTV_BLOCK) if match else None
    return f"backbone.{path}layer{role.split()[1]}.{match.group(1)}.{new}" if new else None


def ptv_key(key: str, roles: Dict[int, str], two_pathways: bool) -> Optional[str]:
    """`blocks.1.res_blocks.0.branch2.conv_a.weight` -> `backbone.layer1.0.conv1.conv.weight`."""
    match = re.fullmatch(r"blocks\.(\d+)\.(?:multipathway_blocks\.(\d)\.)?(.+)", key)
    if not match or int(match.group(1)) not in roles:
        return None
    role, rest = roles[int(match.group(1))], match.group(3)
    fusion = re.fullmatch(r"multipathway_fusion\.(.+)", rest)
    if fusion:
        stage = 0 if role == "stem" else int(role.split()[1])
        new = rename(fusion.group(1), _LATERAL)
        return f"backbone.slow_path.{_lateral(stage)}.{new}" if new else None
    return _ptv_part(role, rest, _pathway(int(match.group(2) or 0), two_pathways))


def convert_pytorchvideo(state: StateDict) -> Converted:
    roles = _ptv_roles(state)
    two = any(".multipathway_blocks.1." in k for k in state)
    converted = _collect(state, PYTORCHVIDEO, lambda key: ptv_key(key, roles, two))
    if two:
        swap_slowfast_head(converted)
    return converted


# --- PySlowFast ------------------------------------------------------------------------------------

def pyslowfast_key(key: str, *, two_pathways: bool, x3d_stem: bool) -> Optional[str]:
    """`s2.pathway0_res0.branch2.a.weight` -> `backbone.layer1.0.conv1.conv.weight`."""
    stem = re.fullmatch(r"s1\.pathway(\d)_stem\.(conv_xy|conv|bn)\.(.+)", key)
    if stem:
        part = {"conv_xy": "conv.conv_s", "conv": "conv.conv_t" if x3d_stem else "conv", "bn": "bn"}[stem.group(2)]
        return f"backbone.{_pathway(int(stem.group(1)), two_pathways)}conv1.{part}.{stem.group(3)}"
    fuse = re.fullmatch(r"s(\d)_fuse\.(.+)", key)
    if fuse:
        new = rename(fuse.group(2), _LATERAL)
        return f"backbone.slow_path.{_lateral(int(fuse.group(1)) - 1)}.{new}" if new else None
    block = re.fullmatch(r"s(\d)\.pathway(\d)_res(\d+)\.(.+)", key)
    if block:
        new = rename(block.group(4), _PYSLOWFAST_BLOCK)
        path = _pathway(int(block.group(2)), two_pathways)
        return f"backbone.{path}layer{int(block.group(1)) - 1}.{block.group(3)}.{new}" if new else None
    return rename(key, _PYSLOWFAST_HEAD)


def convert_pyslowfast(state: StateDict, kind: str = PYSLOWFAST) -> Converted:
    two = any(".pathway1_" in k for k in state)
    x3d_stem = "s1.pathway0_stem.conv_xy.weight" in state
    converted = _collect(state, kind, lambda key: pyslowfast_key(key, two_pathways=two, x3d_stem=x3d_stem))
    if two:
        swap_slowfast_head(converted)
    return converted


def swap_slowfast_head(converted: Converted) -> None:
    """cat(slow, fast) columns -> cat(fast, slow): the slow width is its last stage's output."""
    weight = converted.tensors.get("cls_head.fc_cls.weight")
    slow_out = [t.shape[0] for k, t in converted.tensors.items()
                if re.fullmatch(r"backbone\.slow_path\.layer\d+\.\d+\.conv3\.conv\.weight", k)]
    if weight is None or weight.dim() != 2 or not slow_out:
        return
    slow = slow_out[-1]
    converted.tensors["cls_head.fc_cls.weight"] = torch.cat([weight[:, slow:], weight[:, :slow]], dim=1)


# --- Hara's 3D-ResNets-PyTorch ---------------------------------------------------------------------

HARA_DEPTHS = (10, 18, 34, 50, 101, 152, 200)


def hara_nearest(arch: str) -> str:
    """The preset nearest to one of Hara's other models (`resnext-101` -> hara/resnet101)."""
    digits = re.findall(r"\d+", arch)
    depth = int(digits[-1]) if digits else 50
    return f"hara/resnet{min(HARA_DEPTHS, key=lambda d: (abs(d - depth), d))}"


def convert_hara(state: StateDict, arch: str, origin: str) -> Converted:
    """Hara's ResNets only; his ResNeXt, WideResNet, pre-activation ResNet, DenseNet and (2+1)D files
    are refused, naming the nearest preset."""
    model, _, depth = arch.partition("-")
    if model != "resnet" or not depth.isdigit() or int(depth) not in HARA_DEPTHS:
        depths = ", ".join(f"resnet-{d}" for d in HARA_DEPTHS)
        raise Action3dError(f"{origin}: is Hara et al.'s {arch}; action3d builds only his ResNets ({depths}); "
                            f"the nearest is model={hara_nearest(arch)}")
    converted = _collect(state, HARA, lambda key: rename(key, _HARA))
    converted.made_for = (f"hara/resnet{depth}",)
    if not any(".downsample." in k for k in state) and int(depth) in (18, 34):
        converted.hint = "a 2018-release ResNet-18/34 has shortcut A: set model.shortcut_type=A"
    return converted


# --- torchvision's r2plus1d_18 ---------------------------------------------------------------------

_TV_R2PLUS1D: Rules = [
    (r"stem\.0\.(.+)", r"backbone.conv1.conv.conv_s.\1"), (r"stem\.1\.(.+)", r"backbone.conv1.conv.bn_s.\1"),
    (r"stem\.3\.(.+)", r"backbone.conv1.conv.conv_t.\1"), (r"stem\.4\.(.+)", r"backbone.conv1.bn.\1"),
    (r"(layer\d+\.\d+\.conv\d)\.0\.0\.(.+)", r"backbone.\1.conv.conv_s.\2"),
    (r"(layer\d+\.\d+\.conv\d)\.0\.1\.(.+)", r"backbone.\1.conv.bn_s.\2"),
    (r"(layer\d+\.\d+\.conv\d)\.0\.3\.(.+)", r"backbone.\1.conv.conv_t.\2"),
    (r"(layer\d+\.\d+\.(?:conv\d|downsample))\.0\.(.+)", r"backbone.\1.conv.\2"),
    (r"(layer\d+\.\d+\.(?:conv\d|downsample))\.1\.(.+)", r"backbone.\1.bn.\2"),
    (r"fc\.(.+)", r"cls_head.fc_cls.\1"),
]


def convert_torchvision_r2plus1d(state: StateDict, kind: str) -> Converted:
    converted = _collect(state, kind, lambda key: rename(key, _TV_R2PLUS1D))
    converted.made_for = ("r2plus1d_18",)
    return converted


def first_keys(names: List[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


# --- dispatch ----------------------------------------------------------------------------------------

def convert_caffe2(state: StateDict) -> Converted:
    """Caffe2 blob names -> PySlowFast's (its own rules) -> action3d's; the report names the blobs."""
    names = {caffe2_to_pyslowfast(k): k for k in state}
    converted = convert_pyslowfast({new: state[old] for new, old in names.items()}, CAFFE2)
    converted.origin = {key: names[source] for key, source in converted.origin.items()}
    converted.source_keys = list(state)
    return converted


def convert_foreign(kind: str, ckpt: Mapping[str, Any], state: StateDict, origin: str) -> Converted:
    """Rename a zoo file of `kind` (detect_kind) to action3d keys, with the presets it is made for."""
    if kind == HARA:
        return convert_hara(state, ckpt["arch"], origin)
    if kind == TORCHVISION_VIDEO:
        return convert_torchvision_r2plus1d(state, kind)
    if kind == PYTORCHVIDEO:
        converted = convert_pytorchvideo(state)
    else:
        converted = convert_caffe2(state) if kind == CAFFE2 else convert_pyslowfast(state)
    converted.made_for = ptv_preset_of(converted.tensors)
    return converted


# --- which zoo preset a file was made for (a state dict shows no strides: a best guess by layout) ------

def _blocks(tensors: StateDict, prefix: str, stage: int) -> int:
    pattern = re.compile(rf"backbone\.{prefix}layer{stage}\.(\d+)\.conv1\.conv\.weight")
    return len({m.group(1) for m in map(pattern.fullmatch, tensors) if m})


def ptv_preset_of(tensors: StateDict) -> Tuple[str, ...]:
    """The `ptv/` presets whose layout a PyTorchVideo or PySlowFast file has (empty: none of them)."""
    if "cls_head.pre_conv.conv.weight" in tensors:
        return {3: ("ptv/x3d_xs", "ptv/x3d_s", "ptv/x3d_m"), 5: ("ptv/x3d_l",)}.get(_blocks(tensors, "", 1), ())
    if "backbone.slow_path.conv1_lateral.conv.weight" in tensors:
        kernel = tensors["backbone.slow_path.conv1_lateral.conv.weight"].shape[2]
        layout = (_blocks(tensors, "slow_path.", 3), kernel)
        name = {(6, 7): "ptv/slowfast_r50", (23, 5): "ptv/slowfast_r101"}.get(layout)
        return (name,) if name else ()
    if any(".conv2.conv.conv_t." in k for k in tensors):
        return ("ptv/r2plus1d_r50",)
    middle = tensors.get("backbone.layer1.0.conv2.conv.weight")
    if middle is not None and middle.shape[1] == 1:
        return ("ptv/csn_r101",)
    stem = tensors.get("backbone.conv1.conv.weight")
    if stem is None or _blocks(tensors, "", 3) != 6:
        return ()
    if stem.shape[2] == 5:
        return ("ptv/i3d_r50",)
    inflated = any(k.endswith("conv1.conv.weight") and ".layer" in k and t.shape[2] == 3 for k, t in tensors.items())
    return ("ptv/slow_r50",) if inflated else ("ptv/c2d_r50",)
