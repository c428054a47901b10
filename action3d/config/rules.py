"""The rules of every option, one function each, in plain Python (no torch import).

The config check (`action3d.config.validate`) and the library (`ResNet3d`, `ResNet3dSlowFast`,
the trainer's precision and device choice) call these same functions, so a user sees the same
words from the command line and from Python; only the key prefix differs (`model.depth` there,
`depth` here). Each raises `ConfigError`, one line naming the key, the value and what is allowed.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

from action3d.errors import Action3dError

# depth -> (block kind, blocks per stage); mmaction2's ResNet3d.arch_settings.
ARCH_SETTINGS: Dict[int, Tuple[str, Tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
STYLES = ("pytorch", "caffe")
INFLATE_STYLES = ("3x1x1", "3x3x3")
SHORTCUT_TYPES = ("A", "B")
NON_LOCAL_MODES = ("embedded_gaussian", "dot_product")
ARCHS = ("resnet3d", "slowfast")
PRECISIONS = ("auto", "32", "bf16", "16")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(Action3dError, ValueError):
    """An option outside its rules. A ValueError too, as Python callers of a constructor expect."""


def is_sequence(value: Any) -> bool:
    """A list, tuple or OmegaConf ListConfig (not a string)."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def show(value: Any) -> str:
    """A value as the user typed it: lists as `[1,2]`, whatever container they arrive in."""
    if is_sequence(value):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)


def fail(key: str, value: Any, allowed: str) -> NoReturn:
    raise ConfigError(f"{key}={show(value)} is not allowed: {allowed}")


def check_choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        fail(key, value, "expected one of " + ", ".join(str(a) for a in allowed))


def check_range(key: str, value: Any, *, low: Optional[float] = None, high: Optional[float] = None,
                low_open: bool = False, high_open: bool = False) -> None:
    """`low <= value <= high` (either end may be open or absent)."""
    if value is None:
        return
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if high is None:
            fail(key, value, f"must be {'>' if low_open else '>='} {low:g}")
        if low is None:
            fail(key, value, f"must be {'<' if high_open else '<='} {high:g}")
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        fail(key, value, f"must be in {left}{low:g}, {high:g}{right}")


def check_ints(key: str, values: Any, *, length: Optional[int] = None, minimum: int = 1,
               what: str = "") -> List[int]:
    """A list of integers >= minimum, optionally of a given length."""
    if not is_sequence(values):
        fail(key, values, f"needs a list{' of ' + str(length) if length else ''} of integers{what}")
    values = list(values)
    if length is not None and len(values) != length:
        fail(key, values, f"needs {length} values{what}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        fail(key, values, f"entries must be integers >= {minimum}")
    return values


# --------------------------------------------------------------------------- ResNet3d

def check_depth(depth: Any, prefix: str = "") -> Tuple[str, Tuple[int, ...]]:
    """(block kind, default blocks per stage) of a depth."""
    if depth not in ARCH_SETTINGS:
        fail(f"{prefix}depth", depth, "allowed depths: " + ", ".join(map(str, sorted(ARCH_SETTINGS))))
    return ARCH_SETTINGS[depth]


def check_num_stages(num_stages: Any, prefix: str = "") -> int:
    if not (isinstance(num_stages, int) and 1 <= num_stages <= 4):
        fail(f"{prefix}num_stages", num_stages, "must be 1..4")
    return num_stages


def per_stage(key: str, values: Any, num_stages: int, *, allow_int: bool = False) -> List[Any]:
    """One entry per stage. A 4-entry list (the defaults) is cut to `num_stages`; with
    `allow_int` a single int stands for every stage (mmaction2's `inflate=1`)."""
    if allow_int and isinstance(values, int) and not isinstance(values, bool):
        return [values] * num_stages
    if not is_sequence(values):
        fail(key, values, f"needs one entry per stage: {num_stages} values (num_stages={num_stages})")
    values = list(values)
    if len(values) != num_stages and not (len(values) == 4 and num_stages < 4):
        fail(key, values, f"needs one entry per stage: {num_stages} values (num_stages={num_stages})")
    return values[:num_stages]


def stage_blocks(depth: int, blocks: Any, num_stages: int, prefix: str = "") -> List[int]:
    """Blocks per stage: the depth's default, or the given list (4 entries are cut to num_stages)."""
    default = ARCH_SETTINGS[depth][1]
    values = per_stage(f"{prefix}stage_blocks", default if blocks is None else blocks, num_stages)
    check_ints(f"{prefix}stage_blocks", values)
    return values


def per_block(key: str, flags: Any, blocks: Sequence[int]) -> List[List[bool]]:
    """`inflate`/`non_local`: per stage an int for every block or one 0/1 per block -> booleans."""
    stages = per_stage(key, flags, len(blocks), allow_int=True)
    out = []
    for stage, (entry, count) in enumerate(zip(stages, blocks)):
        entries = list(entry) if is_sequence(entry) else [entry] * count
        if len(entries) != count:
            fail(key, flags, f"stage {stage + 1} has {count} blocks, so its list needs {count} flags, "
                             f"got {len(entries)}")
        if any(e not in (0, 1) or isinstance(e, float) for e in entries):
            fail(key, flags, "flags must be 0 or 1")
        out.append([bool(e) for e in entries])
    return out


def check_resnet3d(*, depth: Any, stage_blocks_: Any = None, num_stages: Any = 4,
                   out_indices: Any = (3,), spatial_strides: Any = (1, 2, 2, 2),
                   temporal_strides: Any = (1, 1, 1, 1), dilations: Any = (1, 1, 1, 1),
                   conv1_kernel: Any = (3, 7, 7), conv1_stride: Any = (1, 2), pool1_stride: Any = (1, 2),
                   in_channels: Any = 3, base_channels: Any = 64, frozen_stages: Any = -1,
                   style: Any = "pytorch", inflate: Any = (1, 1, 1, 1), inflate_style: Any = "3x1x1",
                   non_local: Any = (0, 0, 0, 0), non_local_mode: Any = "embedded_gaussian",
                   shortcut_type: Any = "B", prefix: str = "") -> Dict[str, Any]:
    """Every ResNet3d argument rule; returns the per-stage lists in normal form."""
    check_depth(depth, prefix)
    n = check_num_stages(num_stages, prefix)
    blocks = stage_blocks(depth, stage_blocks_, n, prefix)
    lists = {name: check_ints(f"{prefix}{name}", per_stage(f"{prefix}{name}", values, n))
             for name, values in (("spatial_strides", spatial_strides),
                                  ("temporal_strides", temporal_strides), ("dilations", dilations))}
    check_ints(f"{prefix}conv1_kernel", conv1_kernel, length=3, what=" (temporal, height, width)")
    check_ints(f"{prefix}conv1_stride", conv1_stride, length=2, what=" (temporal, spatial)")
    check_ints(f"{prefix}pool1_stride", pool1_stride, length=2, what=" (temporal, spatial)")
    check_ints(f"{prefix}in_channels", [in_channels])
    check_ints(f"{prefix}base_channels", [base_channels])
    if out_indices is None:  # the config's default: the last stage, whatever num_stages is
        out_indices = [n - 1]
    indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
    if not indices or any(not isinstance(i, int) or not 0 <= i < n for i in indices):
        fail(f"{prefix}out_indices", out_indices, f"entries must be stage indices 0..{n - 1}")
    if not (isinstance(frozen_stages, int) and -1 <= frozen_stages <= n):
        fail(f"{prefix}frozen_stages", frozen_stages, f"must be -1 (none) .. {n}")
    check_choice(f"{prefix}style", style, STYLES)
    check_choice(f"{prefix}inflate_style", inflate_style, INFLATE_STYLES)
    check_choice(f"{prefix}shortcut_type", shortcut_type, SHORTCUT_TYPES)
    check_choice(f"{prefix}non_local_mode", non_local_mode, NON_LOCAL_MODES)
    return dict(stage_blocks=blocks, out_indices=sorted(set(indices)),
                inflate=per_block(f"{prefix}inflate", inflate, blocks),
                non_local=per_block(f"{prefix}non_local", non_local, blocks), **lists)


def check_shortcut_a(in_channels: int, out_channels: int, prefix: str = "") -> None:
    if out_channels < in_channels:
        fail(f"{prefix}shortcut_type", "A", f"a parameter-free shortcut cannot reduce channels "
                                            f"({in_channels} -> {out_channels}); use B")


# --------------------------------------------------------------------------- SlowFast

def check_slowfast(*, resample_rate: Any, speed_ratio: Any, channel_ratio: Any, fusion_kernel: Any,
                   base_channels: Any, fast_conv1_kernel: Any = (5, 7, 7), prefix: str = "") -> None:
    for name, value in (("resample_rate", resample_rate), ("speed_ratio", speed_ratio),
                        ("channel_ratio", channel_ratio), ("fusion_kernel", fusion_kernel)):
        if not (isinstance(value, int) and value >= 1):
            fail(f"{prefix}{name}", value, "must be an integer >= 1")
    if resample_rate % speed_ratio != 0:
        fail(f"{prefix}speed_ratio", speed_ratio, f"must divide {prefix}resample_rate={resample_rate} "
                                                  "(the fast pathway takes every resample_rate/speed_ratio-th frame)")
    if base_channels % channel_ratio != 0:
        fail(f"{prefix}channel_ratio", channel_ratio, f"must divide {prefix}base_channels={base_channels}")
    if fusion_kernel % 2 == 0:
        fail(f"{prefix}fusion_kernel", fusion_kernel, "must be an odd number >= 1")
    check_ints(f"{prefix}fast_conv1_kernel", fast_conv1_kernel, length=3, what=" (temporal, height, width)")


def check_head(*, num_classes: Any, dropout: Any, prefix: str = "") -> None:
    if num_classes is not None and not (isinstance(num_classes, int) and num_classes >= 1):
        fail(f"{prefix}num_classes", num_classes, "must be an integer >= 1")
    check_range(f"{prefix}dropout", dropout, low=0.0, high=1.0, high_open=True)


# ModelConfig fields that are ResNet3d keyword arguments with the same name and meaning.
RESNET3D_KEYS = ("num_stages", "out_indices", "spatial_strides", "temporal_strides", "dilations",
                 "conv1_kernel", "conv1_stride", "pool1_stride", "in_channels", "base_channels",
                 "frozen_stages", "style", "inflate", "inflate_style", "non_local", "non_local_mode",
                 "shortcut_type")
SLOWFAST_KEYS = ("resample_rate", "speed_ratio", "channel_ratio", "fusion_kernel", "fast_conv1_kernel",
                 "fast_inflate")


def check_model(model: Any, prefix: str = "model.") -> None:
    """Every rule for a `model` config node (a dataclass, a dict-like or an OmegaConf node)."""
    get = model.__getitem__ if hasattr(model, "__getitem__") else lambda k: getattr(model, k)
    check_choice(f"{prefix}arch", get("arch"), ARCHS)
    normal = check_resnet3d(depth=get("depth"), stage_blocks_=get("stage_blocks"), prefix=prefix,
                            **{key: get(key) for key in RESNET3D_KEYS})
    check_head(num_classes=get("num_classes"), dropout=get("dropout"), prefix=prefix)
    if get("arch") == "slowfast":
        check_slowfast(prefix=prefix, base_channels=get("base_channels"),
                       **{key: get(key) for key in SLOWFAST_KEYS if key != "fast_inflate"})
        per_block(f"{prefix}fast_inflate", get("fast_inflate"), normal["stage_blocks"])
        if get("out_indices") is not None and normal["out_indices"] != [check_num_stages(get("num_stages")) - 1]:
            fail(f"{prefix}out_indices", get("out_indices"),
                 "SlowFast classifies the last stage of both pathways; leave out_indices at the last stage")


# --------------------------------------------------------------------------- synthetic data

SYNTHETIC_MAX_CLASSES = 12  # len(action3d.data.synthetic.CLASSES); a test keeps them equal


def check_synthetic(cfg: Any, prefix: str = "") -> None:
    """The built-in dataset's generator settings (`data.synthetic.*`)."""
    num_classes = cfg.num_classes
    if not 2 <= num_classes <= SYNTHETIC_MAX_CLASSES:
        fail(f"{prefix}num_classes", num_classes, f"2..{SYNTHETIC_MAX_CLASSES}")
    for key in ("train_per_class", "val_per_class"):
        check_range(f"{prefix}{key}", getattr(cfg, key), low=1)
    check_range(f"{prefix}num_frames", cfg.num_frames, low=2)
    if cfg.size < 16 or cfg.size % 2:
        fail(f"{prefix}size", cfg.size, "an even number >= 16")


# --------------------------------------------------------------------------- large datasets: parts, shards

def check_part(part: Any, key: str = "part") -> Optional[Tuple[int, int]]:
    """`I/N` (1 <= I <= N): the I-th of N deterministic parts of a dataset tool's work; None: all."""
    if part is None:
        return None
    text = str(part).strip()
    fields = text.split("/")
    if len(fields) != 2 or not all(f.strip().isdigit() for f in fields):
        fail(key, part, "expected I/N, the I-th of N parts (e.g. part=1/8; a SLURM array: "
                        "part=$SLURM_ARRAY_TASK_ID/8 with --array=1-8)")
    index, count = (int(f) for f in fields)
    if not 1 <= index <= count:
        fail(key, part, f"expected I/N with 1 <= I <= N (here N={count})")
    return index, count


def check_data_command(*, action: str, part: Any, merge: bool) -> None:
    """`data prepare part=I/N` runs one part; `merge=true` then writes the lists from all parts."""
    if part is not None and action != "prepare":
        fail("part", part, f"only data prepare splits its work into parts (this is data {action})")
    if merge and action != "prepare":
        fail("merge", merge, f"only data prepare merges parts (this is data {action})")
    if merge and part is not None:
        fail("merge", merge, f"merge=true writes the lists of all finished parts; give it without part={part}")
    check_part(part)


SHARD_ONLY_KEYS = ("train_list", "val_list", "classes_file", "annotation_dir")


def check_shards(data: Any, prefix: str = "data.") -> None:
    """data.format=shards: the splits and classes are the pack's; the sampler streams."""
    if data.format != "shards":
        return
    for key in SHARD_ONLY_KEYS:
        if getattr(data, key, None) not in (None, ""):
            fail(f"{prefix}{key}", getattr(data, key), f"{prefix}format=shards reads the splits and classes "
                 f"of the packed dataset ({prefix}root/index.json); leave it unset")
    if getattr(data, "sampler", "random") == "balanced":
        fail(f"{prefix}sampler", "balanced", f"{prefix}format=shards reads each shard front to back; class-balanced "
             "draws need random access: use data.sampler=random, or train from the files")


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
    check_choice(key, device, DEVICES)
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
    """(precision to run, why) for trainer.precision on a device.

    auto: bf16 autocast where the hardware runs bf16 natively (CUDA devices with bf16, CPUs with
    AVX512-BF16 or AMX), else fp32. fp16 with a gradient scaler is only ever the user's choice.
    """
    check_choice(key, precision, PRECISIONS)
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


def cpu_has_native_bf16(flags: Optional[set] = None) -> bool:
    """AVX512-BF16 or AMX-BF16. Not torch.ops.mkldnn._is_mkldnn_bf16_supported(): that is also
    True on CPUs that only emulate bf16 (measured ~20x slower than fp32 there)."""
    flags = cpu_flags() if flags is None else flags
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_native_fp16(flags: Optional[set] = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return "avx512_fp16" in flags or "amx_fp16" in flags


# --------------------------------------------------------------------------- deploy and inspect

EXPORT_FORMATS = ("onnx", "torchscript")


def check_windows(*, window: Any, stride: Any, timeline: Any = None) -> None:
    """`window=`/`stride=` (seconds, > 0) of predict and embed; stride and timeline need a window."""
    check_range("window", window, low=0.0, low_open=True)
    check_range("stride", stride, low=0.0, low_open=True)
    if window is None and stride is not None:
        fail("stride", stride, "needs window=SECONDS (stride is the step between windows)")
    if window is None and timeline is not None:
        fail("timeline", timeline, "needs window=SECONDS (the timeline plots each window's probabilities)")
