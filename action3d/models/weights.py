"""Loading pretrained weights of every common kind into an action3d model.

`load_pretrained(model, source)` recognises what `source` holds and loads it:

- `action3d`: an action3d checkpoint `{"model": state_dict, "config": ..., ...}` or a bare
  action3d state dict (recognizer or backbone keys);
- `mmaction2`: an mmaction2 recognizer checkpoint `{"state_dict": ..., "meta": ...}` (ResNet3d,
  I3D, SlowOnly, SlowFast, non-local); its names are ours already;
- `torchvision-video`: torchvision's `r3d_18` / `mc3_18` / `r2plus1d_18` state dicts (into the
  presets of the same name);
- `torchvision-2d`: torchvision's ImageNet ResNet-18/34/50/101/152 (or mmpretrain's), inflated
  into any ResNet3d or a SlowFast slow pathway (see `inflate_2d_state_dict`);
- `pytorchvideo`: PyTorchVideo hub files `{"model_state": ...}` (the `ptv/` presets);
- `pyslowfast` / `pyslowfast-caffe2`: PySlowFast `.pyth` files and its Caffe2 `.pkl` files;
- `hara`: Kensho Hara's 3D ResNets `{"arch", "state_dict", ...}`, both releases (`hara/` presets).

Whatever the kind, a head whose class count differs is re-initialised (fine-tuning) and one
summary line is logged. For action3d, mmaction2 and torchvision r3d/mc3/2D files, shapes that differ
elsewhere are reported and not loaded; the other zoos' files are strict: a tensor that finds no
place, or not its shape, is refused in one line. A file whose layout is another preset's than the
one it is loaded into gets a note naming that preset (a state dict shows no strides). Files are
read with `torch.load(..., weights_only=True)` (see `weights_io`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from action3d.errors import Action3dError
from action3d.models.weights_convert import (
    ACTION3D,
    CAFFE2,
    HARA,
    MMACTION2,
    PYSLOWFAST,
    PYTORCHVIDEO,
    TORCHVISION_2D,
    TORCHVISION_VIDEO,
    Converted,
    align_to_target,
    convert_mm_names,
    convert_torchvision_2d,
    convert_torchvision_video,
    detect_kind,
    find_state_dict,
    inflate_2d_state_dict,
)
from action3d.models.weights_foreign import convert_foreign, first_keys
from action3d.models.weights_io import read_checkpoint

__all__ = ["KINDS", "LoadReport", "inflate_2d_state_dict", "load_pretrained",
           "load_torchvision_video", "read_checkpoint", "reset_head"]

KINDS = (ACTION3D, MMACTION2, TORCHVISION_VIDEO, TORCHVISION_2D, PYTORCHVIDEO, PYSLOWFAST, CAFFE2, HARA)
Source = Union[str, Path, Mapping[str, Any]]
HEAD_PREFIX = "cls_head."


@dataclass
class LoadReport:
    """What `load_pretrained` did. Lists hold recognizer-style key names.

    loaded: model keys that received a tensor. missing: model keys the checkpoint had nothing for
    (head and `num_batches_tracked` excluded). unused: checkpoint keys that went nowhere.
    mismatched: `key: checkpoint shape vs model shape` for tensors not loaded because of shape.
    head_reset: the classifier was re-initialised (class count differs, or no head to load).
    """

    kind: str
    source: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)
    head_reset: bool = False
    head_note: str = ""
    note: str = ""

    def summary(self) -> str:
        def some(names: List[str], n: int = 3) -> str:
            if not names:
                return "0"
            return f"{len(names)} ({', '.join(names[:n])}{', ...' if len(names) > n else ''})"

        if self.head_reset:
            head = "head re-initialised" + (f" ({self.head_note})" if self.head_note else "")
        else:
            head = self.head_note or "head loaded"
        line = (f"pretrained {self.source} [{self.kind}]: loaded {len(self.loaded)} tensors, "
                f"missing {some(self.missing)}, unused {some(self.unused)}, ")
        if self.mismatched:
            line += f"shape mismatch {some(self.mismatched, 2)} (not loaded), "
        return line + head + (f"; {self.note}" if self.note else "")


def _is_recognizer(model: nn.Module) -> bool:
    return hasattr(model, "backbone") and hasattr(model, "cls_head")


def _target_state(model: nn.Module) -> Tuple[Dict[str, torch.Tensor], Callable[[str], str]]:
    """The model's state dict under recognizer keys, and the map back to the model's own keys."""
    state = model.state_dict()
    if _is_recognizer(model):
        return dict(state), lambda key: key
    return {"backbone." + k: v for k, v in state.items()}, lambda key: key[len("backbone."):]


def _convert(ckpt: Any, origin: str, target: Mapping[str, torch.Tensor], *,
             allow_2d: bool) -> Converted:
    container, state = find_state_dict(ckpt, origin)
    kind = detect_kind(container, state, origin)
    if kind == TORCHVISION_2D and not allow_2d:
        raise Action3dError(f"{origin}: holds 2D ImageNet ResNet weights and model.pretrained2d "
                            f"is false; set model.pretrained2d=true to inflate them")
    if kind == TORCHVISION_2D:
        converted = convert_torchvision_2d(state, target)
    elif kind in (PYTORCHVIDEO, PYSLOWFAST, CAFFE2, HARA) or "stem.3.weight" in state:
        converted = convert_foreign(kind, ckpt, state, origin)
    elif kind == TORCHVISION_VIDEO:
        converted = convert_torchvision_video(state)
    else:
        converted = convert_mm_names(state, kind)
    align_to_target(converted, target)
    _expand_dims(converted, target)
    return converted


def _expand_dims(converted: Converted, target: Mapping[str, torch.Tensor]) -> None:
    """A tensor with trailing unit dims missing (Caffe2 fcs as 1x1x1 convs) takes the target's shape."""
    for key, tensor in converted.tensors.items():
        like = target.get(key)
        if like is not None and tensor.dim() < like.dim() and tuple(like.shape[:tensor.dim()]) == tuple(tensor.shape) \
                and all(s == 1 for s in like.shape[tensor.dim():]):
            converted.tensors[key] = tensor.reshape(like.shape)


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) or "scalar"


def _match(converted: Converted, target: Mapping[str, torch.Tensor], report: LoadReport
           ) -> Dict[str, torch.Tensor]:
    """Fill the report; return the tensors to load (head included only when it fits)."""
    to_load: Dict[str, torch.Tensor] = {}
    landed = set()                                  # source keys that found a model key
    for key, tensor in converted.tensors.items():
        if key not in target:
            continue
        landed.add(converted.origin[key])
        if key.startswith(HEAD_PREFIX):
            continue
        if tensor.shape == target[key].shape:
            to_load[key] = tensor
        else:
            report.mismatched.append(f"{key}: {_shape(tensor)} vs {_shape(target[key])}")
    report.missing = [k for k in target if k not in converted.tensors
                      and not k.startswith(HEAD_PREFIX) and not k.endswith("num_batches_tracked")]
    report.unused = [k for k in converted.source_keys if k not in landed]
    to_load.update(_match_head(converted, target, report))
    return to_load


def _match_head(converted: Converted, target: Mapping[str, torch.Tensor], report: LoadReport
                ) -> Dict[str, torch.Tensor]:
    """The head's tensors when they fit; otherwise mark the head for re-initialisation."""
    head_keys = [k for k in target if k.startswith(HEAD_PREFIX)]
    if not head_keys:
        report.head_note = "no head in model"
        return {}
    source_head = {k: converted.tensors[k] for k in head_keys if k in converted.tensors}
    if len(source_head) == len(head_keys) and all(
            source_head[k].shape == target[k].shape for k in head_keys):
        return source_head
    report.head_reset = True
    weight = source_head.get(HEAD_PREFIX + "fc_cls.weight")
    model_weight = target.get(HEAD_PREFIX + "fc_cls.weight")
    if weight is None or model_weight is None:
        report.head_note = "checkpoint has no video head"
    elif weight.dim() == 2 and weight.shape[1] == model_weight.shape[1]:
        report.head_note = f"{weight.shape[0]} -> {model_weight.shape[0]} classes"
    else:
        report.head_note = "checkpoint head does not fit"
        report.mismatched.append(f"{HEAD_PREFIX}fc_cls.weight: {_shape(weight)} vs "
                                 f"{_shape(model_weight)}")
    return {}


def reset_head(head: nn.Module, *, std: float = 0.01) -> None:
    """Re-initialise a classifier as mmaction2's heads do: normal(0, std) weights, zero bias."""
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _made_for_note(converted: Converted, target_name: str) -> str:
    """One line naming the preset a file was made for, when it is loaded into another."""
    if not converted.made_for or not target_name or target_name in converted.made_for:
        return ""
    names = " or ".join(f"model={name}" for name in converted.made_for)
    return (f"its layout is {names}'s and it was loaded into {target_name or 'this model'}, whose strides "
            f"or sampling may differ (a state dict shows no strides)")


def _refuse_misfits(converted: Converted, report: LoadReport, target: Mapping[str, torch.Tensor]) -> None:
    """A strict file: every tensor must find its place with its shape (the head may differ in classes;
    a bare backbone leaves the file's head unused)."""
    has_head = any(k.startswith(HEAD_PREFIX) for k in target)
    head_sources = {converted.origin[k] for k in converted.tensors if k.startswith(HEAD_PREFIX)}
    unused = [k for k in report.unused if has_head or k not in head_sources]
    problems = ([f"missing {k}" for k in report.missing] + [f"unused {k}" for k in unused]
                + [f"shape {m}" for m in report.mismatched])
    if not problems:
        return
    names = " or ".join(f"model={name}" for name in converted.made_for)
    made_for = f"; it is a file for {names}" if names else ""
    hint = f"; {converted.hint}" if converted.hint else ""
    raise Action3dError(f"{report.source}: this {converted.kind} checkpoint does not fit the model: "
                        f"{len(problems)} tensor name/shape mismatches ({first_keys(problems, 2)}){made_for}{hint}")


def _match_classes(ckpt: Mapping[str, Any], classes: Optional[Sequence[str]], to_load: Dict[str, torch.Tensor],
                   report: LoadReport) -> None:
    """A checkpoint that names its classes (action3d's) and a head that fits by count: its rows are
    reordered to the dataset's class order when both name the same classes, and the head is
    re-initialised when they do not (a head of other classes that happens to be as wide would
    otherwise start training from wrong answers)."""
    stored = ckpt.get("classes") if isinstance(ckpt, Mapping) else None
    head = {k: v for k, v in to_load.items() if k.startswith(HEAD_PREFIX)}
    if not head or classes is None or not stored or list(stored) == list(classes):
        return
    if sorted(stored) != sorted(classes):
        for key in head:
            del to_load[key]
        report.head_reset = True
        report.head_note = "the checkpoint's classes are not the dataset's"
        return
    order = torch.tensor([list(stored).index(name) for name in classes])
    for key, tensor in head.items():
        if tensor.dim() >= 1 and tensor.shape[0] == len(classes):
            to_load[key] = tensor.index_select(0, order)
    report.head_note = "head loaded, its rows in the dataset's class order"


def _prepare(model: nn.Module, source: Source, *, allow_2d: bool, target_name: str = "", origin: str = "",
             classes: Optional[Sequence[str]] = None
             ) -> Tuple[LoadReport, Dict[str, torch.Tensor], Callable[[str], str]]:
    """Read and convert `source` for `model` without changing the model."""
    if isinstance(source, Mapping):
        ckpt, origin = source, origin or "<state dict>"
    else:
        ckpt, origin = read_checkpoint(source), str(source)
    target, to_model_key = _target_state(model)
    converted = _convert(ckpt, origin, target, allow_2d=allow_2d)
    report = LoadReport(kind=converted.kind, source=origin,
                        note="; ".join(n for n in (converted.note, _made_for_note(converted, target_name)) if n))
    to_load = _match(converted, target, report)
    _match_classes(ckpt, classes, to_load, report)
    if converted.strict:
        _refuse_misfits(converted, report, target)
    report.loaded = sorted(to_load)
    if not any(not k.startswith(HEAD_PREFIX) and not k.endswith("num_batches_tracked")
               for k in to_load):
        detail = f"; e.g. {report.mismatched[0]}" if report.mismatched else ""
        raise Action3dError(f"{origin}: no tensor of this {converted.kind} checkpoint fits the "
                            f"model ({len(report.mismatched)} shape mismatches{detail}); "
                            f"is it for another architecture or depth?")
    return report, to_load, to_model_key


def _apply(model: nn.Module, report: LoadReport, to_load: Dict[str, torch.Tensor],
           to_model_key: Callable[[str], str]) -> None:
    model.load_state_dict({to_model_key(k): v for k, v in to_load.items()}, strict=False)
    if report.head_reset:
        reset_head(model.cls_head)


def load_pretrained(model: nn.Module, source: Source, *, log: Callable[[str], Any] = print,
                    allow_2d: bool = True, target: str = "", origin: str = "",
                    classes: Optional[Sequence[str]] = None) -> LoadReport:
    """Load weights of any supported kind into `model` and log one summary line.

    Args:
        model: a recognizer (with `.backbone` and `.cls_head`) or a bare backbone
            (`ResNet3d`, `ResNet3dSlowFast`).
        source: a checkpoint path, or an already loaded checkpoint / state dict.
        log: receives the summary line (`print` by default; pass `logger.info` or a no-op).
        allow_2d: accept 2D ImageNet weights to inflate (`model.pretrained2d`).
        target: the preset name of `model` (`model.name`): a zoo file made for another preset is
            loaded with a note naming that preset.
        origin: the name the report gives a `source` that is already loaded (default "<state dict>").
        classes: the dataset's class names: a checkpoint that names its own classes gets its head
            reordered to them, or re-initialised when they are other classes.

    Raises `Action3dError` for unreadable files, unknown layouts, a zoo file whose tensors do not
    all fit, or a checkpoint of which no backbone tensor fits the model (the model is then left
    unchanged).
    """
    report, to_load, to_model_key = _prepare(model, source, allow_2d=allow_2d, target_name=target, origin=origin,
                                             classes=classes)
    _apply(model, report, to_load, to_model_key)
    log(report.summary())
    return report


def load_torchvision_video(model: nn.Module, source: Source, *,
                           log: Callable[[str], Any] = print) -> LoadReport:
    """Load a torchvision `r3d_18` / `mc3_18` / `r2plus1d_18` state dict (file or dict) into the matching preset.

    Strict: every backbone tensor must be found with the same shape and nothing may be left
    over, else `Action3dError` and the model is unchanged (the head may differ in class count
    and is then re-initialised). With the `r3d_18` preset the logits equal torchvision's
    `r3d_18` on the same input (fp32, eval mode); likewise `mc3_18` and `r2plus1d_18`.

        from torchvision.models.video import r3d_18, R3D_18_Weights
        load_torchvision_video(model, r3d_18(weights=R3D_18_Weights.DEFAULT).state_dict())
    """
    report, to_load, to_model_key = _prepare(model, source, allow_2d=False)
    if report.kind != TORCHVISION_VIDEO:
        raise Action3dError(f"{report.source}: is a {report.kind} checkpoint, not a torchvision "
                            f"video ResNet (r3d_18 / mc3_18 / r2plus1d_18)")
    problems = report.missing + report.mismatched + report.unused
    if problems:
        raise Action3dError(f"{report.source}: does not fit this model exactly ({len(problems)} "
                            f"problems, e.g. {problems[0]}); use the preset of the same name "
                            f"(model=r3d_18, model=mc3_18 or model=r2plus1d_18)")
    _apply(model, report, to_load, to_model_key)
    log(report.summary())
    return report
