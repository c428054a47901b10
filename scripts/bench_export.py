#!/usr/bin/env python
"""Exported model vs PyTorch eager: onnxruntime CPU latency and file size, per preset.

For each preset the model (random weights, eval mode, fp32) is wrapped as `action3d export` wraps
it (uint8 clips in, normalisation inside, logits and probabilities out), exported to ONNX, loaded
in an onnxruntime CPU session, and checked against PyTorch eager (max |logits difference|). Then
the two run the same uint8 batch in interleaved rounds (eager, onnxruntime, eager, ...: a shared,
noisy machine moves both alike) with the same number of threads; the table shows median latency,
the eager/onnxruntime latency ratio, and the file sizes: the ONNX file against the PyTorch weights
(the model's state dict saved with torch.save).

    python scripts/bench_export.py                          # tiny 8x64x64 and r3d_18 16x112x112, batch 1
    python scripts/bench_export.py --models tiny --batch 4 --threads 2
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# As `action3d` sets it (before torch starts OpenMP): spinning OpenMP threads slow every call
# several times over on a crowded CPU, and would make PyTorch's side of the comparison look worse.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import command_line, format_table, machine_info, median, write_json  # noqa: E402

from action3d.errors import Action3dError  # noqa: E402

# preset -> its usual input (C, T, H, W): tiny as the demo trains it, r3d_18 as torchvision's recipe
INPUTS = {"tiny": (3, 8, 64, 64), "r3d_18": (3, 16, 112, 112)}
DEFAULT_INPUT = (3, 16, 112, 112)
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny,r3d_18", type=lambda s: [m for m in s.split(",") if m])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds per contender")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch and onnxruntime threads (0: torch's default)")
    parser.add_argument("--frames", type=int, help="override T of every preset's input")
    parser.add_argument("--size", type=int, help="override H=W of every preset's input")
    parser.add_argument("--quick", action="store_true", help="3 rounds after 1 warm-up (a smoke test)")
    parser.add_argument("--out", default="bench_results/export.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1
    return args


def build_wrapper(preset: str, num_classes: int):
    """The preset (random weights, BN statistics randomised so normalisation matters) as exported."""
    from action3d.commands._hydra import typed_config
    from action3d.engine.export import DeployWrapper
    from action3d.models import build_model

    try:
        model_cfg = typed_config("train", [f"model={preset}", f"model.num_classes={num_classes}"]).model
    except Action3dError as err:
        raise Action3dError(f"--models {preset}: {err}") from None
    model = build_model(model_cfg, log=lambda _: None).eval()
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            with torch.no_grad():
                module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
    return DeployWrapper(model, mean=MEAN, std=STD).eval()


def state_dict_bytes(model: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def interleaved_ms(runs: dict[str, Callable[[], Any]], *, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each run, taking turns round by round."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def bench_preset(preset: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from action3d.engine.export import check_parity, export_onnx, onnx_session

    channels, frames, height, width = INPUTS.get(preset, DEFAULT_INPUT)
    frames, height = args.frames or frames, args.size or height
    width = args.size or width
    wrapper = build_wrapper(preset, args.num_classes)
    clips = torch.randint(0, 256, (args.batch, channels, frames, height, width), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(1))                   # (N, C, T, H, W)
    path = folder / f"{preset}.onnx"
    started = time.perf_counter()
    export_onnx(wrapper, clips, path, model_name=preset)
    export_s = time.perf_counter() - started
    diff = check_parity(wrapper, path, format="onnx", clips=clips)
    session = onnx_session(path, threads=torch.get_num_threads())
    feed = {"clips": clips.numpy()}

    def eager():
        with torch.no_grad():
            wrapper(clips)

    times = interleaved_ms({"eager": eager, "onnxruntime": lambda: session.run(None, feed)},
                           repeats=args.repeats, warmup=args.warmup)
    eager_ms, ort_ms = median(times["eager"]), median(times["onnxruntime"])
    eager_mib, onnx_mib = state_dict_bytes(wrapper.model) / 2**20, path.stat().st_size / 2**20
    return {"model": preset, "input": [args.batch, channels, frames, height, width], "export_s": round(export_s, 2),
            "max_abs_diff": diff, "eager_ms": eager_ms, "onnxruntime_ms": ort_ms, "speedup": eager_ms / ort_ms,
            "eager_ms_all": times["eager"], "onnxruntime_ms_all": times["onnxruntime"],
            "pytorch_mib": eager_mib, "onnx_mib": onnx_mib, "size_ratio": onnx_mib / eager_mib}


COLUMNS = [("model", "model", ""), ("input (N,C,T,H,W)", "input_text", ""), ("eager ms", "eager_ms", ".1f"),
           ("onnxruntime ms", "onnxruntime_ms", ".1f"), ("eager / ort", "speedup", ".2f"),
           ("PyTorch MiB", "pytorch_mib", ".2f"), ("ONNX MiB", "onnx_mib", ".2f"),
           ("ONNX / PyTorch", "size_ratio", ".3f"), ("max |diff|", "max_abs_diff", ".1e"),
           ("export s", "export_s", ".1f")]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Action3dError as err:
        print(f"bench_export: error: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info()
    print(f"onnxruntime CPU vs PyTorch eager ({machine['cpu']}, {torch.get_num_threads()} threads each): "
          f"uint8 batch {args.batch}, fp32, {args.repeats} interleaved rounds after {args.warmup} warm-up")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        for preset in args.models:
            row = bench_preset(preset, args, Path(folder))
            row["input_text"] = "x".join(str(v) for v in row["input"])
            rows.append(row)
    print(format_table(rows, COLUMNS))
    for row in rows:
        print(f"{row['model']}: onnxruntime is {row['speedup']:.2f}x PyTorch eager's speed; the ONNX file is "
              f"{row['size_ratio']:.3f}x the PyTorch weights ({row['onnx_mib']:.2f} vs {row['pytorch_mib']:.2f} MiB)")
    report = {"benchmark": "export", "command": command_line(), "machine": machine,
              "settings": {"batch": args.batch, "repeats": args.repeats, "warmup": args.warmup,
                           "threads": torch.get_num_threads(), "num_classes": args.num_classes, "precision": "fp32",
                           "pytorch_file": "state_dict saved with torch.save", "onnx_exporter": "torch.onnx dynamo"},
              "results": [{k: v for k, v in row.items() if k != "input_text"} for row in rows]}
    print(f"report: {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
