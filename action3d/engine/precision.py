"""`trainer.precision` (32 | bf16 | 16): autocast context, gradient scaler, CPU guard rails."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from action3d.errors import Action3dError

log = logging.getLogger("action3d")


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: without them bf16 conv3d is emulated (measured ~20x slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision: str, device: torch.device) -> None:
    if device.type == "cpu" and precision == "16":
        raise Action3dError("trainer.precision=16 needs a CUDA device (fp16 with loss scaling); use 32 or bf16 on a CPU")
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        log.warning("trainer.precision=bf16 on a CPU without native bf16 (no AVX512-BF16/AMX): conv3d runs "
                    "emulated and is much slower than fp32 (about 20x measured); use trainer.precision=32")


def autocast(precision: str, device: torch.device):
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling only for fp16; a disabled scaler is a no-op with the same interface."""
    return torch.amp.GradScaler(device.type, enabled=(precision == "16"))
