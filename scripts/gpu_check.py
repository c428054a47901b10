#!/usr/bin/env python
"""GPU check: one run that answers what decides action3d's GPU defaults, saved as it goes.

    python3 scripts/gpu_check.py                          # every section, <= 5 minutes (--budget-s 300)
    python3 scripts/gpu_check.py --only ceiling,nvdec     # some sections (or CLI checks: --only fp32,compile)
    python3 scripts/gpu_check.py --only ceiling_compile   # torch.compile for every ceiling preset
    python3 scripts/gpu_check.py --device cpu --quick     # every section but nvdec on the CPU, < 30 s (its test)
    python3 scripts/gpu_check.py --carry .whl             # here: the wheels the GPU machine lacks (< 60 MiB)

The GPU machine has torch and torchvision but no PyAV, Hydra or OmegaConf and no package index:
`--carry DIR` (run where PyPI is reachable) downloads their Python 3.12 manylinux x86-64 wheels
and builds antlr4-python3-runtime's, and prints the one command line that installs them there
and runs this check (docs/tutorials/multi-gpu.md#gpu-check).

Sections (one top-level key of the JSON each, beside the torch, CUDA, cuDNN and driver versions):

    ceiling      model-only training clips/s on synthetic tensors: r3d_18, i3d_r50, slowfast_r50,
                 r2plus1d_18, ptv/x3d_m (a preset not in this tree is skipped, with the reason) at
                 the preset's input size, batch 32 (halved on out-of-memory), bf16 and fp32,
                 channels_last on and off; torch.compile for r3d_18 (section ceiling_compile;
                 every preset with --only ceiling_compile)
    correctness  bf16 against fp32 logits on 64 random clips per preset: passes at
                 max|d| / max|fp32| <= 2e-2 with equal top-1; a profiled training step shows no slow
                 fallback kernel (slow_conv3d, slow_conv_dilated3d, conv_depthwise3d, vol2col, im2col)
    nvdec        a probe decodes one frame with h264_cuvid (else "unavailable" and why); then
                 frames/s and CPU s per frame at 128 and 256 px with 1, 4 and 8 concurrent decoders,
                 against the CPU decoder, and whether the decoded planes equal the CPU decoder's
    loader       clips/s of torchvision-protocol clips (16 frames at 15 fps, 112 px) with 4, 8 and
                 15 loader workers on prepared video, and on video prepared at 15 fps where this tree
                 can prepare it
    paths        the CLI checks: fp32, bf16, fp16 + GradScaler, channels_last, compile, eval under
                 torchrun, bench_train.py, SyncBN at world size 1 (in process, NCCL); DDP + SyncBN
                 over NCCL only with 2 or more GPUs
    verdict      per preset: loader-bound or GPU-bound, and the loader cores it needs at its ceiling

Every section runs isolated (on CUDA in a process of its own, killed at its share of the budget;
on a CPU in this process) and a failure is recorded with its one-line error while the run goes
on. The JSON (--out) is rewritten after every measurement, so a run stopped at its time limit
still returns what it measured. On a machine without CUDA the check says so in one line and exits
0 (unless --device cpu or --carry). Exit status 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Only the standard library at module level: `--carry` runs without torch, and the decoder
# processes of the nvdec section (spawned) import this module with PyAV alone.
ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))  # the sections import _bench_common (lazily: it imports torch)
DEFAULT_OUT = "bench_results/gpu_check.json"
BATCH = 4              # clips per process and step (the CLI checks)
TRAIN_PER_CLASS = 2    # x number of GPUs, so that every DDP process gets 4 steps
CLASSES = 8            # the synthetic set's default

# Sections in the order a default run takes them (the most decisive first), with their share of
# the time budget (seconds of the default 300; what a section leaves unused goes to the later ones).
SECTION_SHARES = {"correctness": 35, "ceiling": 95, "ceiling_compile": 45, "nvdec": 30, "loader": 45,
                  "paths": 50, "verdict": 0}
SECTIONS = tuple(SECTION_SHARES)
TOP_LEVEL = ("ceiling", "correctness", "nvdec", "loader", "paths", "verdict")   # ceiling_compile: ceiling.compile
DEFAULT_BUDGET_S = 300.0
CHILD_GRACE_S = 20.0   # a section's process may run this long past its share (its last step, the save)

CEILING_PRESETS = ("r3d_18", "i3d_r50", "slowfast_r50", "r2plus1d_18", "ptv/x3d_m")
# Input size per preset: its clip length (from the preset) and the crop size its reference trains at.
CROP_SIZE = {"r3d_18": 112, "r2plus1d_18": 112, "mc3_18": 112, "r3d_34": 112, "tiny": 64}
DEFAULT_CROP = 224     # the ImageNet-style 3D ResNets, SlowFast, X3D-M
CEILING_BATCH = 32
CEILING_CONFIGS = (("bf16", True), ("bf16", False), ("32", True), ("32", False))   # the default first
SLOW_KERNELS = ("slow_conv3d", "slow_conv_dilated3d", "conv_depthwise3d", "vol2col", "im2col")
CORRECTNESS_CLIPS = 64
CORRECTNESS_TOLERANCE = 2e-2   # max|bf16 - fp32| / max|fp32|
NVDEC_SIZES = {128: (228, 128), 256: (456, 256)}   # short side -> (width, height)
NVDEC_CONCURRENCY = (1, 4, 8)
LOADER_WORKERS = (4, 8, 15)

Verify = Callable[["Check"], str | None]   # None: passed; else why it failed


@dataclass
class Check:
    name: str
    what: str
    argv: list[str]
    run_dir: Path
    verify: Verify
    expect: dict[str, Any] = field(default_factory=dict)
    timeout: int = 600
    skip: str | None = None        # why it cannot run here
    needs: str | None = None       # a check whose output this one reads

    def command(self) -> str:
        return " ".join(self.argv).replace(sys.executable, "python")


# ------------------------------------------------------------------ the checks


def small_data(gpus: int) -> list[str]:
    """Small synthetic clips; as many videos per GPU as one process gets alone."""
    return [f"data.synthetic.train_per_class={TRAIN_PER_CLASS * gpus}", f"data.synthetic.val_per_class={gpus}",
            "data.synthetic.num_frames=12", "data.synthetic.size=32", "data.clip_len=4", "data.frame_interval=2",
            "data.short_side=32", "data.crop_size=32", f"data.batch_size={BATCH}", "data.num_workers=2",
            "model.base_channels=8"]


def torchrun(processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def build_checks(work: Path, *, device: str, gpus: int) -> list[Check]:
    cuda = device == "cuda"
    action3d = ["-m", "action3d"]   # after `python` or after `torchrun`
    base = ["trainer=gpu", f"trainer.device={device}", "trainer.max_epochs=1", "trainer.log_every=1",
            "trainer.precise_bn_batches=2", *small_data(gpus)]
    videos = TRAIN_PER_CLASS * gpus * CLASSES
    checks = []

    def train(name: str, what: str, overrides: list[str], *, precision: str, processes: int = 1,
              timeout: int = 600, skip: str | None = None) -> None:
        run_dir = work / name
        launcher = torchrun(processes) if processes > 1 else [sys.executable]
        argv = [*launcher, *action3d, "train", *base, f"trainer.precision={precision}", *overrides,
                f"hydra.run.dir={run_dir}"]
        expect = {"precision": precision, "steps": videos // (BATCH * processes)}
        checks.append(Check(name, what, argv, run_dir, verify_train, expect, timeout=timeout, skip=skip))

    train("fp32", "fp32, default layout", ["trainer.channels_last=false"], precision="32")
    train("bf16", "bf16 autocast", ["trainer.channels_last=false"], precision="bf16")
    train("fp16_gradscaler", "fp16 autocast + GradScaler", ["trainer.channels_last=false"], precision="16")
    train("channels_last", "channels_last_3d, bf16", ["trainer.channels_last=true"], precision="bf16")
    train("compile", "torch.compile, channels_last_3d, bf16", ["trainer.channels_last=true", "trainer.compile=true"],
          precision="bf16", timeout=1200)
    ddp_skip = None if gpus >= 2 else f"needs 2 or more GPUs for DDP over NCCL ({gpus} visible)"
    train("ddp_syncbn", f"DDP over {'NCCL' if cuda else 'gloo'} on {gpus} GPUs" + (", SyncBN" if cuda else ""),
          ["trainer.sync_bn=true"] if cuda else [], precision="bf16" if cuda else "32", processes=gpus, skip=ddp_skip)

    eval_dir = work / "eval_torchrun"
    checkpoint = work / "fp32" / "best.pt"
    checks.append(Check(
        "eval_torchrun", f"eval under torchrun, {gpus} process{'es' if gpus > 1 else ''}",
        [*torchrun(gpus), *action3d, "eval", f"ckpt={checkpoint}", f"trainer.device={device}",
         f"trainer.precision={'bf16' if cuda else '32'}", "data.num_workers=2", f"hydra.run.dir={eval_dir}"],
        eval_dir, verify_eval, {"processes": gpus, "videos": gpus * CLASSES}, needs="fp32"))

    bench_out = work / "bench_train" / "train.json"
    bench = [sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--device", device, "--quick",
             "--models", "r3d_18", "--out", str(bench_out)]
    if not cuda:   # the script's own test mode on a CPU: a tiny input, fp32 only
        bench += ["--precision", "fp32", "--batch", "1", "--frames", "4", "--size", "32", "--repeats", "1",
                  "--no-memory"]
    checks.append(Check("bench_train", f"scripts/bench_train.py, {device} mode", bench, bench_out.parent,
                        verify_bench, {"precisions": ["fp32", "bf16"] if cuda else ["fp32"]}, timeout=900))
    return checks


# ------------------------------------------------------------------ what each check must have written


class MissingOutput(Exception):
    """A file the check's run should have written is not there."""


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingOutput(f"no {path.name} written")
    return json.loads(path.read_text())


def verify_train(check: Check) -> str | None:
    summary, expect = read_json(check.run_dir / "summary.json"), check.expect
    if summary.get("status") != "finished":
        return f"status {summary.get('status')!r}, expected 'finished'"
    if summary.get("steps") != expect["steps"]:
        return f"{summary.get('steps')} steps, expected {expect['steps']}"
    if str(summary.get("precision")) != expect["precision"]:
        return f"ran at precision {summary.get('precision')}, expected {expect['precision']}"
    if summary.get("best_top1") is None:
        return "no validation result"
    losses = [row["train/loss"] for row in read_jsonl(check.run_dir / "metrics.jsonl") if "train/loss" in row]
    if not losses or not all(math.isfinite(loss) for loss in losses):
        return f"losses {losses}: expected finite values"
    if not (check.run_dir / "best.pt").is_file():
        return "no best.pt"
    return None


def verify_eval(check: Check) -> str | None:
    report = read_json(check.run_dir / "report.json")
    if report.get("processes") != check.expect["processes"]:
        return f"{report.get('processes')} processes, expected {check.expect['processes']}"
    if report.get("num_videos") != check.expect["videos"] or report.get("num_failed"):
        return (f"{report.get('num_videos')} videos scored, {report.get('num_failed')} failed; "
                f"expected {check.expect['videos']} and 0")
    return None


def verify_bench(check: Check) -> str | None:
    report = read_json(check.run_dir / "train.json")
    precisions = sorted({row["precision"] for row in report.get("results", []) if row.get("step_ms_median")})
    if precisions != sorted(check.expect["precisions"]):
        return f"measured {precisions}, expected {check.expect['precisions']}"
    if not report.get("logits_check", {}).get("passed"):
        return f"action3d and torchvision logits differ: {report.get('logits_check')}"
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ running


def failure_line(text: str) -> str:
    """The line that says what went wrong: action3d's one-line error, else the last exception
    line, else the last line that is not a separator (torchrun frames its report with them)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for wanted in (lambda line: line.startswith("action3d ") and ": error: " in line,
                   lambda line: ("Error" in line or "error:" in line) and "ChildFailedError" not in line,
                   lambda line: line.strip("=-* ") != ""):
        found = [line for line in lines if wanted(line)]
        if found:
            return found[-1][:300]
    return ""


def run_check(check: Check, env: dict[str, str], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"check": check.name, "what": check.what, "command": check.command()}
    if check.needs and results.get(check.needs, {}).get("result") != "pass":
        check.skip = f"needs a passing {check.needs} run (its checkpoint)"
    if check.skip:
        return {**row, "result": "skip", "seconds": None, "detail": check.skip}
    print(f"[{check.name}] {row['command']}", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(check.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=check.timeout)
    except subprocess.TimeoutExpired as timeout:
        output = (timeout.stdout or b"").decode(errors="replace") if isinstance(timeout.stdout, bytes) else (
            timeout.stdout or "")
        return {**row, "result": "FAIL", "seconds": round(time.perf_counter() - start, 1),
                "detail": f"timed out after {check.timeout} s", "output_tail": output[-4000:]}
    seconds = round(time.perf_counter() - start, 1)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        reason = f"exit status {done.returncode}: {failure_line(output)}"
    else:
        try:
            reason = check.verify(check)
        except MissingOutput as missing:
            reason = str(missing)
        except (OSError, ValueError, KeyError, TypeError) as err:   # a half-written or foreign file
            reason = f"could not read its output: {type(err).__name__}: {err}"
    row.update(result="pass" if reason is None else "FAIL", seconds=seconds, detail=reason or "",
               returncode=done.returncode)
    if reason is not None:
        row["output_tail"] = output[-4000:]
    return row


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    columns = [("check", "check"), ("what", "what"), ("result", "result"), ("seconds", "seconds"),
               ("detail", "detail")]
    cells = [[("-" if row.get(key) is None else str(row.get(key))) for _, key in columns] for row in rows]
    widths = [max(len(header), *(len(c[i]) for c in cells)) for i, (header, _) in enumerate(columns)]
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    header = line([h for h, _ in columns])
    return "\n".join([header, "-" * len(header), *(line(c) for c in cells)])


# ------------------------------------------------------------------ the run: budget, report, isolation


class Skip(Exception):
    """A section or measurement that cannot run here; the message says why."""


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


@dataclass
class Context:
    """What a section gets: the device, the mode, its deadline, where to work, how to save."""
    device: str                      # cuda | cpu
    quick: bool
    deadline: float                  # time.time() at which the section must be done
    work: Path
    gpus: int = 1
    presets: list[str] | None = None   # None: the section's default presets
    explicit: bool = False           # the section was named in --only
    checks: list[str] | None = None  # paths: the CLI checks to run (None: all)
    save: Callable[[], None] = lambda: None

    def left(self) -> float:
        return self.deadline - time.time()

    @property
    def torch_device(self):
        import torch

        return torch.device("cuda", 0) if self.device == "cuda" else torch.device("cpu")

    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(partial, path)


def run_in_process(name: str, ctx: Context, out: dict[str, Any]) -> None:
    """Run section `name` here, filling `out`; a failure is recorded, not raised."""
    start = time.time()
    out["status"] = "running"
    threads = None
    if ctx.quick and ctx.device == "cpu":   # one torch thread: a shared 2-core machine stalls spinning ones
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
    try:
        SECTION_FUNCTIONS[name](ctx, out)
        if out["status"] == "running":
            out["status"] = "ok"
    except Skip as skip:
        out.update(status="skipped", reason=str(skip))
    except Exception as err:  # noqa: BLE001 - every failure is recorded; the run goes on
        out.update(status="failed", error=one_line(err), traceback=traceback.format_exc()[-3000:])
    finally:
        if threads is not None:
            torch.set_num_threads(threads)
        out["seconds"] = round(time.time() - start, 1)
        cleanup_device(ctx.device)
        ctx.save()


def cleanup_device(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - a broken context: the next section reports it
            pass


def run_in_child(name: str, ctx: Context, out: dict[str, Any], args: argparse.Namespace) -> None:
    """Run section `name` in a process of its own (a crash or a hang ends that process only), killed
    CHILD_GRACE_S after its deadline; what it saved before stays in `out`."""
    start = time.time()
    child_out = ctx.work / f"section-{name}.json"
    child_out.unlink(missing_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--child-out", str(child_out),
            "--deadline", f"{ctx.deadline:.3f}", "--device", ctx.device, "--work", str(ctx.work),
            "--gpus", str(ctx.gpus)]
    argv += ["--quick"] if ctx.quick else []
    argv += ["--presets", ",".join(ctx.presets)] if ctx.presets is not None else []
    argv += ["--checks", ",".join(ctx.checks)] if ctx.checks is not None else []
    argv += ["--explicit"] if ctx.explicit else []
    print(f"[{name}] in its own process, until {time.strftime('%H:%M:%S', time.localtime(ctx.deadline))}",
          flush=True)
    out["status"] = "running"
    stop = max(5.0, ctx.left() + CHILD_GRACE_S)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    timed_out = False
    try:
        import threading

        def pump() -> None:
            for line in proc.stdout:   # the child's progress, shown as it comes
                lines.append(line.rstrip())
                print(f"  {line.rstrip()}", flush=True)
                if child_out.is_file():
                    merge_child(out, child_out)
                    ctx.save()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=stop)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    merge_child(out, child_out)
    if timed_out:
        out.update(status="timed out", error=f"still running {stop:.0f} s after it started (its share of the "
                                              "budget, plus grace); killed, its figures so far kept")
    elif proc.returncode != 0 or out.get("status") in (None, "running"):
        why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        out.update(status="failed", error=f"its process ended ({why}): {failure_line(chr(10).join(lines))}")
    out["seconds"] = round(time.time() - start, 1)
    ctx.save()


def merge_child(out: dict[str, Any], path: Path) -> None:
    try:
        out.update(json.loads(path.read_text()))
    except (OSError, ValueError):   # not written yet, or being replaced
        pass


def child_main(args: argparse.Namespace) -> int:
    """--child NAME: run one section, saving its part to --child-out after every measurement."""
    out: dict[str, Any] = {}
    path = Path(args.child_out)
    ctx = context_from_args(args, deadline=args.deadline)
    ctx.save = lambda: write_json_atomic(path, out)
    run_in_process(args.child, ctx, out)
    return 0


def context_from_args(args: argparse.Namespace, *, deadline: float) -> Context:
    return Context(device=args.device, quick=args.quick, deadline=deadline, work=Path(args.work), gpus=args.gpus or 1,
                   presets=args.presets, explicit=args.explicit, checks=args.checks)


# ------------------------------------------------------------------ presets, models, steps


def preset_plan(names: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """(the presets this tree has, skip rows for the others)."""
    from action3d.config.model_presets import PRESETS

    have = [n for n in names if n in PRESETS]
    missing = [{"preset": n, "status": "skipped",
                "reason": f"model={n} is not in action3d.config.model_presets.PRESETS yet (added by "
                          "'Reproduce the model zoos'); it runs once the preset is in the tree"}
               for n in names if n not in PRESETS]
    return have, missing


def input_shape(name: str, quick: bool) -> tuple[int, int]:
    """(frames, crop size) a preset is trained at."""
    from action3d.config.model_presets import PRESETS

    if quick:
        return 8, 64
    return PRESETS[name].clip_len or 16, CROP_SIZE.get(name, DEFAULT_CROP)


def build(name: str, device, *, channels_last: bool, num_classes: int = 400, quick: bool = False):
    """The preset's model on `device` (the quick CPU run: 8 base channels)."""
    import torch

    from action3d.config.model_presets import PRESETS
    from action3d.models import build_model

    fields = {"num_classes": num_classes, **({"base_channels": 8} if quick else {})}
    model = build_model(PRESETS[name].model_config(**fields), log=lambda *_: None).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def clips(batch: int, frames: int, size: int, device, *, seed: int, channels_last: bool = False):
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((batch, 3, frames, size, size), device=device, generator=generator)
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x


def autocast(precision: str, device):
    import contextlib

    import torch

    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def train_step(model, optimizer, x, y, precision: str, device) -> None:
    import torch.nn.functional as F

    with autocast(precision, device):
        loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def forward_gflop(name: str, frames: int, size: int, quick: bool) -> float | None:
    """GFLOP of one clip's forward pass (FlopCounterMode on the meta device: no arithmetic)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.device("meta"):
            model = build(name, torch.device("meta"), channels_last=False, quick=quick)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty((1, 3, frames, size, size), device="meta"))
        return counter.get_total_flops() / 1e9
    except Exception:  # noqa: BLE001 - a figure to add, not one to fail on
        return None


def out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def measure_training(ctx: Context, name: str, precision: str, channels_last: bool, *, compile: bool = False,
                     gflop: float | None = None) -> dict[str, Any]:
    """Training clips/s of one preset on synthetic tensors: forward, loss, backward, SGD step."""
    frames, size = input_shape(name, ctx.quick)
    batch = 2 if ctx.quick else CEILING_BATCH
    row: dict[str, Any] = {"preset": name, "precision": "fp32" if precision == "32" else precision,
                           "channels_last": channels_last, "compile": compile, "frames": frames, "size": size}
    halved = []
    while True:
        try:
            row.update(_measure(ctx, name, precision, channels_last, compile, batch, frames, size))
            break
        except Exception as err:
            if not (out_of_memory(err) and batch > 1):
                raise
            halved.append(batch)
            cleanup_device(ctx.device)
            batch //= 2
    if halved:
        row["out_of_memory_at_batch"] = halved
    if gflop is not None:
        row["gflop_per_clip_forward"] = round(gflop, 2)
        row["train_tflop_per_s"] = round(3 * gflop * row["clips_per_s"] / 1e3, 2)   # backward ~ 2x forward
    return row


def _measure(ctx: Context, name: str, precision: str, channels_last: bool, compile: bool, batch: int,
             frames: int, size: int) -> dict[str, Any]:
    import torch

    device = ctx.torch_device
    model = build(name, device, channels_last=channels_last, quick=ctx.quick).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    step_model = torch.compile(model) if compile else model
    x = clips(batch, frames, size, device, seed=0, channels_last=channels_last)
    y = torch.randint(0, 400, (batch,), device=device, generator=torch.Generator(device=device).manual_seed(1))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train_step(step_model, optimizer, x, y, precision, device)          # cuDNN's search (and compile) here
    ctx.sync()
    first = time.perf_counter() - start
    warmup, chunk, min_time, max_chunks = (0, 1, 0.0, 1) if ctx.quick else (2, 5, 1.5, 6)
    start = time.perf_counter()
    for _ in range(warmup):
        train_step(step_model, optimizer, x, y, precision, device)
    ctx.sync()
    if warmup:   # steps per timed chunk: ~0.3 s of work between synchronisations, 1 to 10 steps
        chunk = max(1, min(10, round(0.3 / ((time.perf_counter() - start) / warmup))))
    per_step = []
    while len(per_step) < max_chunks and (not per_step or sum(per_step) * chunk < min_time) and (
            not per_step or ctx.left() > 0):
        start = time.perf_counter()
        for _ in range(chunk):
            train_step(step_model, optimizer, x, y, precision, device)
        ctx.sync()
        per_step.append((time.perf_counter() - start) / chunk)
    step_s = sorted(per_step)[len(per_step) // 2]
    row = {"status": "ok", "batch": batch, "first_step_s": round(first, 3), "step_ms": round(step_s * 1e3, 2),
           "step_ms_all": [round(t * 1e3, 2) for t in per_step], "steps_timed": len(per_step) * chunk,
           "clips_per_s": round(batch / step_s, 1)}
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        peak = torch.cuda.max_memory_allocated()
        row.update(peak_memory_gib=round(peak / 2**30, 2), peak_memory_share=round(peak / total, 3))
        if precision == "32":
            row["tf32"] = {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    del model, optimizer, step_model, x, y
    return row


# ------------------------------------------------------------------ ceiling


def section_ceiling(ctx: Context, out: dict[str, Any]) -> None:
    import torch

    torch.backends.cudnn.benchmark = True          # as the trainer sets it on CUDA
    names = ctx.presets or (["tiny"] if ctx.quick else list(CEILING_PRESETS))
    have, missing = preset_plan(names)
    rows: list[dict[str, Any]] = list(missing)
    out.update(what="model-only training clips/s on synthetic tensors (forward, cross-entropy, backward, "
                    "SGD step), the preset's clip length and crop size",
               batch=2 if ctx.quick else CEILING_BATCH, results=rows)
    gflop = {name: forward_gflop(name, *input_shape(name, ctx.quick), ctx.quick) for name in have}
    for precision, channels_last in CEILING_CONFIGS:
        for name in have:
            if ctx.left() < (1 if ctx.quick else 8):
                rows.append({"preset": name, "precision": "fp32" if precision == "32" else precision,
                             "channels_last": channels_last, "status": "skipped", "reason": "time budget spent"})
                continue
            try:
                row = measure_training(ctx, name, precision, channels_last, gflop=gflop[name])
            except Exception as err:  # noqa: BLE001 - one preset's failure is that row's
                row = {"preset": name, "precision": "fp32" if precision == "32" else precision,
                       "channels_last": channels_last, "status": "failed", "error": one_line(err)}
            rows.append(row)
            print(f"  ceiling {name} {row['precision']} channels_last={channels_last}: "
                  f"{row.get('clips_per_s', row.get('error'))} clips/s", flush=True)
            cleanup_device(ctx.device)
            ctx.save()


def section_ceiling_compile(ctx: Context, out: dict[str, Any]) -> None:
    if ctx.quick:
        raise Skip("--quick: no torch.compile")
    import torch

    torch.backends.cudnn.benchmark = True
    names = ctx.presets or (list(CEILING_PRESETS) if ctx.explicit else ["r3d_18"])
    have, missing = preset_plan(names)
    rows: list[dict[str, Any]] = list(missing)
    out.update(what="torch.compile (default mode), bf16, channels_last_3d; first_step_s includes the compile",
               results=rows)
    for name in have:
        if ctx.left() < 20:
            rows.append({"preset": name, "status": "skipped", "reason": "time budget spent"})
            continue
        try:
            row = measure_training(ctx, name, "bf16", True, compile=True,
                                   gflop=forward_gflop(name, *input_shape(name, ctx.quick), ctx.quick))
        except Exception as err:  # noqa: BLE001
            row = {"preset": name, "precision": "bf16", "channels_last": True, "compile": True, "status": "failed",
                   "error": one_line(err)}
        rows.append(row)
        print(f"  compile {name}: {row.get('clips_per_s', row.get('error'))} clips/s", flush=True)
        cleanup_device(ctx.device)
        ctx.save()


# ------------------------------------------------------------------ correctness


RESIDUAL_GAMMA = 0.2   # the last BN of every residual block, for the logit comparison (see section_correctness)
BF16_EPS = 2.0 ** -8   # bf16's relative rounding step (8 significant bits)


def condition(model) -> int:
    """Set the last BatchNorm weight of every residual block to RESIDUAL_GAMMA; returns how many.

    With random weights a deep ResNet is chaotic: perturbing i3d_r50's weights by bf16's
    rounding step moves its fp32 logits by ~30%, so the logits could not tell a wrong kernel
    from amplified rounding. At 0.2 the branches still count (zero, r3d_18's init, would hide
    them from the logits) and the logits of random I3D move ~4%, as bf16's do."""
    from torch import nn

    blocks = [m for m in model.modules() if hasattr(m, "last_bn")]
    for block in blocks:
        nn.init.constant_(block.last_bn().weight, RESIDUAL_GAMMA)
    return len(blocks)


def calibrate_bn(model, batches: list) -> None:
    """BatchNorm running statistics from `batches` (cumulative averages), so that eval-mode
    activations keep their scale through a randomly initialised network."""
    import torch
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    model.eval()


def compare_logits(reference, other) -> dict[str, Any]:
    """bf16 against fp32 logits: relative max difference, top-1 agreement, near ties among the flips."""
    d = (other - reference).abs().max().item()
    scale = reference.abs().max().item()
    top2 = reference.topk(2, dim=1)
    margin = (top2.values[:, 0] - top2.values[:, 1])
    flips = (other.argmax(1) != reference.argmax(1)).nonzero().flatten().tolist()
    relative = d / scale if scale > 0 else math.inf
    return {"max_abs_diff": d, "max_abs_fp32": scale, "relative": relative, "top1_equal": len(reference) - len(flips),
            "clips": len(reference), "top1_flips": len(flips),
            # a flip whose fp32 top-2 margin is under twice the largest difference is a near tie
            "flips_near_ties": sum(margin[i].item() <= 2 * d for i in flips),
            "passed": relative <= CORRECTNESS_TOLERANCE and not flips}


def layer_errors(model, x, device) -> dict[str, Any]:
    """Every Conv3d on its own: bf16 autocast against fp32 on the same fp32 input (the input the
    fp32 forward pass gives it), max |d| / max |fp32| of its output. A wrong bf16 kernel shows
    here at once, without the network's amplification."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    errors: list[tuple[float, str]] = []

    def hook(name):
        def compare(module, inputs, output):
            with autocast("bf16", device):
                low = F.conv3d(inputs[0], module.weight, module.bias, module.stride, module.padding, module.dilation,
                               module.groups).float()
            scale = output.abs().max().item()
            errors.append(((low - output).abs().max().item() / scale if scale > 0 else 0.0, name))
        return compare

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Conv3d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    worst = max(errors, default=(0.0, None))
    return {"convs": len(errors), "max_relative": worst[0], "worst": worst[1],
            "median_relative": sorted(e for e, _ in errors)[len(errors) // 2] if errors else None,
            "passed": worst[0] <= CORRECTNESS_TOLERANCE}


def sensitivity(model, inputs, reference) -> float:
    """How far the fp32 logits move when every weight is perturbed by bf16's rounding step: the
    network's own amplification of rounding, against which the bf16 logits are judged."""
    import copy

    import torch

    perturbed = copy.deepcopy(model)
    generator = torch.Generator(device=reference.device).manual_seed(7)
    with torch.no_grad():
        for param in perturbed.parameters():
            noise = torch.randn(param.shape, device=param.device, generator=generator)
            param.mul_(1 + BF16_EPS * noise)
        moved = torch.cat([perturbed(x).float() for x in inputs])
    del perturbed
    return compare_logits(reference, moved)["relative"]


def profile_step(ctx: Context, model, x, y) -> dict[str, Any]:
    """Kernels of one bf16 channels_last training step: slow fallbacks and the top ones by time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from action3d.config.runtime import cpu_has_native_bf16

    device = ctx.torch_device
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train_step(model, optimizer, x, y, "bf16", device)                  # warm-up (cuDNN's search)
    ctx.sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_step(model, optimizer, x, y, "bf16", device)
        ctx.sync()
    events = prof.key_averages()
    slow = sorted({e.key for e in events if any(k in e.key.lower() for k in SLOW_KERNELS)})
    timed = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    top = sorted(events, key=lambda e: getattr(e, timed), reverse=True)[:8]
    result = {"slow_kernels": slow, "passed": not slow,
              "top": [{"name": e.key[:120], "ms": round(getattr(e, timed) / 1e3, 3)} for e in top]}
    if slow and device.type == "cpu" and not cpu_has_native_bf16():
        # A CPU without AVX512-BF16/AMX has no oneDNN bf16 convolution: ATen's slow_conv3d is the
        # expected path there, not a defect of the step (the check is meant for CUDA's kernels).
        result.update(passed=True, note="expected on this CPU: no native bf16 (AVX512-BF16 or AMX), so bf16 "
                                        "convolutions run ATen's fallback")
    return result


def judge(row: dict[str, Any]) -> tuple[bool, str]:
    """Pass: every conv within tolerance, no slow kernel, and the logits within the issue's
    tolerance with equal top-1, or (flagged) within twice the network's own rounding sensitivity
    with only near-tie flips."""
    logits = row["logits"]
    if not row["layers"]["passed"]:
        return False, f"conv {row['layers']['worst']}: bf16 off by {row['layers']['max_relative']:.3g} of max |fp32|"
    if not row["profile"]["passed"]:
        return False, f"slow kernels {', '.join(row['profile']['slow_kernels'])}"
    if logits["passed"]:
        return True, "logits within tolerance, top-1 equal"
    amplified = logits["relative"] <= 2 * row["sensitivity"] and logits["top1_flips"] == logits["flips_near_ties"]
    if amplified:
        return True, (f"logits off by {logits['relative']:.3g} (tolerance {CORRECTNESS_TOLERANCE:g}) with "
                      f"{logits['top1_flips']} top-1 flips, all near ties: within 2x the network's own rounding "
                      f"sensitivity ({row['sensitivity']:.3g}); every conv within tolerance")
    return False, (f"logits off by {logits['relative']:.3g} with {logits['top1_flips']} top-1 flips "
                   f"({logits['flips_near_ties']} near ties); the network's rounding sensitivity is "
                   f"{row['sensitivity']:.3g}")


def section_correctness(ctx: Context, out: dict[str, Any]) -> None:
    import torch

    names = ctx.presets or (["tiny"] if ctx.quick else list(CEILING_PRESETS))
    have, missing = preset_plan(names)
    rows: list[dict[str, Any]] = list(missing)
    count, batch = (8, 4) if ctx.quick else (CORRECTNESS_CLIPS, 8)
    out.update(what=f"eval-mode logits of {count} random clips: bf16 autocast + channels_last_3d against fp32 (TF32 "
                    f"off); residual blocks' last BN weight {RESIDUAL_GAMMA}, BN statistics calibrated on 2 other "
                    "batches; every Conv3d alone in bf16 against fp32; the network's own sensitivity (fp32 logits "
                    "with weights perturbed by bf16's rounding step); one profiled bf16 training step",
               tolerance=CORRECTNESS_TOLERANCE, slow_kernel_patterns=list(SLOW_KERNELS), results=rows)
    device = ctx.torch_device
    for name in have:
        if ctx.left() < (1 if ctx.quick else 5):
            rows.append({"preset": name, "status": "skipped", "reason": "time budget spent"})
            continue
        row: dict[str, Any] = {"preset": name}
        try:
            frames, size = input_shape(name, ctx.quick)
            row.update(frames=frames, size=size)
            model = build(name, device, channels_last=False, quick=ctx.quick)
            row["residual_blocks_conditioned"] = condition(model)
            calibrate_bn(model, [clips(batch, frames, size, device, seed=100 + i) for i in range(2)])
            inputs = [clips(batch, frames, size, device, seed=i) for i in range(count // batch)]
            tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            try:
                with torch.no_grad():
                    reference = torch.cat([model(x).float() for x in inputs])
                row["layers"] = layer_errors(model, inputs[0], device)
                row["sensitivity"] = sensitivity(model, inputs, reference)
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
            model = model.to(memory_format=torch.channels_last_3d)
            with torch.no_grad(), autocast("bf16", device):
                low = torch.cat([model(x.contiguous(memory_format=torch.channels_last_3d)).float() for x in inputs])
            row["logits"] = compare_logits(reference, low)
            y = torch.randint(0, 400, (batch,), device=device)
            row["profile"] = profile_step(ctx, model.train(), inputs[0].contiguous(
                memory_format=torch.channels_last_3d), y)
            row["passed"], row["detail"] = judge(row)
            row["status"] = "ok"
            del model, inputs, reference, low
        except Exception as err:  # noqa: BLE001
            row.update(status="failed", passed=False, error=one_line(err))
        rows.append(row)
        print(f"  correctness {name}: {'pass' if row.get('passed') else 'FAIL'}: "
              f"{row.get('detail', row.get('error'))}", flush=True)
        cleanup_device(ctx.device)
        ctx.save()
    out["passed"] = all(r.get("passed") for r in rows if r.get("status") == "ok") and not any(
        r.get("status") == "failed" for r in rows)


# ------------------------------------------------------------------ nvdec


def ffmpeg_log_tail(logs: Sequence[tuple[int, str, str]], count: int = 4) -> list[str]:
    """FFmpeg's last messages about the decoder or CUDA (why NVDEC did not open)."""
    wanted = [(name, message) for _, name, message in logs
              if name and ("cuvid" in name or "cuda" in name.lower() or "nv" in name.lower())]
    return [f"[{name}] {message.strip()}" for name, message in wanted[-count:]]


def decode_planes(path: str, decoder: str, *, limit: int | None = None, threads: int = 1):
    """Frames of `path` decoded by `decoder` (h264: FFmpeg's CPU decoder; h264_cuvid: NVDEC), as
    yuv420p arrays (H * 3/2, W), in output order."""
    import av

    container = av.open(path)
    try:
        stream = container.streams.video[0]
        context = av.CodecContext.create(decoder, "r")
        context.extradata = stream.codec_context.extradata
        if decoder == "h264":
            context.thread_count = threads
        frames = []
        for packet in container.demux(stream):
            if not packet.size:    # the demuxer's closing empty packet: flushed below
                continue
            for frame in context.decode(packet):
                frames.append(frame.reformat(format="yuv420p").to_ndarray())
                if limit and len(frames) >= limit:
                    return frames, frame.format.name
        for frame in context.decode(None):
            frames.append(frame.reformat(format="yuv420p").to_ndarray())
        return frames, (frame.format.name if frames else None)
    finally:
        container.close()


def probe_cuvid(path: str) -> dict[str, Any]:
    """Decode one frame with h264_cuvid: {"available": bool, "error", "ffmpeg_log"}."""
    import av
    import av.logging

    if "h264_cuvid" not in av.codecs_available:
        return {"available": False, "error": f"this PyAV {av.__version__} build has no h264_cuvid decoder"}
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with av.logging.Capture() as logs:
            try:
                frames, pix_fmt = decode_planes(path, "h264_cuvid", limit=1)
            except Exception as err:  # noqa: BLE001
                return {"available": False, "error": one_line(err), "ffmpeg_log": ffmpeg_log_tail(logs)}
        if not frames:
            return {"available": False, "error": "h264_cuvid opened but returned no frame",
                    "ffmpeg_log": ffmpeg_log_tail(logs)}
        return {"available": True, "output_format": pix_fmt}
    finally:
        av.logging.set_level(None)


def probe_hwaccel(path: str) -> dict[str, Any]:
    """The other NVDEC route: FFmpeg's h264 decoder with a CUDA hwaccel (av.codec.hwaccel)."""
    try:
        import av
        from av.codec.hwaccel import HWAccel

        container = av.open(path, hwaccel=HWAccel(device_type="cuda", allow_software_fallback=False))
        try:
            frame = next(container.decode(video=0))
            return {"available": True, "output_format": frame.format.name}
        finally:
            container.close()
    except Exception as err:  # noqa: BLE001
        return {"available": False, "error": one_line(err)}


def _decoder_process(path: str, decoder: str, seconds: float, start, results) -> None:
    """One concurrent decoder (a spawned process): decode `path` again and again for `seconds`."""
    import resource

    import av

    start.wait()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, t0, frames = usage.ru_utime + usage.ru_stime, time.perf_counter(), 0
    try:
        while time.perf_counter() - t0 < seconds:
            container = av.open(path)
            stream = container.streams.video[0]
            context = av.CodecContext.create(decoder, "r")
            context.extradata = stream.codec_context.extradata
            if decoder == "h264":
                context.thread_count = 1
            for packet in container.demux(stream):
                if packet.size:
                    frames += len(context.decode(packet))
            frames += len(context.decode(None))
            container.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        results.put({"frames": frames, "wall_s": time.perf_counter() - t0,
                     "cpu_s": usage.ru_utime + usage.ru_stime - cpu0})
    except Exception as err:  # noqa: BLE001
        results.put({"error": one_line(err)})


def decoder_throughput(path: str, decoder: str, concurrent: int, seconds: float) -> dict[str, Any]:
    """frames/s of `concurrent` decoders at once, and CPU seconds per frame (all their threads)."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")   # no CUDA state inherited; each opens its own
    start, results = spawn.Event(), spawn.Queue()
    procs = [spawn.Process(target=_decoder_process, args=(path, decoder, seconds, start, results))
             for _ in range(concurrent)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    start.set()
    got = [results.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    errors = [g["error"] for g in got if "error" in g]
    if errors:
        return {"status": "failed", "error": errors[0]}
    frames = sum(g["frames"] for g in got)
    return {"status": "ok", "frames_per_s": round(sum(g["frames"] / g["wall_s"] for g in got), 1),
            "cpu_s_per_frame": round(sum(g["cpu_s"] for g in got) / max(1, frames), 6), "frames": frames}


def compare_decoders(path: str) -> dict[str, Any]:
    """Are h264_cuvid's planes those of FFmpeg's CPU decoder (H.264 decoding is bit-exact)?"""
    import numpy as np

    cpu, _ = decode_planes(path, "h264")
    gpu, pix_fmt = decode_planes(path, "h264_cuvid")
    result: dict[str, Any] = {"frames_cpu": len(cpu), "frames_nvdec": len(gpu), "nvdec_format": pix_fmt}
    pairs = list(zip(cpu, gpu))
    shapes = {(a.shape, b.shape) for a, b in pairs if a.shape != b.shape}
    if shapes:
        result.update(identical=False, shapes_differ=[str(s) for s in sorted(shapes)][:3])
        return result
    diffs = [int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) for a, b in pairs]
    result.update(identical=len(cpu) == len(gpu) and not any(diffs), max_abs_diff=max(diffs, default=0),
                  frames_differing=sum(d > 0 for d in diffs))
    return result


def section_nvdec(ctx: Context, out: dict[str, Any]) -> None:
    if ctx.device != "cuda":
        raise Skip("NVDEC needs an NVIDIA GPU (--device cpu)")
    try:
        import av
    except ImportError as err:
        raise Skip(f"PyAV is not importable ({err}): install the carried wheels (--carry)") from None
    from _bench_common import write_test_video

    folder = ctx.work / "nvdec"
    videos = {short: str(write_test_video(folder / f"nvdec_{w}x{h}.mp4", width=w, height=h, fps=25, frames=150))
              for short, (w, h) in NVDEC_SIZES.items()}
    out.update(pyav=av.__version__, videos={str(k): Path(v).name for k, v in videos.items()},
               what="6-s 25-fps x264 videos (B-frames, keyframe every 2 s); frames/s summed over concurrent "
                    "decoders (separate processes); CPU s per frame over all their threads; h264 = FFmpeg's "
                    "CPU decoder on one thread; NVDEC frames are copied back to host memory (nv12)")
    out["probe"] = probe_cuvid(videos[128])
    out["hwaccel_probe"] = probe_hwaccel(videos[128])
    ctx.save()
    if not out["probe"]["available"]:
        out.update(status="unavailable", reason=f"h264_cuvid: {out['probe']['error']}")
        return
    rows: list[dict[str, Any]] = []
    out["results"] = rows
    plan = [(short, decoder, n) for short in NVDEC_SIZES for decoder in ("h264_cuvid", "h264")
            for n in NVDEC_CONCURRENCY]
    out["exactness"] = {}
    for short in NVDEC_SIZES:
        try:
            out["exactness"][str(short)] = compare_decoders(videos[short])
        except Exception as err:  # noqa: BLE001
            out["exactness"][str(short)] = {"error": one_line(err)}
        ctx.save()
    for i, (short, decoder, n) in enumerate(plan):
        seconds = max(1.0, min(3.0, (ctx.left() - 5) / max(1, len(plan) - i) - 1.0))
        if ctx.left() < 4:
            rows.append({"short_side": short, "decoder": decoder, "concurrent": n, "status": "skipped",
                         "reason": "time budget spent"})
            continue
        try:
            row = decoder_throughput(videos[short], decoder, n, seconds)
        except Exception as err:  # noqa: BLE001
            row = {"status": "failed", "error": one_line(err)}
        rows.append({"short_side": short, "decoder": decoder, "concurrent": n, **row})
        print(f"  nvdec {decoder} {short} px x{n}: {row.get('frames_per_s', row.get('error'))} frames/s", flush=True)
        ctx.save()


# ------------------------------------------------------------------ loader


def section_loader(ctx: Context, out: dict[str, Any]) -> None:
    try:
        import av  # noqa: F401
        import hydra  # noqa: F401
    except ImportError as err:
        raise Skip(f"{err.name} is not importable: install the carried wheels (--carry)") from None
    import bench_pipeline as bp

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = [1] if ctx.quick else ([w for w in LOADER_WORKERS if w <= cpus - 1] or [max(1, cpus - 1)])
    videos, seconds, batch = (2, 2.0, 2) if ctx.quick else (16, 10.0, 16)
    sources = bp.Sources(ctx.work / "loader", videos=videos, seconds=seconds, workers=max(1, cpus))
    out.update(what="the training loader alone (decode, sample, crop, flip, collate) delivering to an idle main "
                    "process, pin_memory off; clips/s after the first batch and the prefetched ones",
               protocol=bp.PROTOCOL, cpus=cpus, workers=workers, batch_size=batch,
               raw_videos={**bp.RAW, "count": videos, "seconds": seconds}, sources={}, per_core={})
    start = time.time()
    sources.prepared()
    out["prepare_s"] = round(time.time() - start, 1)
    ctx.save()
    for source in ("prepared", "prepared_15fps"):
        if source in sources.missing:
            out["sources"][source] = {"absent": sources.missing[source]}
            continue
        dataset, data_cfg, _, clip = sources.dataset(source, [f"data.batch_size={batch}"])
        rows: list[dict[str, Any]] = []
        out["sources"][source] = {"clip": clip, "videos": len(dataset), "results": rows}
        for i, count in enumerate(workers):
            left = ctx.left()
            if left < (1 if ctx.quick else 6):
                rows.append({"workers": count, "status": "skipped", "reason": "time budget spent"})
                continue
            budget = 1.0 if ctx.quick else min(6.0, left / (2 * (len(workers) - i) + 1))
            try:
                row = {"status": "ok", **bp.loader_rate(dataset, data_cfg, count, batches=10**6, warmup=1,
                                                         seconds=budget)}
            except Exception as err:  # noqa: BLE001
                row = {"workers": count, "status": "failed", "error": one_line(err)}
            rows.append(row)
            print(f"  loader {source} {count} workers: {row.get('clips_per_s', row.get('error'))} clips/s", flush=True)
            ctx.save()
        rates = [r["clips_per_s_per_worker"] for r in rows if r.get("status") == "ok"]
        if rates:
            best = max(r["clips_per_s"] for r in rows if r.get("status") == "ok")
            out["per_core"][source] = {"clips_per_s_per_core": max(rates), "clip": clip, "best_clips_per_s": best}
        ctx.save()


# ------------------------------------------------------------------ paths (the CLI checks) and SyncBN


def syncbn_world1(device_type: str) -> dict[str, Any]:
    """SyncBatchNorm under DDP in a one-process NCCL group: a training step runs and its outputs
    equal plain BatchNorm's (at world size 1 SyncBatchNorm normalises with the local statistics)."""
    import copy

    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    if device_type != "cuda":
        return {"check": "syncbn_world1", "result": "skip", "detail": "SyncBatchNorm has no CPU kernels"}
    start = time.perf_counter()
    device = torch.device("cuda", 0)
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1)
    try:
        reference = build("tiny", device, channels_last=False, quick=True).train()
        model = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(reference)).to(device)
        synced = sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
        ddp = DistributedDataParallel(model, device_ids=[0])
        x = clips(4, 8, 32, device, seed=0)
        y = torch.randint(0, 400, (4,), device=device)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
        with torch.no_grad():
            diff = (ddp(x) - reference(x)).abs().max().item()
        train_step(ddp, optimizer, x, y, "bf16", device)
        torch.cuda.synchronize()
        ok = synced > 0 and diff <= 1e-4
        return {"check": "syncbn_world1", "what": f"SyncBatchNorm ({synced} layers) under DDP, NCCL, world size 1",
                "result": "pass" if ok else "FAIL", "seconds": round(time.perf_counter() - start, 1),
                "detail": "" if ok else f"{synced} SyncBatchNorm layers; max |SyncBN - BN| = {diff:.3g} (<= 1e-4)",
                "max_abs_diff": diff}
    finally:
        dist.destroy_process_group()


def section_paths(ctx: Context, out: dict[str, Any]) -> None:
    checks = build_checks(ctx.work / "paths", device=ctx.device, gpus=ctx.gpus)
    wanted = ctx.checks or (["fp32", "syncbn_world1"] if ctx.quick else [c.name for c in checks] + ["syncbn_world1"])
    rows: list[dict[str, Any]] = []
    out.update(what="the command lines of action3d on this device, a few steps each (tiny model, small synthetic "
                    "clips), and SyncBN at world size 1", results=rows)
    env = {**os.environ, "ACTION3D_CACHE": str(ctx.work / "cache"), "PYTHONUNBUFFERED": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)   # started from inside a torchrun job: the checks start their own
    results: dict[str, dict[str, Any]] = {}
    for check in checks:
        if check.name not in wanted:
            row = {"check": check.name, "what": check.what, "result": "skip", "seconds": None,
                   "detail": "--quick runs fp32 only" if ctx.quick and not ctx.checks else "not selected"}
        elif ctx.left() < 10:
            row = {"check": check.name, "what": check.what, "result": "skip", "seconds": None,
                   "detail": "time budget spent"}
        else:
            check.timeout = int(min(check.timeout, max(10, ctx.left())))
            row = run_check(check, env, results)
        results[check.name] = row
        rows.append(row)
        print(f"  [{check.name}] {row['result']} {row['detail']}", flush=True)
        ctx.save()
    if "syncbn_world1" in wanted:
        try:
            row = syncbn_world1(ctx.device)
        except Exception as err:  # noqa: BLE001
            row = {"check": "syncbn_world1", "result": "FAIL", "detail": one_line(err)}
        rows.append(row)
        print(f"  [syncbn_world1] {row['result']} {row.get('detail', '')}", flush=True)
    out["passed"] = not any(r["result"] == "FAIL" for r in rows)
    out["table"] = format_rows(rows).splitlines()
    ctx.save()


# ------------------------------------------------------------------ verdict


def section_verdict(report: dict[str, Any], cpus: int) -> dict[str, Any]:
    """Per preset: its best bf16 ceiling, and per loader source the cores needed to feed it."""
    ceiling = report.get("ceiling", {})
    rows = [r for r in ceiling.get("results", []) + ceiling.get("compile", {}).get("results", [])
            if r.get("status") == "ok" and r.get("precision") == "bf16"]
    per_core = report.get("loader", {}).get("per_core", {})
    loader_cores = max(1, cpus - 1)   # one core for the training process
    verdict: dict[str, Any] = {
        "what": f"the best bf16 ceiling of each preset against the loader's clips/s per core on this machine "
                f"({loader_cores} loader cores: all but one)", "loader_cores": loader_cores, "presets": []}
    if not rows:
        verdict.update(status="skipped", reason="no ceiling figure (the ceiling section did not run or failed)")
        return verdict
    if not per_core:
        verdict.update(status="skipped", reason="no loader figure (the loader section did not run or failed)")
        return verdict
    for preset in dict.fromkeys(r["preset"] for r in rows):
        best = max((r for r in rows if r["preset"] == preset), key=lambda r: r["clips_per_s"])
        entry: dict[str, Any] = {"preset": preset, "ceiling_clips_per_s": best["clips_per_s"],
                                 "ceiling_config": {k: best[k] for k in ("channels_last", "compile", "batch")},
                                 "sources": {}}
        for source, figure in per_core.items():
            rate = figure["clips_per_s_per_core"]
            feeds = rate * loader_cores
            entry["sources"][source] = {
                "loader_clips_per_s_per_core": round(rate, 1), "loader_clips_per_s": round(feeds, 1),
                "bound": "loader-bound" if feeds < best["clips_per_s"] else "GPU-bound",
                "cores_needed": round(best["clips_per_s"] / rate, 1)}
        frames, size = best.get("frames"), best.get("size")
        if (frames, size) != (16, 112):
            larger = frames * size * size > 16 * 112 * 112
            entry["note"] = (f"the loader figures are for 16-frame 112-px clips; this preset trains on "
                             f"{frames}x{size}x{size} clips, which cost the loader {'more' if larger else 'less'}: "
                             f"its cores needed are {'a lower' if larger else 'an upper'} bound")
        verdict["presets"].append(entry)
    verdict["status"] = "ok"
    return verdict


SECTION_FUNCTIONS: dict[str, Callable[[Context, dict[str, Any]], None]] = {
    "ceiling": section_ceiling, "ceiling_compile": section_ceiling_compile, "correctness": section_correctness,
    "nvdec": section_nvdec, "loader": section_loader, "paths": section_paths}


# ------------------------------------------------------------------ versions


def versions(device: str) -> dict[str, Any]:
    """torch, CUDA, cuDNN and driver versions (top level of the report) and the machine's facts."""
    import platform

    import torch
    from _bench_common import cpu_model

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    top: dict[str, Any] = {
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": f"{cudnn // 10000}.{cudnn // 100 % 100}.{cudnn % 100}" if cudnn and cudnn >= 10000 else cudnn,
        "driver": driver_version() if device == "cuda" else None}
    machine: dict[str, Any] = {"python": platform.python_version(), "device": device,
                               "cpu": cpu_model(), "cpus": os.cpu_count(),
                               "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count()}
    for module in ("torchvision", "av", "hydra", "omegaconf", "numpy"):
        try:
            machine[module] = __import__(module).__version__
        except Exception as err:  # noqa: BLE001 - what is missing is a finding
            machine[module] = f"missing ({one_line(err)})"
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        machine.update(gpu=props.name, gpus=torch.cuda.device_count(),
                       gpu_memory_gib=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}",
                       bf16=torch.cuda.is_bf16_supported())
        try:
            version = torch.cuda.nccl.version()
            machine["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except (AttributeError, RuntimeError):   # a build without NCCL
            machine["nccl"] = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        machine["action3d_commit"] = commit or None
    except (OSError, subprocess.SubprocessError):
        machine["action3d_commit"] = None
    return {**top, "machine": machine}


def driver_version() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        return text.split("Kernel Module")[1].split()[0] if "Kernel Module" in text else text.splitlines()[0]
    except (OSError, IndexError):
        return None


# ------------------------------------------------------------------ --carry: the wheels the GPU machine lacks

# What the check imports besides torch, torchvision and what the GPU machine's image has (numpy,
# PyYAML, tqdm, tensorboard, matplotlib, packaging): downloaded at the versions installed here.
CARRY_DOWNLOADS = ("av", "hydra-core", "omegaconf", "PyYAML", "webdataset", "braceexpand")
CARRY_BUILT = {"antlr4-python3-runtime": "4.9.3"}   # an sdist only: its pure-Python wheel is built here
CARRY_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
CARRY_LIMIT_MIB, TREE_LIMIT_MIB = 60.0, 64.0
SITE = "/tmp/action3d-site"


def install_command(folder: str) -> str:
    """The command line that installs the carried wheels on the GPU machine and runs the check."""
    return (f"python3 -m pip install -q --no-index --no-deps --no-compile --target {SITE} {folder}/*.whl && "
            f"PYTHONPATH=$PWD:{SITE} python3 scripts/gpu_check.py --out {DEFAULT_OUT}")


def tree_bytes(exclude: Path) -> int:
    """Bytes of the checkout as it travels: tracked and untracked-not-ignored files (not `exclude`)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split("\0")
    total = 0
    for name in filter(None, listed):
        path = (ROOT / name).resolve()
        if path.is_file() and exclude not in path.parents:
            total += path.stat().st_size
    return total


def carry(folder: Path) -> int:
    from importlib import metadata

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):   # one version of each: two would stop the install
        old.unlink()
    pins = [f"{name}=={metadata.version(name)}" for name in CARRY_DOWNLOADS]   # the versions tested here
    pip = [sys.executable, "-m", "pip"]
    download = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation",
                "cp", *(arg for p in CARRY_PLATFORMS for arg in ("--platform", p)), "-d", str(folder), *pins]
    build = [*pip, "wheel", "--no-deps", "-w", str(folder), *(f"{n}=={v}" for n, v in CARRY_BUILT.items())]
    for argv in (download, build):
        print("+ " + " ".join(argv[2:]), flush=True)
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
            print(f"gpu_check: error: pip {argv[3]} failed (exit {done.returncode})", file=sys.stderr)
            return 1
    wheels = sorted(folder.glob("*.whl"))
    sizes = {w.name: w.stat().st_size for w in wheels}
    carried = sum(sizes.values()) / 2**20
    tree = tree_bytes(folder) / 2**20
    for name, size in sizes.items():
        print(f"  {size / 2**20:7.2f} MiB  {name}")
    print(f"  {carried:7.2f} MiB  in {folder} (limit {CARRY_LIMIT_MIB:g}); with the checkout ({tree:.2f} MiB): "
          f"{carried + tree:.2f} MiB (limit {TREE_LIMIT_MIB:g})")
    manifest = {"wheels": sizes, "mib": round(carried, 2), "checkout_mib": round(tree, 2),
                "python": "3.12", "platforms": list(CARRY_PLATFORMS), "pins": pins,
                "built": [f"{n}=={v}" for n, v in CARRY_BUILT.items()]}
    (folder / "carry.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shown = os.path.relpath(folder, ROOT) if ROOT in folder.parents else str(folder)
    print("on the GPU machine, from the checkout's root:")
    print(f"  {install_command(shown)}")
    if carried > CARRY_LIMIT_MIB or carried + tree > TREE_LIMIT_MIB:
        print(f"gpu_check: error: too large to carry ({carried:.1f} MiB of wheels, {carried + tree:.1f} MiB in all)",
              file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------ command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sections ({', '.join(SECTIONS)}) or CLI checks of the paths section "
                             "(fp32, bf16, fp16_gradscaler, channels_last, compile, ddp_syncbn, eval_torchrun, "
                             "bench_train, syncbn_world1); default: all sections")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help="seconds for the whole run, shared out among the sections (default 300)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"the JSON report (default {DEFAULT_OUT})")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: the same sections on the CPU (testing this script)")
    parser.add_argument("--quick", action="store_true",
                        help="the tiny model, one step, no compile, one loader worker (with --device cpu: < 30 s)")
    parser.add_argument("--presets", default=None, help="comma-separated presets for ceiling and correctness")
    parser.add_argument("--isolate", default=None,
                        help="sections that run in a process of their own: all, none or a list "
                             "(default: all on CUDA, none on the CPU)")
    parser.add_argument("--carry", default=None, metavar="DIR",
                        help="download the wheels the GPU machine lacks into DIR and print how to install them there")
    parser.add_argument("--gpus", type=int, default=None, help=argparse.SUPPRESS)
    # A section's own process (run_in_child).
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checks", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--explicit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.presets = [p.strip() for p in args.presets.split(",") if p.strip()] if args.presets else None
    args.checks = [c.strip() for c in args.checks.split(",") if c.strip()] if args.checks else None
    if args.budget_s <= 0:
        parser.error(f"--budget-s {args.budget_s:g}: must be > 0")
    return args


CHECK_NAMES = ("fp32", "bf16", "fp16_gradscaler", "channels_last", "compile", "ddp_syncbn", "eval_torchrun",
               "bench_train", "syncbn_world1")


def selection(only: str | None) -> tuple[list[str], list[str] | None, set[str]]:
    """(sections in run order, CLI checks or None for all, sections named explicitly)."""
    if not only:
        return list(SECTIONS), None, set()
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SECTIONS) - set(CHECK_NAMES))
    if unknown:
        raise ValueError(f"--only {','.join(unknown)}: expected some of {', '.join(SECTIONS)} "
                         f"or of the checks {', '.join(CHECK_NAMES)}")
    checks = [n for n in names if n in CHECK_NAMES] or None
    wanted = {n for n in names if n in SECTIONS} | ({"paths"} if checks else set())
    return [s for s in SECTIONS if s in wanted], checks, set(names)


def summary_line(name: str, entry: dict[str, Any]) -> str:
    status = entry.get("status", "?")
    why = entry.get("error") or entry.get("reason") or ""
    seconds = f" ({entry['seconds']} s)" if entry.get("seconds") is not None else ""
    return f"[{name}] {status}{seconds}{': ' + why if why else ''}"


def overall_passed(report: dict[str, Any], sections: Sequence[str]) -> bool:
    entries = [report["ceiling"].get("compile", {}) if s == "ceiling_compile" else report[s] for s in sections]
    if any(e.get("status") in ("failed", "timed out") for e in entries):
        return False
    return all(report[key].get("passed", True) is not False for key in ("correctness", "paths"))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.carry:
        return carry(Path(args.carry))
    if args.child:
        return child_main(args)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check")
        return 0
    try:
        sections, checks, explicit = selection(args.only)
    except ValueError as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    gpus = args.gpus or (torch.cuda.device_count() if args.device == "cuda" else 1)
    isolate = {"all": set(SECTION_FUNCTIONS), "none": set()}.get(
        args.isolate or ("all" if args.device == "cuda" else "none"),
        {s.strip() for s in (args.isolate or "").split(",")})
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="action3d-gpu-check-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    start = time.time()
    report: dict[str, Any] = {"benchmark": "gpu_check", "command": " ".join(["python3", "scripts/gpu_check.py",
                                                                            *(argv if argv is not None else
                                                                              sys.argv[1:])]),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **versions(args.device),
                              "settings": {"device": args.device, "quick": args.quick, "budget_s": args.budget_s,
                                           "sections": sections, "isolated": sorted(isolate & set(sections))}}
    for key in TOP_LEVEL:
        report[key] = {"status": "pending"} if key in sections else {"status": "not run", "reason": "not in --only"}
    save = lambda: write_json_atomic(out, report)  # noqa: E731
    save()
    machine = report["machine"]
    print(f"gpu_check: {machine.get('gpu', machine['cpu'])} ({args.device}), torch {report['torch']}, CUDA "
          f"{report['cuda']}, cuDNN {report['cudnn']}, driver {report['driver']}; budget {args.budget_s:g} s; "
          f"sections {', '.join(sections)}", flush=True)
    end = start + args.budget_s
    timed = [s for s in sections if s != "verdict"]
    try:
        for i, name in enumerate(timed):
            shares = sum(SECTION_SHARES[s] for s in timed[i:]) or 1
            allocation = (end - time.time()) * SECTION_SHARES[name] / shares
            target = report["ceiling"].setdefault("compile", {}) if name == "ceiling_compile" else report[name]
            if allocation < (0.5 if args.quick else 5):
                target.update(status="skipped", reason="time budget spent")
                print(summary_line(name, target), flush=True)
                save()
                continue
            ctx = Context(device=args.device, quick=args.quick, deadline=time.time() + allocation, work=work,
                          gpus=gpus, presets=args.presets, explicit=name in explicit, checks=checks, save=save)
            print(f"[{name}] {allocation:.0f} s", flush=True)
            if name in isolate:
                run_in_child(name, ctx, target, args)
            else:
                run_in_process(name, ctx, target)
            print(summary_line(name, target), flush=True)
        if "verdict" in sections:
            report["verdict"] = section_verdict(report, machine["cpus_available"] or 1)
            for entry in report["verdict"].get("presets", []):
                print(f"  verdict {entry['preset']}: " + "; ".join(
                    f"{source} {v['bound']}, {v['cores_needed']} cores" for source, v in entry["sources"].items()))
    finally:
        report["passed"] = overall_passed(report, sections)
        report["seconds"] = round(time.time() - start, 1)
        save()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if report["paths"].get("table"):
        print("\n".join(report["paths"]["table"]))
    print(f"gpu_check: {'passed' if report['passed'] else 'FAILED'} in {report['seconds']} s; wrote {out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
