#!/usr/bin/env python
"""Training-step benchmark: action3d's `r3d_18` against torchvision's `r3d_18`, plus other presets.

One training step = forward, cross-entropy loss, backward, SGD step (momentum 0.9, weight decay
1e-4), on the same random batch for every model. action3d's models run as the trainer runs them
(`channels_last_3d` model and input); torchvision's `r3d_18` runs in its default setup
(contiguous layout). Before timing, torchvision's weights are loaded into action3d's `r3d_18`
and both must give the same logits (eval mode, max abs difference < 1e-4).

The machine may be shared and noisy: the models take turns within each repetition (the order
alternates), the table gives medians, and the speed-up is a ratio of medians measured in the
same run. Peak memory is measured in a fresh subprocess per model: on CUDA
`torch.cuda.max_memory_allocated()`, on a CPU the peak resident set (VmHWM) minus the resident
set before the model was built (model, optimizer state, input, activations, gradients).

    python scripts/bench_train.py                      # CPU: batch 4 of 3x8x112x112, fp32
    python scripts/bench_train.py --precision auto     # the trainer's default (bf16 where native) vs torchvision fp32
    python scripts/bench_train.py --quick              # CPU: 3x8x64x64, 3 repetitions
    python scripts/bench_train.py --device cuda        # batch 8 of 3x16x112x112, fp32 and bf16
    python scripts/bench_train.py --models r3d_18 --profile   # where the time goes, per op
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import command_line, format_table, machine_info, median, write_json  # noqa: E402

from action3d.engine.precision import autocast, resolve_precision  # noqa: E402
from action3d.errors import Action3dError  # noqa: E402

PAIRED_PRESET = "r3d_18"          # the preset that has a torchvision twin
TORCHVISION = "torchvision"
PRECISIONS = {"fp32": "32", "bf16": "bf16", "auto": "auto"}   # label -> trainer.precision
TARGET_SPEEDUP_CPU = 3.0          # issue 7: action3d r3d_18 >= 3x torchvision r3d_18 on a CPU
TARGET_AUTO_CPU = 1.8             # issue 14: the default (auto) step >= 1.8x torchvision fp32 on a bf16 CPU
LOGITS_TOLERANCE = 1e-4
CHANNELS_LAST = torch.channels_last_3d


@dataclass
class Contender:
    """One model under test, its optimizer, and its step times per precision."""

    impl: str                     # "action3d" | "torchvision"
    preset: str
    channels_last: bool
    model: nn.Module
    optimizer: torch.optim.Optimizer
    times: Dict[str, List[float]] = field(default_factory=dict)
    flops: int = 0                # FLOPs of one training step (forward and backward), torch's count

    @property
    def name(self) -> str:
        return f"{self.impl} {self.preset}"


# ------------------------------------------------------------------ models and inputs


def compose_model_config(preset: str, num_classes: int):
    """The `model` node of `action3d train model=PRESET model.num_classes=N`, validated."""
    from action3d.commands._hydra import typed_config

    try:
        return typed_config("train", [f"model={preset}", f"model.num_classes={num_classes}"]).model
    except Action3dError as err:
        raise Action3dError(f"--models {preset}: {err}") from None


def build_action3d(preset: str, num_classes: int, device: torch.device) -> nn.Module:
    from action3d.models import build_model

    model = build_model(compose_model_config(preset, num_classes)).to(device)
    return model.to(memory_format=CHANNELS_LAST)      # as the trainer runs it


def build_torchvision(num_classes: int, device: torch.device) -> nn.Module:
    from torchvision.models.video import r3d_18

    return r3d_18(num_classes=num_classes).to(device)  # default setup: contiguous layout


def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial BN statistics and affine terms, so that the logits check covers BN mapping."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm3d):
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def make_batch(args: argparse.Namespace, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(args.seed)
    clips = torch.randn(args.batch, 3, args.frames, args.size, args.size, generator=generator)  # (N, C, T, H, W)
    labels = torch.randint(0, args.num_classes, (args.batch,), generator=generator)
    return clips.to(device), labels.to(device)


def build_contenders(args: argparse.Namespace, device: torch.device) -> List[Contender]:
    """action3d's presets in `channels_last_3d`; after `r3d_18`, torchvision's twin (contiguous)."""
    torch.manual_seed(args.seed)
    contenders = []
    for preset in args.models:
        model = build_action3d(preset, args.num_classes, device)
        contenders.append(Contender("action3d", preset, True, model, make_optimizer(model)))
        if preset == PAIRED_PRESET:
            model = build_torchvision(args.num_classes, device)
            contenders.append(Contender(TORCHVISION, preset, False, model, make_optimizer(model)))
    return contenders


def pair_of(contenders: Sequence[Contender]) -> Optional[Tuple[Contender, Contender]]:
    ours = [c for c in contenders if c.preset == PAIRED_PRESET and c.impl == "action3d"]
    theirs = [c for c in contenders if c.impl == TORCHVISION]
    return (ours[0], theirs[0]) if ours and theirs else None


# ------------------------------------------------------------------ same weights, same logits


@torch.no_grad()
def check_same_logits(ours: nn.Module, theirs: nn.Module, clips: torch.Tensor, seed: int) -> Dict[str, Any]:
    """Load torchvision's (BN-randomised) weights into ours; compare eval-mode fp32 logits."""
    from action3d.models.weights import load_torchvision_video

    randomize_batchnorm(theirs, torch.Generator().manual_seed(seed + 1))
    theirs_state = {k: v.cpu() for k, v in theirs.state_dict().items()}
    load_torchvision_video(ours, theirs_state, log=lambda line: print(f"  {line}"))
    ours.eval()
    theirs.eval()
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False           # exact fp32 on CUDA for the comparison
    try:
        ours_logits = ours(clips.contiguous(memory_format=CHANNELS_LAST)).float()
        theirs_logits = theirs(clips).float()
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
        ours.train()
        theirs.train()
    diff = (ours_logits - theirs_logits).abs().max().item()
    return {"max_abs_diff": diff, "max_abs_logit": theirs_logits.abs().max().item(),
            "tolerance": LOGITS_TOLERANCE, "passed": diff < LOGITS_TOLERANCE}


# ------------------------------------------------------------------ one training step, timed


def resolved(label: str, device: torch.device) -> str:
    """The trainer.precision a label runs as (auto: what the trainer would pick on this device)."""
    return resolve_precision(PRECISIONS[label], device)[0]


def precisions_of(impl: str, labels: Sequence[str]) -> List[str]:
    """torchvision has no `auto`: it is the fp32 peer of action3d's default."""
    if impl != TORCHVISION:
        return list(labels)
    return list(dict.fromkeys("fp32" if p == "auto" else p for p in labels))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, clips: torch.Tensor, labels: torch.Tensor,
               *, channels_last: bool, precision: str, device: torch.device) -> None:
    x = clips.contiguous(memory_format=CHANNELS_LAST) if channels_last else clips  # the trainer does this per batch
    with autocast(resolved(precision, device), device):
        logits = model(x)                                                        # (N, num_classes)
        loss = F.cross_entropy(logits.float(), labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def timed(run: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run_interleaved(contenders: List[Contender], batch: Tuple[torch.Tensor, torch.Tensor],
                    args: argparse.Namespace, device: torch.device) -> None:
    """Warm-up steps, then `repeats` rounds in which every (model, precision) takes one step."""
    jobs = [(c, p) for c in contenders for p in precisions_of(c.impl, args.precision)]
    for c, p in jobs:
        c.times[p] = []
        for i in range(max(1, args.warmup)):
            counter = FlopCounterMode(display=False) if i == 0 else contextlib.nullcontext()
            try:
                with counter:           # the first warm-up step also counts the step's FLOPs
                    train_step(c.model, c.optimizer, *batch, channels_last=c.channels_last, precision=p, device=device)
            except (RuntimeError, ValueError) as err:  # e.g. an input too small for the model's strides
                raise Action3dError(f"{c.name} cannot train on batch {args.batch} x 3x{args.frames}x{args.size}x"
                                    f"{args.size}: {str(err).strip().splitlines()[0]}; use a larger "
                                    f"--batch, --frames or --size") from None
            if i == 0:
                c.flops = counter.get_total_flops()
    for rep in range(args.repeats):
        order = jobs if rep % 2 == 0 else jobs[::-1]      # alternate, so drift hits both sides alike
        for c, p in order:
            step = functools.partial(train_step, c.model, c.optimizer, *batch, channels_last=c.channels_last,
                                     precision=p, device=device)
            c.times[p].append(timed(step, device))
        print(f"  repetition {rep + 1}/{args.repeats}: "
              + ", ".join(f"{c.name} {p} {c.times[p][-1] * 1e3:.0f} ms" for c, p in jobs), flush=True)


# ------------------------------------------------------------------ peak memory (fresh process per model)


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def probe_peak_mib(args: argparse.Namespace) -> float:
    """In this (fresh) process: build one model, take two steps, return its peak memory in MiB."""
    device = torch.device(args.device)
    impl, preset = args.probe_memory.split(":")
    baseline_kib = _status_kib("VmRSS") if device.type == "cpu" else 0
    torch.manual_seed(args.seed)
    if impl == TORCHVISION:
        model, channels_last = build_torchvision(args.num_classes, device), False
    else:
        model, channels_last = build_action3d(preset, args.num_classes, device), True
    optimizer = make_optimizer(model)
    clips, labels = make_batch(args, device)
    for _ in range(2):      # the second step holds the momentum buffers during backward
        train_step(model, optimizer, clips, labels, channels_last=channels_last,
                   precision=args.precision[0], device=device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return (_status_kib("VmHWM") - baseline_kib) / 1024


def measure_peak_mib(contender: Contender, precision: str, args: argparse.Namespace) -> Optional[float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", f"{contender.impl}:{contender.preset}",
               "--device", args.device, "--batch", str(args.batch), "--frames", str(args.frames),
               "--size", str(args.size), "--num-classes", str(args.num_classes), "--seed", str(args.seed),
               "--precision", precision]
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  peak memory of {contender.name} {precision}: probe failed: "
              f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"]


# ------------------------------------------------------------------ profile (why a target is missed)


def print_profiles(contenders: Sequence[Contender], batch, args: argparse.Namespace, device: torch.device) -> None:
    """Top ops of one step per model, and convolutions by shape (which layer's forward/backward costs)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort_key = "self_device_time_total" if cuda else "self_cpu_time_total"
    conv_key = "device_time_total" if cuda else "self_cpu_time_total"   # on CUDA the kernels are children
    for c in contenders:
        p = args.precision[0]
        with profile(activities=activities, record_shapes=True) as prof:
            train_step(c.model, c.optimizer, *batch, channels_last=c.channels_last, precision=p, device=device)
        print(f"\nprofile of one step: {c.name} ({'channels_last_3d' if c.channels_last else 'contiguous'}, {p})")
        print(prof.key_averages().table(sort_by=sort_key, row_limit=10))
        convs = [e for e in prof.key_averages(group_by_input_shape=True)
                 if e.key in ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::cudnn_convolution")]
        print(f"  convolutions by input shape ({conv_key}, calls, shapes of the first inputs):")
        for e in sorted(convs, key=lambda e: -getattr(e, conv_key))[:10]:
            shapes = [s for s in e.input_shapes if s][:3]
            print(f"  {e.key:28s} {getattr(e, conv_key) / 1e3:8.1f} ms  x{e.count}  {shapes}")


# ------------------------------------------------------------------ report


COLUMNS = [("model", "model", ""), ("layout", "layout", ""), ("precision", "precision", ""),
           ("step ms (median)", "step_ms_median", ".0f"), ("min", "step_ms_min", ".0f"), ("max", "step_ms_max", ".0f"),
           ("clips/s", "clips_per_s", ".2f"), ("GFLOP/step", "gflop_per_step", ".0f"),
           ("GFLOP/s", "gflop_per_s", ".0f"),
           ("peak MiB", "peak_mib", ".0f"), ("vs torchvision", "vs_torchvision", ".2f")]


def result_rows(contenders: Sequence[Contender], args: argparse.Namespace,
                peaks: Dict[Tuple[str, str], Optional[float]]) -> List[Dict[str, Any]]:
    rows = []
    reference = {p: median(c.times[p]) for c in contenders if c.impl == TORCHVISION for p in c.times}
    reference["auto"] = reference.get("fp32")               # the default is compared with torchvision fp32
    device = torch.device(args.device)
    for c in contenders:
        for p, times in c.times.items():
            step = median(times)
            paired = c.preset == PAIRED_PRESET and reference.get(p) is not None
            rows.append({"model": c.name, "impl": c.impl, "preset": c.preset,
                         "layout": "channels_last_3d" if c.channels_last else "contiguous", "precision": p,
                         "runs_as": resolved(p, device),
                         "step_ms_median": step * 1e3, "step_ms_min": min(times) * 1e3,
                         "step_ms_max": max(times) * 1e3, "step_ms_all": [t * 1e3 for t in times],
                         "clips_per_s": args.batch / step, "gflop_per_step": c.flops / 1e9,
                         "gflop_per_s": c.flops / 1e9 / step, "peak_mib": peaks.get((c.name, p)),
                         "vs_torchvision": reference[p] / step if paired else None})
    return rows


def speedups(pair: Optional[Tuple[Contender, Contender]], device: torch.device) -> Dict[str, Any]:
    """action3d r3d_18 / torchvision r3d_18 per precision: ratio of medians and per-repetition ratios."""
    if pair is None:
        return {}
    ours, theirs = pair
    out = {}
    for p in ours.times:
        peer = theirs.times["fp32" if p == "auto" else p]
        per_rep = [t / o for o, t in zip(ours.times[p], peer)]
        ratio = median(peer) / median(ours.times[p])
        target = None
        if device.type == "cpu" and p == "fp32":
            target = TARGET_SPEEDUP_CPU
        elif device.type == "cpu" and p == "auto" and resolved("auto", device) == "bf16":
            target = TARGET_AUTO_CPU
        out[p] = {"speedup": ratio, "runs_as": resolved(p, device), "versus": "torchvision fp32" if p == "auto"
                  else f"torchvision {p}", "per_repetition_min": min(per_rep), "per_repetition_max": max(per_rep),
                  "speedup_of_fastest": min(peer) / min(ours.times[p]),
                  "target": target, "target_met": None if target is None else ratio >= target}
    return out


def summary_lines(ratios: Dict[str, Any]) -> List[str]:
    lines = []
    for p, r in ratios.items():
        what = f"{p} (runs as {r['runs_as']})" if p == "auto" else p
        line = (f"r3d_18 {what}: action3d is {r['speedup']:.2f}x {r['versus']} (medians; per repetition "
                f"{r['per_repetition_min']:.2f}x..{r['per_repetition_max']:.2f}x, fastest steps "
                f"{r['speedup_of_fastest']:.2f}x)")
        if r["target"] is not None:
            line += f"; target >= {r['target']:g}x on CPU: {'met' if r['target_met'] else 'NOT met'}"
        elif p == "auto" and r["runs_as"] == "32":
            line += "; this CPU has no native bf16, so the default stays fp32"
        lines.append(line)
    return lines


# ------------------------------------------------------------------ command line


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--models", default="r3d_18,i3d_r50,slowfast_r50",
                        help="comma-separated model presets (model=NAME); r3d_18 also runs torchvision's twin")
    parser.add_argument("--precision", default=None,
                        help="comma-separated: fp32,bf16,auto (auto: the trainer's default, compared with "
                             "torchvision fp32; default: fp32 on CPU, fp32,bf16 on CUDA)")
    parser.add_argument("--batch", type=int, default=None, help="clips per step (CPU 4, CUDA 8)")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (CPU 8, CUDA 16)")
    parser.add_argument("--size", type=int, default=None, help="frame height and width (112; --quick on CPU: 64)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per model (CPU 5, CUDA 20; --quick 3)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per model first, at least 1 (CPU 1, CUDA 3)")
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller input and fewer repetitions")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of one step per model")
    parser.add_argument("--out", default="bench_results/train.json")
    parser.add_argument("--probe-memory", default=None, help=argparse.SUPPRESS)  # internal: IMPL:PRESET
    args = parser.parse_args(argv)
    return _fill_defaults(args, parser)


def _fill_defaults(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    cuda = args.device == "cuda"
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.precision = [p.strip() for p in (args.precision or ("fp32,bf16" if cuda else "fp32")).split(",")]
    for p in args.precision:
        if p not in PRECISIONS:
            parser.error(f"--precision {p}: expected fp32, bf16 or auto")
    defaults = {"batch": 8 if cuda else 4, "frames": 16 if cuda else 8,
                "size": 64 if args.quick and not cuda else 112,
                "repeats": (5 if cuda else 3) if args.quick else (20 if cuda else 5), "warmup": 3 if cuda else 1}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("batch", "frames", "size", "repeats", "num_classes"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} {getattr(args, key)}: must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.probe_memory:
            print(json.dumps({"peak_mib": probe_peak_mib(args)}))
            return 0
        return run(args)
    except Action3dError as err:
        print(f"bench_train: error: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    machine = machine_info()
    where = machine['cuda_device'] or machine['cpu']
    print(f"training step on {device} ({where}, {machine['torch_threads']} threads): "
          f"batch {args.batch} x 3x{args.frames}x{args.size}x{args.size}, {','.join(args.precision)}, "
          f"{args.repeats} repetitions after {args.warmup} warm-up, SGD, cross-entropy over {args.num_classes} classes")
    contenders = build_contenders(args, device)
    batch = make_batch(args, device)
    report: Dict[str, Any] = {
        "benchmark": "train", "command": command_line(), "machine": machine,
        "settings": {"device": args.device, "batch": args.batch, "clip": [3, args.frames, args.size, args.size],
                     "precisions": args.precision, "repeats": args.repeats, "warmup": args.warmup,
                     "num_classes": args.num_classes, "loss": "cross_entropy",
                     "optimizer": "SGD(lr=0.01, momentum=0.9, weight_decay=1e-4)",
                     "cudnn_benchmark": device.type == "cuda",
                     "memory": ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
                                "VmHWM - VmRSS before building the model") + ", fresh process, 2 steps"}}

    pair = pair_of(contenders)
    if pair is not None:
        check = check_same_logits(pair[0].model, pair[1].model, batch[0], args.seed)
        report["logits_check"] = check
        print(f"same weights, eval mode: max |logits difference| = {check['max_abs_diff']:.2e} "
              f"(logits up to {check['max_abs_logit']:.2f}; tolerance {LOGITS_TOLERANCE:g}): "
              f"{'OK' if check['passed'] else 'FAILED'}")
        if not check["passed"]:
            write_json(args.out, report)
            print("action3d r3d_18 and torchvision r3d_18 disagree: not timing them", file=sys.stderr)
            return 1

    run_interleaved(contenders, batch, args, device)
    peaks: Dict[Tuple[str, str], Optional[float]] = {}
    if not args.no_memory:
        print("peak memory (a fresh process per model) ...", flush=True)
        for c in contenders:
            for p in args.precision:
                peaks[(c.name, p)] = measure_peak_mib(c, p, args)

    rows = result_rows(contenders, args, peaks)
    ratios = speedups(pair, device)
    print()
    print(format_table(rows, COLUMNS))
    for line in summary_lines(ratios):
        print(line)
    if args.no_memory:
        print("(peak memory skipped: --no-memory)")
    report.update(results=rows, speedup=ratios)
    print(f"wrote {write_json(args.out, report)}")
    if args.profile:
        print_profiles([c for c in contenders if c.preset == PAIRED_PRESET] or contenders, batch, args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
