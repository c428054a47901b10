"""`trainer.precision` (auto | 32 | bf16 | 16) on a device: the choice, autocast, gradient scaler.

The rules (what `auto` picks, when a choice runs slowly) are `action3d.config.runtime`'; this module
asks the hardware and applies them.
"""
from __future__ import annotations

import contextlib
from typing import Tuple

import torch

from action3d.config import runtime as rules


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 arithmetic natively (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return rules.cpu_has_native_bf16()


def resolve_precision(precision: str, device: torch.device) -> Tuple[str, str]:
    """(precision to run: 32 | bf16 | 16, why, as one log line)."""
    chosen, why = rules.choose_precision(precision, device_type=device.type, native_bf16=native_bf16(device))
    return chosen, why


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A warning when `precision` runs, but slowly, on `device` (None when it is fine)."""
    return rules.precision_warning(precision, device_type=device.type, native_bf16=native_bf16(device),
                                   native_fp16=rules.cpu_has_native_fp16() if device.type == "cpu" else True)


def autocast(precision: str, device: torch.device):
    """Autocast context for a resolved precision (32: none; resolve `auto` first)."""
    if precision not in ("32", "bf16", "16"):
        raise ValueError(f"autocast needs a resolved precision (32, bf16 or 16), got {precision!r}; "
                         "see resolve_precision")
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling only for fp16; a disabled scaler is a no-op with the same interface."""
    return torch.amp.GradScaler(device.type, enabled=(precision == "16"))
