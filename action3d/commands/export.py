"""`action3d export ckpt=PATH format=onnx|torchscript out=PATH`: a deployable fp32 model + sidecar JSON.

The model takes uint8 clips `(N, C, T, H, W)` and returns (logits, probabilities); `OUT.json`
beside it holds the class names and the sampling (`action3d.engine.export`). Data overrides given
on the command line (`data.clip_len=16 ...`) change the exported input shape and the sidecar.
"""
from __future__ import annotations

from action3d.commands import _checkpoint, _hydra
from action3d.config import ExportConfig


def run(cfg: ExportConfig):
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    import torch

    from action3d.engine.export import PARITY_TOLERANCE, export_model

    trained = _checkpoint.load_trained(cfg.ckpt, torch.device("cpu"), channels_last=False)
    data_cfg = _checkpoint.run_data(trained.config.data, cfg.data, _hydra.task_overrides())
    result = export_model(trained, format=cfg.format, out=cfg.out, data_cfg=data_cfg)
    shape = f"(N, {trained.config.model.in_channels}, {data_cfg.clip_len}, {data_cfg.crop_size}, {data_cfg.crop_size})"
    print(f"model        {result.path} ({result.format}, fp32, {result.size_bytes / 2**20:.1f} MiB, "
          f"{result.seconds:.1f} s)")
    print(f"input        clips uint8 {shape}, N dynamic; normalised inside the model")
    print(f"outputs      logits, probs (N, {len(trained.classes)}): {', '.join(trained.classes[:4])}"
          f"{', ...' if len(trained.classes) > 4 else ''}")
    print(f"parity       max |logits - PyTorch| = {result.max_abs_diff:.2e} "
          f"(accepted up to {PARITY_TOLERANCE:g} x max(1, |logits|) = {result.tolerance:.1e})")
    print(f"sidecar      {result.sidecar}")
    return result
