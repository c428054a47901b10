"""`action3d COMMAND [hydra overrides]`: one entry point, one Hydra app per command.

Each command composes its own config (`conf/COMMAND.yaml` over the typed schema of
`action3d.config`). Before Hydra runs, every combination of the given overrides is composed
and validated here, so that an unknown key, a wrong type or an invalid value exits with one
line naming the key, before any run directory is created or any model is built.
"""
from __future__ import annotations

import difflib
import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from action3d.errors import Action3dError

CONF_DIR = str(Path(os.environ.get("ACTION3D_CONF", Path(__file__).resolve().parent.parent / "conf")))

# command -> (one-line help, "module:function" run with the composed config)
COMMANDS = {
    "train": ("train a model (default: the tiny model on the built-in synthetic dataset)", "action3d.engine.train:run"),
    "eval": ("evaluate a checkpoint: multi-view top-1/top-5 report (ckpt=PATH)", "action3d.engine.evaluate:run"),
    "predict": ("top-5 classes for a video or a folder of videos (ckpt=PATH video=PATH)", "action3d.engine.predict:run"),
    "data": ("dataset tools: synth out=DIR | check data=... | prepare data=... out=DIR", "action3d.commands.data:run"),
    "info": ("model summary: per-stage shapes, parameters, GFLOPs (model=... input=[C,T,H,W])", "action3d.commands.info:run"),
}

# Hydra flags that take a value, and flags after which nothing is run (no validation needed).
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--info", "-i", "--shell-completion", "-sc", "--experimental-rerun"}
_NO_RUN_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}


def usage() -> str:
    lines = ["usage: action3d COMMAND [hydra overrides]   (COMMAND --help shows its config)", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (text, _) in COMMANDS.items()]
    lines += ["", "examples:", "  action3d train model=r3d_18 data=ucf101 data.root=/data/ucf101",
              "  action3d train -m optim.lr=0.1,0.01 model.depth=18,34",
              "  action3d eval ckpt=outputs/train/RUN/best.pt eval.num_clips=10 eval.num_crops=3",
              "  torchrun --nproc_per_node=4 -m action3d train data.batch_size=8"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    # On a crowded CPU (loader workers share the cores with training) OpenMP threads that spin
    # while waiting slow every step several times over; idle waiting costs nothing measurable.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return _error(f"unknown command {command!r}; expected one of: {', '.join(COMMANDS)}", None)
    if command == "data":
        rest = _data_action_to_override(rest)
    flags, overrides = _split_flags(rest)
    if not _NO_RUN_FLAGS.intersection(flags):
        try:
            prevalidate(command, overrides)
        except Action3dError as err:
            return _error(str(err), command)
    overrides += _rank_overrides(command)
    _run_hydra(command, flags + overrides)
    return 0


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


def prevalidate(command: str, overrides: List[str]) -> None:
    """Compose and validate every job the overrides describe (each sweep combination too)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from action3d.config import register_configs, validate
    from action3d.preflight import check_inputs

    register_configs()
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # Hydra's grammar errors
        raise Action3dError(_first_line(str(err))) from None
    job_overrides = [o for o in parsed if not o.is_hydra_override()]
    combos = BasicSweeper.split_arguments(job_overrides, None)[0] if job_overrides else [[]]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=command):
        for combo in combos:
            try:
                cfg = compose(config_name=command, overrides=combo)
            except Exception as err:
                raise Action3dError(describe_compose_error(err)) from None
            validate(cfg)
            check_inputs(command, cfg)  # files, folders, device: before Hydra writes anything


def describe_compose_error(err: BaseException) -> str:
    """One line from Hydra/OmegaConf's multi-line composition errors, naming the key."""
    from omegaconf.errors import OmegaConfBaseException

    cause: Optional[BaseException] = err
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if cause is None:
        text = str(err)
        if "Could not find" in text and "Available options" in text:
            missing = text.split("Could not find '")[1].split("'")[0]
            listed = text.split("Available options")[1].split("Config search path")[0]
            options = [line.strip() for line in listed.splitlines()[1:] if line.strip()]
            return f"{missing.replace('/', '=', 1)}: no such config; available: {', '.join(options)}"
        return _first_line(text)
    key = getattr(cause, "full_key", None) or ""
    message = _first_line(getattr(cause, "msg", None) or str(cause))
    if message.startswith("Key '") and " not in " in message:
        return f"{key}: unknown key{_suggest(cause, key)}"
    if "MissingMandatoryValue" in type(cause).__name__ or "Missing mandatory value" in message:
        return f"{key}: required, give it on the command line as {key}=..."
    return f"{key}: {message}" if key else message


def _suggest(cause: BaseException, key: str) -> str:
    object_type = getattr(cause, "object_type", None)
    fields = list(getattr(object_type, "__dataclass_fields__", {}))
    if not fields:
        return ""
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, fields, n=1)
    hint = f"; did you mean {key.rsplit('.', 1)[0] + '.' if '.' in key else ''}{close[0]}?" if close else ""
    return f"{hint} (allowed: {', '.join(fields)})"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text


def _run_hydra(command: str, args: List[str]) -> None:
    import hydra

    from action3d.config import register_configs

    register_configs()
    run = _load(COMMANDS[command][1])
    sys.argv = [f"action3d {command}", *args]
    hydra.main(config_path=CONF_DIR, config_name=command, version_base="1.3")(_task(command, run))()


def _load(target: str) -> Callable:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def _task(command: str, run: Callable) -> Callable:
    def task(cfg):
        from action3d.config import validate

        try:
            validate(cfg)
            return run(cfg)
        except Action3dError as err:
            print(f"action3d {command}: error: {unwrap_worker_error(str(err))}", file=sys.stderr)
            sys.exit(1)

    return task


def unwrap_worker_error(message: str) -> str:
    """A DataLoader worker re-raises with the worker's traceback in the message: keep its last line."""
    if "Original Traceback" not in message:
        return _first_line(message)
    last = [line for line in message.strip().splitlines() if line.strip()][-1]
    return last.split(": ", 1)[1] if ": " in last else last


if __name__ == "__main__":
    sys.exit(main())
