"""Model summary: per-stage output shapes, parameter counts and GFLOPs for one input clip.

The forward pass runs on the `meta` device (shapes only, no arithmetic, no memory), so even a
SlowFast R101 at 224 px is summarised instantly; FLOPs come from
`torch.utils.flop_counter.FlopCounterMode`, which works from shapes alone.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode


def _stage_modules(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """(label, module) pairs whose outputs are reported: stem, pool2, layer1.., head."""
    backbone = getattr(model, "backbone", model)
    if hasattr(backbone, "slow_path"):
        pathways = [("slow.", backbone.slow_path), ("fast.", backbone.fast_path)]
    else:
        pathways = [("", backbone)]
    stages = []
    for prefix, path in pathways:
        if hasattr(path, "maxpool"):
            stages.append((prefix + "stem", path.maxpool))
        if hasattr(path, "pool2") and not isinstance(path.pool2, nn.Identity):
            stages.append((prefix + "pool2", path.pool2))
        stages += [(prefix + name, getattr(path, name)) for name in getattr(path, "res_layers", [])]
    if hasattr(model, "cls_head"):
        stages.append(("head", model.cls_head))
    return stages


def _forward_shapes(model: nn.Module, x: torch.Tensor) -> Tuple[List[Dict[str, Any]], int]:
    """Run one forward pass, recording stage output shapes (in call order) and total FLOPs."""
    shapes: List[Dict[str, Any]] = []
    hooks = [module.register_forward_hook(
        lambda _m, _i, out, label=label: shapes.append(
            {"name": label, "shape": list(out.shape[1:])}))  # without the batch dim
        for label, module in _stage_modules(model)]
    state = {name: torch.empty_like(t, device=x.device) for name, t in
             itertools.chain(model.named_parameters(), model.named_buffers())}
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            functional_call(model, state, (x,), strict=False)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes, counter.get_total_flops()


def model_summary(model: nn.Module, input_shape: Sequence[int] = (3, 16, 112, 112)
                  ) -> Dict[str, Any]:
    """Summarise `model` for one clip of shape `input_shape` = (C, T, H, W).

    Returns a dict with `input_shape`, `stages` (list of {name, shape} in execution order,
    shapes without the batch dimension; `head` is the logits), `params_total`,
    `params_trainable`, `flops` and `gflops` (= flops / 1e9).

    FLOPs count one multiply-add as 2 FLOPs (FlopCounterMode's convention). Many papers and
    model zoos (mmaction2, PySlowFast) quote multiply-adds (MACs) as "FLOPs": divide by 2 to
    compare with them.
    """
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) != 4 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (C, T, H, W) with positive sizes, got {input_shape}")
    was_training = model.training
    model.eval()  # BN uses running statistics; dropout off
    try:
        shapes, flops = _forward_shapes(model, torch.empty((1, *input_shape), device="meta"))
    finally:
        model.train(was_training)
    params = list(model.parameters())
    return {
        "input_shape": list(input_shape),
        "stages": shapes,
        "params_total": sum(p.numel() for p in params),
        "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        "flops": int(flops),
        "gflops": flops / 1e9,
    }


def human_count(n: int) -> str:
    """Three significant digits: 33371472 -> '33.4M', 3794274 -> '3.79M', 912345 -> '912K'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            value = n / scale
            decimals = max(0, 3 - len(str(int(abs(value)))))
            return f"{value:.{decimals}f}{suffix}"
    return str(n)


def format_summary(summary: Dict[str, Any]) -> str:
    """A readable table of `model_summary`'s result."""
    c, t, h, w = summary["input_shape"]
    lines = [f"input clip: C={c} T={t} H={h} W={w} (batch of 1)",
             f"{'stage':<14} output shape (C, T, H, W)"]
    for stage in summary["stages"]:
        lines.append(f"{stage['name']:<14} {' x '.join(str(s) for s in stage['shape'])}")
    total, trainable = summary["params_total"], summary["params_trainable"]
    lines.append(f"{'parameters':<14} {human_count(total)} ({total:,}), "
                 f"trainable {human_count(trainable)} ({trainable:,})")
    lines.append(f"{'GFLOPs':<14} {summary['gflops']:.2f} (1 multiply-add = 2 FLOPs; "
                 f"{summary['gflops'] / 2:.2f} GMACs)")
    if summary.get("zoo_gmacs") is not None:
        lines.append(f"{'zoo GMACs':<14} {summary['zoo_gmacs']:.2f} (what the zoo publishes for this input; "
                     f"action3d counts {summary['gflops'] / 2:.2f})")
    return "\n".join(lines)
