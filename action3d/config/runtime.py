"""What a config value means on the machine that runs it: loader workers for `auto`, the device,
the precision `auto` picks. Plain Python, no torch (callers pass what torch reports)."""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Tuple

from action3d.config.checks import ConfigError, fail

PRECISIONS = ("auto", "32", "bf16", "16")
DEVICES = ("auto", "cpu", "cuda")


# --------------------------------------------------------------------------- data loader workers

def check_num_workers(value: Any, key: str = "data.num_workers") -> Optional[int]:
    """The explicit number of loader workers (>= 0), or None for `auto`."""
    if value == "auto":
        return None
    if isinstance(value, str) and value.strip().isdigit():  # a quoted number in a YAML file
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        fail(key, value, "expected auto or a whole number >= 0")
    if value < 0:
        fail(key, value, "must be >= 0 (or auto)")
    return value


def cpus_per_process(environ: Optional[Mapping[str, str]] = None) -> int:
    """CPUs this process may use (its affinity mask: a container's, SLURM's or taskset's cpuset),
    shared among the processes torchrun starts on this machine (LOCAL_WORLD_SIZE); at least 1."""
    environ = os.environ if environ is None else environ
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks (macOS, Windows)
        cpus = os.cpu_count() or 1
    local = environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, cpus // max(1, int(local) if local.isdigit() else 1))


def resolve_num_workers(value: Any, *, preset: int, cpus_per_process: int, key: str = "data.num_workers") -> int:
    """Loader workers for data.num_workers: an explicit number as given; `auto`: the dataset
    preset's number (data.preset_workers), capped by the CPUs available to each process, so that
    no process starts more workers than it has CPUs (PyTorch warns about those)."""
    explicit = check_num_workers(value, key)
    if explicit is not None:
        return explicit
    return max(0, min(int(preset), int(cpus_per_process)))


# --------------------------------------------------------------------------- device and precision

def check_device(device: str, *, cuda_available: bool, key: str = "trainer.device") -> None:
    if device == "cuda" and not cuda_available:
        raise ConfigError(f"{key}=cuda but no CUDA device is available; use {key}=auto or cpu")


def check_sync_bn(sync_bn: bool, *, device_type: str, key: str = "trainer.sync_bn") -> None:
    if sync_bn and device_type != "cuda":
        raise ConfigError(f"{key}=true needs CUDA (SyncBatchNorm has no CPU kernels) and this run is on the "
                          f"CPU; leave {key}=false on CPUs")


def resolve_device_type(device: str, *, cuda_available: bool) -> str:
    """'cuda' or 'cpu' for trainer.device (auto: CUDA when there is one)."""
    return "cuda" if device in ("auto", "cuda") and cuda_available else "cpu"


def choose_precision(precision: str, *, device_type: str, native_bf16: bool,
                     key: str = "trainer.precision") -> Tuple[str, str]:
    """(precision to run, why) for trainer.precision (one of PRECISIONS) on a device.

    auto: bf16 autocast where the hardware runs bf16 natively (CUDA devices with bf16, CPUs with
    AVX512-BF16 or AMX), else fp32. fp16 with a gradient scaler is only ever the user's choice.
    """
    if precision != "auto":
        return precision, f"{key}={precision} (set by the config)"
    where = "this CUDA device" if device_type == "cuda" else "this CPU"
    if native_bf16:
        flags = "supports bf16" if device_type == "cuda" else "has avx512_bf16/amx_bf16"
        return "bf16", f"{key}=auto chose bf16 autocast: {where} {flags}"
    lacks = "does not support bf16" if device_type == "cuda" else "has no avx512_bf16/amx_bf16 (bf16 would be emulated)"
    return "32", f"{key}=auto chose fp32: {where} {lacks}"


def precision_warning(precision: str, *, device_type: str, native_bf16: bool, native_fp16: bool,
                      key: str = "trainer.precision") -> Optional[str]:
    """A warning for a precision that runs but slowly on this device (None when it is fine)."""
    if device_type != "cpu":
        return None
    if precision == "bf16" and not native_bf16:
        return (f"{key}=bf16 on a CPU without native bf16 (no AVX512-BF16/AMX): conv3d runs emulated and is "
                f"much slower than fp32; use {key}=32 or auto")
    if precision == "16" and not native_fp16:
        return (f"{key}=16 on a CPU without native fp16 (no AVX512-FP16/AMX-FP16): fp16 autocast with loss "
                f"scaling runs, but slowly; use {key}=auto")
    return None


def cpu_flags() -> set:
    """The CPU feature flags Linux reports (empty where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# oneDNN's ISA levels (ONEDNN_MAX_CPU_ISA) at which it runs bf16 natively; a lower cap emulates it.
_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
              "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL", "DEFAULT"}


def cpu_has_native_bf16(flags: Optional[set] = None, environ: Optional[Mapping[str, str]] = None) -> bool:
    """AVX512-BF16 or AMX-BF16, and oneDNN not capped below them (`ONEDNN_MAX_CPU_ISA=AVX2` makes a
    CPU run as one without AVX512: bf16 is then emulated). Not
    torch.ops.mkldnn._is_mkldnn_bf16_supported(): that is also True on CPUs that only emulate bf16
    (measured ~20x slower than fp32 there)."""
    flags = cpu_flags() if flags is None else flags
    environ = os.environ if environ is None else environ
    cap = (environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and cap in _BF16_ISAS


def cpu_has_native_fp16(flags: Optional[set] = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return "avx512_fp16" in flags or "amx_fp16" in flags
