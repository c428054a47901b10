#!/usr/bin/env python
"""Start-up benchmark: how fast `action3d` answers help, `--cfg job` and a config error.

Each command runs in a fresh process, as a user types it (the `action3d` console script beside
this Python, else `python -m action3d`), in an empty temporary folder, started by a small
launcher that measures the wall time around it and reads its peak resident set (ru_maxrss) with
`os.wait4` (the figure includes the launcher's ~10 MiB, which Linux counts across exec).
The peer is `python -c "import torch"`: a command that imports torch cannot start faster.
The commands take turns within each repetition (so load from other jobs hits them alike) and
the table gives medians. Target (issue 14): help, `--cfg job` and config errors within 2 s.

    python scripts/bench_startup.py              # 5 repetitions
    python scripts/bench_startup.py --quick      # 1 repetition (a smoke test)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import command_line, format_table, machine_info, median, write_json  # noqa: E402

TARGET_S = 2.0
PEER = "python -c 'import torch'"
PEER_ARGV = [sys.executable, "-c", "import torch"]
# label -> (arguments after `action3d`, expected exit status)
COMMANDS: dict[str, tuple] = {
    "action3d --help": (["--help"], 0),
    "action3d train --help": (["train", "--help"], 0),
    "action3d train --cfg job": (["train", "--cfg", "job"], 0),
    "action3d train model.depth=19": (["train", "model.depth=19"], 2),   # a config error
}
COLUMNS = [("command", "command", ""), ("median s", "seconds_median", ".2f"), ("min s", "seconds_min", ".2f"),
           ("peak RSS MiB", "peak_rss_mib", ".0f"), ("vs import torch", "vs_peer", ".2f"),
           ("imports torch", "imports_torch", ""), ("<= 2 s", "target_met", "")]


def action3d_command() -> list[str]:
    script = Path(sys.executable).with_name("action3d")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("action3d")
    return [found] if found else [sys.executable, "-m", "action3d"]


# A small process that starts the command and reports its wall time and peak RSS. The peak of a
# child counts the memory of the process it was started from (Linux keeps the high-water mark
# across exec), so the measuring process must be small: this one, not the benchmark's.
LAUNCHER = """
import json, os, sys, time
out = sys.argv[1]
actions = [(os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), (os.POSIX_SPAWN_DUP2, 1, 2)]
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(json.dumps([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]))
"""
RSS_UNIT = 1 if sys.platform == "darwin" else 1024   # ru_maxrss: bytes on macOS, KiB on Linux


def run_once(argv: Sequence[str], *, cwd: str, env: dict[str, str]) -> dict[str, Any]:
    """One fresh process: wall seconds, its peak RSS in MiB, exit status, output."""
    with tempfile.NamedTemporaryFile(prefix="bench-startup-", suffix=".txt") as output:
        done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, output.name, *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"could not start {argv[0]}: {done.stderr.strip()}")
        seconds, peak, status = json.loads(done.stdout)
        text = Path(output.name).read_text(errors="replace")
    return {"seconds": seconds, "peak_rss_mib": peak * RSS_UNIT / 2**20, "returncode": status, "output": text}


def torch_imported(argv: Sequence[str], *, cwd: str, env: dict[str, str]) -> bool:
    """Whether the command imports torch (Python's -X importtime list, in one more run)."""
    if argv[0] != sys.executable:   # the console script: run the same entry point under -X importtime
        argv = [sys.executable, "-m", "action3d", *argv[1:]]
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    return any(line.rstrip().endswith((" torch", " torchvision")) for line in done.stderr.splitlines())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    action3d = action3d_command()
    commands = {label: ([*action3d, *rest], status) for label, (rest, status) in COMMANDS.items()}
    commands[PEER] = (PEER_ARGV, 0)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("RANK", None)   # a torchrun environment would change what `train` does
    times: dict[str, list[float]] = {label: [] for label in commands}
    peaks: dict[str, list[float]] = {label: [] for label in commands}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as cwd:
        for argv, _ in commands.values() if not args.quick else ():
            run_once(argv, cwd=cwd, env=env)        # untimed: warm the file cache
        for repetition in range(args.repeats):
            order = list(commands) if repetition % 2 == 0 else list(reversed(commands))
            for label in order:
                argv, status = commands[label]
                result = run_once(argv, cwd=cwd, env=env)
                if result["returncode"] != status:
                    raise RuntimeError(f"{label}: exit status {result['returncode']} (expected {status}):\n"
                                       f"{result['output'][-2000:]}")
                times[label].append(result["seconds"])
                peaks[label].append(result["peak_rss_mib"])
            print(f"  repetition {repetition + 1}/{args.repeats} done", flush=True)
        imports = {label: torch_imported(argv, cwd=cwd, env=env) for label, (argv, _) in commands.items()
                   if label != PEER}
    peer = median(times[PEER])
    rows = []
    for label in commands:
        is_peer = label == PEER
        rows.append({"command": label, "seconds_median": median(times[label]), "seconds_min": min(times[label]),
                     "seconds_all": [round(t, 4) for t in times[label]], "peak_rss_mib": max(peaks[label]),
                     "vs_peer": median(times[label]) / peer, "imports_torch": True if is_peer else imports[label],
                     "target_met": None if is_peer else median(times[label]) <= TARGET_S})
    return {"rows": rows, "action3d": " ".join(action3d)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per command (5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="one repetition, no warm-up run (a smoke test)")
    parser.add_argument("--out", default="bench_results/startup.json")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    print(f"start-up of action3d commands ({machine['cpu']}, {machine['cpu_count']} CPUs, load "
          f"{machine['load_average_1min']}): {args.repeats} fresh processes each, medians")
    try:
        measured = measure(args)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"bench_startup: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    rows = measured["rows"]
    print()
    print(format_table(rows, COLUMNS))
    missed = [row["command"] for row in rows if row["target_met"] is False]
    print(f"target: help, --cfg job and config errors within {TARGET_S:g} s: "
          + ("met" if not missed else f"NOT met by {', '.join(missed)}"))
    report = {"benchmark": "startup", "command": command_line(), "machine": machine,
              "settings": {"repeats": args.repeats, "action3d": measured["action3d"], "peer": PEER,
                           "peak_rss": "ru_maxrss of each command (os.wait4 in a ~10 MiB launcher), max of repetitions",
                           "target_seconds": TARGET_S},
              "results": rows, "target_met": not missed}
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
