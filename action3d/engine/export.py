"""A trained model as one file for use outside action3d: ONNX (onnxruntime) or TorchScript (libtorch).

The exported model is a `DeployWrapper`: uint8 clips `(N, C, T, H, W)` as the decoder and the test
transform produce them -> float, normalised with the checkpoint's mean/std -> the recognizer ->
`(logits, probabilities)`, both `(N, num_classes)`. It is fp32 whatever precision the model was
trained in, and its batch dimension is dynamic (T, H and W are those of the sidecar). The sidecar
`OUT.json` beside it holds what a caller needs to sample clips the way action3d does: class names,
clip_len, frame_interval, short side, crop size and the model name.

Every export is loaded back (onnxruntime, `torch.jit.load`) and its logits compared with PyTorch
eager on a batch of another size; a difference above `parity_tolerance` (1e-4, scaled up for
logits beyond 1 in size: fp32 sums over deep networks differ in the last bits) fails the export.

    trained = load_trained("best.pt", torch.device("cpu"), channels_last=False)   # action3d.commands._checkpoint
    result = export_model(trained, format="onnx", out="model.onnx")
    print(result.max_abs_diff)               # onnxruntime vs PyTorch logits, <= 1e-4
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from action3d import __version__
from action3d.config import DataConfig
from action3d.config.commands import check_export_format
from action3d.data.transforms import normalize
from action3d.engine.inference import TrainedModel
from action3d.errors import Action3dError
from action3d.files import atomic_write

PARITY_TOLERANCE = 1e-4   # on logits up to 1 in size; relative beyond (see parity_tolerance)
INPUT_NAME, OUTPUT_NAMES = "clips", ("logits", "probs")
EXPORT_BATCH, PARITY_BATCH = 2, 3  # parity runs another batch size than the export saw: the batch is dynamic
DEPLOY_EXTRA = "pip install 'action3d[deploy]' (onnx, onnxscript, onnxruntime)"
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx")


class DeployWrapper(nn.Module):
    """uint8 clips `(N, C, T, H, W)` -> `(logits, probabilities)`, each `(N, num_classes)` fp32."""

    def __init__(self, model: nn.Module, *, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        # buffers, not Python lists: the exported graph holds them as initializers
        self.register_buffer("mean", torch.tensor([float(m) for m in mean], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([float(s) for s in std], dtype=torch.float32))

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalize(clips, self.mean, self.std)             # (N, C, T, H, W) float, as device_batch does
        logits = self.model(x).float()                         # (N, K)
        return logits, logits.softmax(dim=-1)


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    format: str
    size_bytes: int
    max_abs_diff: float         # exported vs PyTorch eager logits
    tolerance: float            # the largest max_abs_diff accepted (parity_tolerance)
    seconds: float


def deploy_model(trained: TrainedModel, data_cfg: DataConfig) -> DeployWrapper:
    """The checkpoint's model in fp32 on the CPU, default memory layout, eval mode, wrapped."""
    model = trained.model.to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format).eval()
    return DeployWrapper(model, mean=data_cfg.mean, std=data_cfg.std).eval()


def example_clips(trained: TrainedModel, data_cfg: DataConfig, *, batch: int, seed: int = 0) -> torch.Tensor:
    """Random uint8 clips `(batch, C, clip_len, crop_size, crop_size)`, the shape the model is exported for."""
    shape = (batch, trained.config.model.in_channels, data_cfg.clip_len, data_cfg.crop_size, data_cfg.crop_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def sidecar_path(out: str | Path) -> Path:
    """`model.onnx` -> `model.onnx.json` (never the model file itself, whatever its name)."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def export_model(trained: TrainedModel, *, format: str, out: str | Path, data_cfg: DataConfig | None = None
                 ) -> ExportResult:
    """Write the model as `format` to `out` and its sidecar to `out.json`; check parity; see the module doc."""
    check_export_format(format)
    data_cfg = trained.config.data if data_cfg is None else data_cfg
    wrapper = deploy_model(trained, data_cfg)
    out = Path(out)
    started = time.perf_counter()
    writer = export_onnx if format == "onnx" else export_torchscript
    writer(wrapper, example_clips(trained, data_cfg, batch=EXPORT_BATCH), out, model_name=model_name(trained))
    seconds = time.perf_counter() - started
    clips = example_clips(trained, data_cfg, batch=PARITY_BATCH, seed=1)
    diff, tolerance = check_parity(wrapper, out, format=format, clips=clips), parity_tolerance(wrapper, clips)
    if not diff <= tolerance:  # also catches NaN
        out.unlink(missing_ok=True)
        raise Action3dError(f"format={format}: the exported logits differ from PyTorch's by {diff:.3g} "
                            f"(> {tolerance:.3g}); nothing was written to out={out}")
    sidecar = write_sidecar(out, trained, data_cfg, format=format, max_abs_diff=diff, tolerance=tolerance)
    return ExportResult(path=out, sidecar=sidecar, format=format, size_bytes=out.stat().st_size,
                        max_abs_diff=diff, tolerance=tolerance, seconds=seconds)


def model_name(trained: TrainedModel) -> str:
    return str(trained.config.model.name or trained.config.model.arch)


# ------------------------------------------------------------------ the two formats

def export_onnx(wrapper: DeployWrapper, clips: torch.Tensor, out: Path, *, model_name: str = "model") -> None:
    """torch's default (dynamo) ONNX exporter, batch dimension dynamic, weights inside the file."""
    _require_onnx()
    try:
        with warnings.catch_warnings(), _quiet_loggers(EXPORTER_LOGGERS):
            warnings.simplefilter("ignore")  # exporter internals (deprecations, tracing notes): not the user's to fix
            program = torch.onnx.export(
                wrapper, (clips,), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    except Exception as err:  # the exporter's multi-line errors -> one line naming the model
        raise Action3dError(f"format=onnx: exporting {model_name} failed: {_first_line(err)}") from None
    # One file (no external weights; our largest preset is ~250 MB, far below protobuf's 2 GB),
    # written atomically like every file action3d keeps.
    atomic_write(out, program.model_proto.SerializeToString())


def export_torchscript(wrapper: DeployWrapper, clips: torch.Tensor, out: Path, *, model_name: str = "model") -> None:
    """`torch.jit.trace`: deprecated in torch 2.14, but what C++ deployments (libtorch) load.

    The trace records one path through the model; the recognizer has no data-dependent control
    flow, so it holds for any batch size of the traced T, H and W.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice, and SlowFast's shape check as a constant
            traced = torch.jit.trace(wrapper, (clips,), check_trace=False)
    except Exception as err:
        raise Action3dError(f"format=torchscript: tracing {model_name} failed: {_first_line(err)}") from None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save's deprecation notice
        torch.jit.save(traced, buffer)
    atomic_write(out, buffer.getvalue())


# ------------------------------------------------------------------ loading back

def check_parity(wrapper: DeployWrapper, path: str | Path, *, format: str, clips: torch.Tensor) -> float:
    """Max |logits difference| between the exported file (loaded back) and PyTorch eager on `clips`."""
    with torch.no_grad():
        expected, _ = wrapper(clips)
    got, _ = run_exported(path, format=format, clips=clips)
    return float(np.abs(got - expected.numpy()).max())


@torch.no_grad()
def parity_tolerance(wrapper: DeployWrapper, clips: torch.Tensor) -> float:
    """`PARITY_TOLERANCE` x max(1, largest |logit| on `clips`): absolute for logits up to 1 in size,
    relative beyond (a 50-layer network with non-local blocks and logits near 60 differs by ~1e-4)."""
    logits, _ = wrapper(clips)
    return PARITY_TOLERANCE * max(1.0, float(logits.abs().max()))


def run_exported(path: str | Path, *, format: str, clips: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(logits, probabilities) of an exported file on uint8 clips, through onnxruntime or torch.jit."""
    if format == "onnx":
        session = onnx_session(path)
        logits, probs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: clips.numpy()})
        return logits, probs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        logits, probs = module(clips)
    return logits.numpy(), probs.numpy()


def onnx_session(path: str | Path, *, threads: int = 0):
    """An onnxruntime CPU session (threads 0: onnxruntime's choice)."""
    _require_onnx()
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise Action3dError(f"format=onnx needs {err.name}: {DEPLOY_EXTRA}") from None


# ------------------------------------------------------------------ sidecar

def sidecar(trained: TrainedModel, data_cfg: DataConfig, *, format: str, file: str, max_abs_diff: float,
            tolerance: float) -> dict[str, Any]:
    channels = trained.config.model.in_channels
    return {
        "model": model_name(trained),
        "classes": list(trained.classes),
        "clip_len": int(data_cfg.clip_len),
        "frame_interval": int(data_cfg.frame_interval),
        "short_side": int(data_cfg.short_side),
        "crop_size": int(data_cfg.crop_size),
        "format": format,
        "file": file,
        "input": {"name": INPUT_NAME, "dtype": "uint8", "layout": "N, C (RGB), T, H, W",
                  "shape": ["batch", channels, int(data_cfg.clip_len), int(data_cfg.crop_size),
                            int(data_cfg.crop_size)]},
        "outputs": {"logits": ["batch", len(trained.classes)], "probs": ["batch", len(trained.classes)]},
        "normalization": {"mean": [float(m) for m in data_cfg.mean], "std": [float(s) for s in data_cfg.std],
                          "applied_inside": True},
        "precision": "fp32",
        "parity_max_abs_diff": max_abs_diff,
        "parity_tolerance": tolerance,
        "checkpoint": trained.path,
        "action3d_version": __version__,
    }


def write_sidecar(out: Path, trained: TrainedModel, data_cfg: DataConfig, *, format: str, max_abs_diff: float,
                  tolerance: float) -> Path:
    path = sidecar_path(out)
    info = sidecar(trained, data_cfg, format=format, file=out.name, max_abs_diff=max_abs_diff, tolerance=tolerance)
    atomic_write(path, json.dumps(info, indent=2) + "\n")
    return path


@contextlib.contextmanager
def _quiet_loggers(names: Sequence[str]) -> Iterator[None]:
    """Only warnings from these loggers while the block runs (the ONNX optimiser logs every pass at INFO)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
