"""`action3d COMMAND [hydra overrides]`: one entry point, one Hydra app per command.

Each command composes its own config (`conf/COMMAND.yaml` over the typed schema of
`action3d.config`) and runs `action3d.commands.COMMAND.run`. Before Hydra runs, every
combination of the given overrides is composed and validated here, so that an unknown key, a
wrong type or an invalid value exits with one line naming the key, before any run directory is
created or any model is built. Nothing on that path imports torch: help, `--cfg job` and config
errors answer at once.
"""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from action3d import __version__
from action3d.commands._hydra import CONF_DIR, command_help, first_line, override_key
from action3d.errors import Action3dError

# command -> one-line help; `action3d.commands.COMMAND.run(cfg)` runs it
COMMANDS = {
    "train": "train a model (default: the tiny model on the built-in synthetic dataset)",
    "eval": "evaluate a checkpoint: multi-view top-1/top-5 report (ckpt=PATH)",
    "predict": "top-5 classes for a video or a folder of videos (ckpt=PATH video=PATH [window=S stride=S])",
    "data": "dataset tools: synth out=DIR | check data=... | prepare data=... out=DIR [part=I/N|merge=true] | "
            "pack data=... out=DIR | extract data=... out=DIR",
    "info": "model summary: per-stage shapes, parameters, GFLOPs (model=... input=[C,T,H,W])",
    "export": "a checkpoint as ONNX or TorchScript for deployment (ckpt=PATH format=onnx|torchscript out=PATH)",
    "embed": "pooled backbone features per video or window as .npy (ckpt=PATH video=PATH out=DIR)",
    "explain": "the video with a Grad-CAM heat map of a class over every frame (ckpt=PATH video=PATH out=OUT.mp4)",
}
# Commands that run a trained model: the checkpoint decides the architecture.
CHECKPOINT_COMMANDS = {"eval", "predict", "export", "embed", "explain"}

# Hydra flags that take a value, and flags after which nothing is run (no validation needed).
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--info", "-i", "--shell-completion", "-sc", "--experimental-rerun"}
_NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}


def usage() -> str:
    lines = ["usage: action3d COMMAND [hydra overrides]   (COMMAND --help shows its config)",
             "       action3d --version", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, text in COMMANDS.items()]
    lines += ["", "examples:", "  action3d train model=r3d_18 data=ucf101 data.root=/data/ucf101",
              "  action3d train -m optim.lr=0.1,0.01 model.depth=18,34",
              "  action3d eval ckpt=outputs/train/RUN/best.pt eval.num_clips=10 eval.num_crops=3",
              "  torchrun --nproc_per_node=4 -m action3d train data.batch_size=8"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `action3d ... | head`: the reader left; no traceback for that
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _main(argv: Optional[Sequence[str]]) -> int:
    # The Optuna sweeper's pinned optuna uses SQLAlchemy 1.4 APIs; its 2.0 migration notice is
    # noise for a user who never touches SQLAlchemy.
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"action3d {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return _error(f"unknown command {command!r}; expected one of: {', '.join(COMMANDS)}", None)
    if command == "data":
        rest = _data_action_to_override(rest)
    flags, overrides = _split_flags(rest)
    if command == "explain":  # `class=NAME` as users write it; `class` cannot name a schema field
        overrides = ["class_name=" + o[len("class="):] if o.startswith("class=") else o for o in overrides]
    if {"--help", "-h"}.intersection(flags):
        try:
            print(command_help(command, overrides))
        except Action3dError as err:
            return _error(str(err), command)
        return 0
    cfgs: List[Any] = []
    if not _NO_RUN_FLAGS.intersection(flags):
        try:
            cfgs = prevalidate(command, overrides, config_dirs=_config_dirs(flags))
        except Action3dError as err:
            return _error(str(err), command)
    if "OMP_WAIT_POLICY" not in os.environ and omp_should_wait_passively(cfgs, os.environ):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read once, when torch loads libgomp: before any import
    from action3d.commands._sweep import search_defaults

    overrides += _rank_overrides(command) + search_defaults(command, overrides, cfgs)
    _run_hydra(command, flags + overrides)
    return 0


def _config_dirs(flags: List[str]) -> List[str]:
    """The folders given with `--config-dir DIR` / `-cd DIR` (a user's own presets, on Hydra's search path)."""
    return [flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag in ("--config-dir", "-cd")]


def _error(message: str, command: Optional[str]) -> int:
    prefix = f"action3d {command}" if command else "action3d"
    print(f"{prefix}: error: {message}", file=sys.stderr)
    return 2


def _data_action_to_override(rest: List[str]) -> List[str]:
    """`action3d data synth out=DIR` -> `action=synth out=DIR` (the action is a plain word)."""
    for i, arg in enumerate(rest):
        if not arg.startswith("-") and "=" not in arg:
            return rest[:i] + [f"action={arg}"] + rest[i + 1:]
    return rest


def _split_flags(rest: List[str]) -> Tuple[List[str], List[str]]:
    flags, overrides, i = [], [], 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("-"):
            flags.append(arg)
            if arg in _FLAGS_WITH_VALUE and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
                flags.append(rest[i + 1])
                i += 1
        else:
            overrides.append(arg)
        i += 1
    return flags, overrides


def _rank_overrides(command: str) -> List[str]:
    """Under torchrun only rank 0 gets a Hydra run directory; the others write nothing.

    The trainer broadcasts rank 0's directory, so all ranks share one run directory.
    """
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 or command not in ("train", "eval"):
        return []
    scratch = tempfile.mkdtemp(prefix=f"action3d-rank{rank}-")
    return [f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra/job_logging=disabled",
            "hydra/hydra_logging=disabled"]


def omp_should_wait_passively(cfgs: Sequence[Any], environ: Mapping[str, str]) -> bool:
    """Whether OpenMP threads should sleep (not spin) while they wait for work.

    Spinning threads keep the next operation's start fast, which matters for a small model's
    many short kernels (the tiny model's step measured ~1.3x faster in a loop without loader
    workers). But when loader workers or other processes of the job share the cores, a spinning
    thread takes the CPU they need and every step slows several times over. So: sleep unless
    every job of this command line loads data in the training process itself, in one process.
    """
    if int(environ.get("LOCAL_WORLD_SIZE", "1") or 1) > 1 or not cfgs:
        return True
    workers = [OmegaConf.select(cfg, "data.num_workers", default=None) for cfg in cfgs]
    return not all(isinstance(w, int) and w == 0 for w in workers)


def prevalidate(command: str, overrides: List[str], *, config_dirs: Sequence[str] = ()) -> List[Any]:
    """Compose and check every job the overrides describe (each sweep combination too): values,
    keys that cannot apply, and the files and devices they name. Returns the composed configs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from action3d.commands._hydra import _parse, compose_config
    from action3d.commands._sweep import sweep_jobs
    from action3d.config.validation import preflight

    parsed = _parse(OverridesParser.create(), overrides)
    job_overrides = [o for o in parsed if not o.is_hydra_override()]
    _refuse_model_overrides(command, [o.input_line for o in job_overrides])
    cfgs = []
    for combo in sweep_jobs(command, parsed):  # a grid: every combination; a search: its keys and bounds
        cfg = compose_config(command, combo, config_dirs=config_dirs)
        preflight(cfg, command)  # files, folders, device: before Hydra writes anything
        cfgs.append(cfg)
    return cfgs


def _refuse_model_overrides(command: str, overrides: List[str]) -> None:
    """eval/predict rebuild the model from the checkpoint: a model override could not apply."""
    if command not in CHECKPOINT_COMMANDS:
        return
    for override in overrides:
        key = override_key(override)
        if key == "model" or key.startswith("model."):
            raise Action3dError(f"{key}: {command} rebuilds the model stored in ckpt=...; model overrides do not "
                                "apply (train or fine-tune with model.pretrained=CKPT to change it)")


def _run_hydra(command: str, args: List[str]) -> None:
    import hydra

    from action3d.config import register_configs

    register_configs()
    run = _load(f"action3d.commands.{command}:run")
    sys.argv = [f"action3d {command}", *args]
    hydra.main(config_path=CONF_DIR, config_name=command, version_base="1.3")(_task(command, run))()


def _load(target: str) -> Callable:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def _task(command: str, run: Callable) -> Callable:
    """The Hydra task: check the job's values (a no-op for a config the pre-check checked; a
    search's trial draws its values later), run, and turn any exception into one line and exit
    status 1. The library's `Action3dError` is the line itself; anything else (a library's own
    exception: a bug, or a case no rule foresaw) is named by its type and first line, and its
    traceback goes to `error.log` in the run directory, not to the terminal. In a sweep a failed
    job is one line and a recorded failure that ranks last; the sweep goes on."""
    def task(cfg):
        from action3d.commands._sweep import failed_job, in_sweep
        from action3d.config.validation import check_values

        try:
            check_values(cfg, command)
            return run(cfg)
        except Exception as err:
            if isinstance(err, Action3dError):
                message = unwrap_worker_error(str(err))
            else:
                message = f"{type(err).__name__}: {first_line(str(err))}{_traceback_saved()}"
            print(f"action3d {command}: error: {message}", file=sys.stderr)
            if in_sweep():
                return failed_job(message)
            sys.exit(1)

    return task


def _traceback_saved() -> str:
    """Write the current exception's traceback to RUN_DIR/error.log; ' (traceback: PATH)' or ''."""
    import traceback

    from action3d.commands._hydra import run_dir

    path = run_dir() / "error.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
    except OSError:
        return ""
    return f" (traceback: {path})"


def unwrap_worker_error(message: str) -> str:
    """A DataLoader worker re-raises with the worker's traceback in the message: keep its last line."""
    if "Original Traceback" not in message:
        return first_line(message)
    last = [line for line in message.strip().splitlines() if line.strip()][-1]
    return last.split(": ", 1)[1] if ": " in last else last


if __name__ == "__main__":
    sys.exit(main())
