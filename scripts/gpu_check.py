#!/usr/bin/env python
"""GPU check: every CUDA path of action3d, a few steps each, with a pass/fail table.

Each check runs the real command line in a fresh process (tiny model, small synthetic data)
and then reads what it wrote:

    fp32              action3d train trainer=gpu trainer.precision=32 trainer.channels_last=false
    bf16              ... trainer.precision=bf16 (bf16 autocast)
    fp16_gradscaler   ... trainer.precision=16 (fp16 autocast with a GradScaler)
    channels_last     ... trainer.precision=bf16 trainer.channels_last=true (the GPU default)
    compile           ... trainer.compile=true (torch.compile, channels_last, bf16)
    ddp_syncbn        torchrun --nproc_per_node=GPUS -m action3d train ... trainer.sync_bn=true (NCCL)
    eval_torchrun     torchrun --nproc_per_node=GPUS -m action3d eval ckpt=<fp32 run>/best.pt
    bench_train       python scripts/bench_train.py --device cuda --quick --models r3d_18

A training check passes when the run exits 0 and its summary.json says it finished one epoch
with the expected number of steps, at the precision asked for, with finite losses and a
validation result; eval when report.json counts every validation video once over all processes;
bench_train when its report has fp32 and bf16 rows and action3d's logits matched torchvision's.
DDP needs two or more visible GPUs and is skipped (with the reason) on one.

    python scripts/gpu_check.py                      # all checks, bench_results/gpu_check.json
    python scripts/gpu_check.py --only fp32,compile  # some of them
    python scripts/gpu_check.py --keep DIR           # keep the runs' folders in DIR

On a machine without CUDA it says so in one line and exits 0. Exit status 1 when a check fails.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = "bench_results/gpu_check.json"
BATCH = 4              # clips per process and step
TRAIN_PER_CLASS = 2    # x number of GPUs, so that every DDP process gets 4 steps
CLASSES = 8            # the synthetic set's default

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


def machine(device: str, gpus: int) -> dict[str, Any]:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": device, "gpus": gpus}
    if device == "cuda":
        info["gpu_names"] = [torch.cuda.get_device_name(i) for i in range(gpus)]
        try:
            version = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except (AttributeError, RuntimeError):   # a build without NCCL
            info["nccl"] = None
    return info


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="comma-separated check names (default: all)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--keep", default=None, help="run in this folder and keep it (default: a temporary one)")
    # Testing this script on a CPU: the same checks with trainer.device=cpu and GPUS processes.
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--gpus", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check")
        return 0
    gpus = args.gpus or (torch.cuda.device_count() if args.device == "cuda" else 2)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="action3d-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        checks = build_checks(work.resolve(), device=args.device, gpus=gpus)
        if args.only:
            wanted = [name.strip() for name in args.only.split(",") if name.strip()]
            unknown = sorted(set(wanted) - {c.name for c in checks})
            if unknown:
                print(f"gpu_check: error: --only {','.join(unknown)}: expected some of "
                      f"{', '.join(c.name for c in checks)}", file=sys.stderr)
                return 2
            checks = [c for c in checks if c.name in wanted]
        env = {**os.environ, "ACTION3D_CACHE": str(work / "cache"), "PYTHONUNBUFFERED": "1"}
        for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(key, None)   # started from inside a torchrun job: the checks start their own
        info = machine(args.device, gpus)
        print(f"gpu_check: {gpus} {args.device} device(s) "
              f"{', '.join(info.get('gpu_names', [])) or ''}, torch {info['torch']}, CUDA {info['cuda']}", flush=True)
        results: dict[str, dict[str, Any]] = {}
        for check in checks:
            results[check.name] = run_check(check, env, results)
            print(f"[{check.name}] {results[check.name]['result']} {results[check.name]['detail']}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    rows = list(results.values())
    print()
    print(format_rows(rows))
    failed = [row["check"] for row in rows if row["result"] == "FAIL"]
    print(f"{sum(row['result'] == 'pass' for row in rows)} passed, {len(failed)} failed, "
          f"{sum(row['result'] == 'skip' for row in rows)} skipped")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "gpu_check", "machine": info, "results": rows,
                               "passed": not failed}, indent=2) + "\n")
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
