"""What the commands read from Hydra's runtime, and Hydra's errors turned into one line."""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from action3d.errors import Action3dError


def find_conf_dir() -> str:
    """The Hydra config tree: $ACTION3D_CONF, else the checkout's conf/ (editable install, source
    tree), else the copy the wheel carries inside the package (action3d/conf)."""
    if os.environ.get("ACTION3D_CONF"):
        return str(Path(os.environ["ACTION3D_CONF"]).resolve())
    package = Path(__file__).resolve().parent.parent
    checkout = package.parent / "conf"
    if (checkout / "train.yaml").is_file() and (package.parent / "pyproject.toml").is_file():
        return str(checkout)
    return str(package / "conf")


CONF_DIR = find_conf_dir()


def compose_configs(command: str, jobs: Sequence[Sequence[str]]) -> Iterator[DictConfig]:
    """The validated config of `action3d COMMAND OVERRIDES` for each job's list of overrides
    (a plain command line is one job). Raises `Action3dError` naming the key at fault."""
    from hydra import compose, initialize_config_dir

    from action3d.config import register_configs, validate

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=command):
        for overrides in jobs:
            try:
                cfg = compose(config_name=command, overrides=list(overrides))
            except Exception as err:  # Hydra's multi-line errors -> one line naming the key
                raise Action3dError(describe_compose_error(err)) from None
            validate(cfg)
            yield cfg


def command_help(command: str, overrides: Sequence[str]) -> str:
    """`action3d COMMAND --help`: the config groups (the folders of conf/, and the model presets,
    which are Python values: `action3d.config.model_presets`) and the composed config.

    Hydra's own help builds a config repository per group (seconds of start-up); this reads the
    folders and the preset registry and composes once.
    """
    from action3d.config.model_presets import PRESET_GROUP, PRESETS

    cfg = compose_config(command, overrides)
    options = {p.name: {f.stem for f in p.glob("*.yaml")} for p in Path(CONF_DIR).iterdir()
               if p.is_dir() and p.name in cfg}
    if PRESET_GROUP in cfg:
        options[PRESET_GROUP] = options.get(PRESET_GROUP, set()) | set(PRESETS)
    lines = [f"action3d {command} [overrides]", "", "== Configuration groups ==",
             "Compose your configuration from those groups (group=option)", ""]
    lines += [f"{group}: {', '.join(sorted(names))}" for group, names in sorted(options.items())]
    lines += ["", "== Config ==", "Override anything in the config (foo.bar=value)", "",
              OmegaConf.to_yaml(cfg).rstrip(), "", "Hydra's own flags: action3d COMMAND --hydra-help"]
    return "\n".join(lines)


def compose_config(command: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The validated config of one `action3d COMMAND OVERRIDES` (for scripts and tests)."""
    return next(compose_configs(command, [overrides]))


def run_dir(default: str = ".") -> Path:
    """The job's output directory (`hydra.run.dir`, or the sweep job's folder)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else default)


def task_overrides() -> List[str]:
    """The job's command-line overrides (`key=value`, `+key=value`, `group=option`)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def override_key(override: str) -> str:
    """`+data.root=/x` -> `data.root`; `data=ucf101` -> `data`."""
    return override.lstrip("+~").split("=", 1)[0]


def merge_data_overrides(trained_data: DictConfig, given: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The dataset config a trained model is run on: the checkpoint's, with the `data.*` keys given
    on the command line on top; `data=GROUP` chooses another dataset and takes it whole."""
    keys = [override_key(o) for o in overrides]
    if "data" in keys:
        return given
    data = trained_data.copy()
    for key in keys:
        if key.startswith("data."):
            OmegaConf.update(data, key[len("data."):], OmegaConf.select(given, key[len("data."):]), merge=False)
    return data


def did_you_mean(key: str, allowed: Sequence[str]) -> str:
    """`; did you mean model.depth? (allowed: a, b, ...)` for an unknown `key` (dotted)."""
    parent, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, list(allowed), n=1)
    hint = f"; did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
    return f"{hint} (allowed: {', '.join(allowed)})"


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text


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
        return first_line(text)
    key = getattr(cause, "full_key", None) or ""
    message = first_line(getattr(cause, "msg", None) or str(cause))
    if message.startswith("Key '") and " not in " in message:
        fields = list(getattr(getattr(cause, "object_type", None), "__dataclass_fields__", {}))
        return f"{key}: unknown key{did_you_mean(key, fields) if fields else ''}"
    if "MissingMandatoryValue" in type(cause).__name__ or "Missing mandatory value" in message:
        return f"{key}: required, give it on the command line as {key}=..."
    return f"{key}: {message}" if key else message
