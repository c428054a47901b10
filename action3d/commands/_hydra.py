"""What the commands read from Hydra's runtime, and Hydra's errors turned into one line."""
from __future__ import annotations

import contextlib
import copy
import functools
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

from action3d.errors import Action3dError, first_line


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


def compose_config(command: str, overrides: Sequence[str] = (), *, config_dirs: Sequence[str] = (),
                   check: bool = True) -> DictConfig:
    """The config `action3d COMMAND OVERRIDES` runs with: the one composition path of the command
    line's pre-check, the tests and scripts (equal to what `hydra.main` gives the task; a test
    checks it). Hydra composes the defaults tree once per set of config-group choices (`model=`,
    `data=`, ...; cached), then each `key=value` override is applied as Hydra applies it
    (`OmegaConf.update`, `+` adds, `++` forces, `~` deletes). With `check`, every value rule and
    the refusal of keys the overrides set that cannot apply (`action3d.config.validation`) follow.
    `config_dirs`: extra folders on Hydra's search path (`--config-dir`). Raises
    `Action3dError` naming the key at fault."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from action3d.config.validation import validate

    parsed = _parse(OverridesParser.create(), overrides)
    groups = _group_names(command, tuple(config_dirs))
    choices = tuple(o.input_line for o in parsed if _is_group_choice(o, groups))
    cfg = copy.deepcopy(_composed(command, choices, tuple(config_dirs)))
    for override in parsed:
        if not _is_group_choice(override, groups) and not override.is_hydra_override():
            _apply(cfg, override)
    if check:
        validate(cfg, command, user_keys=[override_key(o.input_line) for o in parsed if not o.is_hydra_override()])
    return cfg


def typed_config(command: str, overrides: Sequence[str] = (), **kwargs: Any) -> Any:
    """`compose_config`'s result as the schema's dataclass: what the library takes (for scripts and tests)."""
    return OmegaConf.to_object(compose_config(command, overrides, **kwargs))


def typed(cfg: Any) -> Any:
    """A command's config below the edge: the schema's dataclass (a composed DictConfig is converted)."""
    return OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg


def _parse(parser: Any, overrides: Sequence[str]) -> List[Any]:
    try:
        return parser.parse_overrides(list(overrides))
    except Exception as err:  # Hydra's grammar errors: the override, then the reason
        lines = [line.strip() for line in str(err).splitlines() if line.strip() and not line.startswith("See http")]
        override = getattr(err, "override", None)
        if override and override not in lines[0]:
            quote = " (quote a value with braces or brackets: 'KEY=\"VALUE\"')" if set("{}[]") & set(override) else ""
            lines = [f"{override}: {lines[0] if lines else 'not an override'}{quote}"]
        raise Action3dError(": ".join(lines[:2]) or first_line(str(err))) from None


def _is_group_choice(override: Any, groups: frozenset) -> bool:
    """`model=r3d_18`, `data=ucf101`, `hydra/launcher=...`: the choice of a config group."""
    return override.key_or_group in groups or override.key_or_group.startswith("hydra/")


@functools.lru_cache(maxsize=16)
def _group_names(command: str, config_dirs: tuple) -> frozenset:
    from hydra.core.global_hydra import GlobalHydra

    with _initialized(command):
        loader = GlobalHydra.instance().config_loader()
        groups = set(loader.list_groups(""))
    for folder in config_dirs:  # a user's config folder may add groups of its own
        groups |= {p.name for p in Path(folder).iterdir() if p.is_dir()}
    return frozenset(groups - {"hydra"})


@functools.lru_cache(maxsize=64)
def _composed(command: str, choices: tuple, config_dirs: tuple) -> DictConfig:
    """Hydra's composition of the defaults tree for these group choices, before any value override."""
    from hydra import compose

    search = [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]"
              ] if config_dirs else []
    with _initialized(command):
        try:
            return compose(config_name=command, overrides=[*choices, *search])
        except Exception as err:  # Hydra's multi-line errors -> one line naming the key
            raise Action3dError(describe_compose_error(err)) from None


@contextlib.contextmanager
def _initialized(command: str):
    from hydra import initialize_config_dir

    from action3d.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=command):
        yield


def _apply(cfg: DictConfig, override: Any) -> None:
    """One parsed `key=value` override, applied as Hydra applies it after composing the defaults."""
    key, value = override.key_or_group, override.value()
    try:
        if override.is_delete():
            parent, _, leaf = key.rpartition(".")
            with open_dict(cfg):
                node = OmegaConf.select(cfg, parent) if parent else cfg
                if node is None or leaf not in node:
                    raise Action3dError(f"~{key}: there is no {key} to delete")
                del node[leaf]
        elif override.is_add() or override.is_force_add():
            if override.is_add() and OmegaConf.select(cfg, key, throw_on_missing=False) is not None:
                raise Action3dError(f"+{key}: {key} is already set; give it without the +")
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        else:
            OmegaConf.update(cfg, key, value, merge=True)
    except Action3dError:
        raise
    except Exception as err:  # OmegaConf's type and key errors: one line naming the key
        raise Action3dError(describe_compose_error(err, key=key)) from None


def command_help(command: str, overrides: Sequence[str]) -> str:
    """`action3d COMMAND --help`: the config groups (the folders of conf/, and the model presets,
    which are Python values: `action3d.config.model_presets`) and the composed config.

    Hydra's own help builds a config repository per group (seconds of start-up); this reads the
    folders and the preset registry and composes once.
    """
    from action3d.config.model_presets import PRESET_GROUP, PRESETS

    cfg = compose_config(command, overrides, check=False)
    options = {p.name: {str(f.relative_to(p).with_suffix("")) for f in p.rglob("*.yaml")}   # zoo=tv/r3d_18
               for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name in cfg}
    if PRESET_GROUP in cfg:
        options[PRESET_GROUP] = options.get(PRESET_GROUP, set()) | set(PRESETS)
    lines = [f"action3d {command} [overrides]", "", "== Configuration groups ==",
             "Compose your configuration from those groups (group=option)", ""]
    lines += [f"{group}: {', '.join(sorted(names))}" for group, names in sorted(options.items())]
    lines += ["", "== Config ==", "Override anything in the config (foo.bar=value)", "",
              OmegaConf.to_yaml(cfg).rstrip(), "", "Hydra's own flags: action3d COMMAND --hydra-help"]
    return "\n".join(lines)


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


def describe_compose_error(err: BaseException, *, key: str = "") -> str:
    """One line from Hydra/OmegaConf's multi-line composition errors, naming the key (`key`: the
    override being applied, when the error does not name it)."""
    from omegaconf.errors import OmegaConfBaseException

    from action3d.config.renamed import describe_unknown_key

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
    key = getattr(cause, "full_key", None) or key
    message = first_line(getattr(cause, "msg", None) or str(cause))
    if message.startswith("Key '") and " not in " in message:
        fields = list(getattr(getattr(cause, "object_type", None), "__dataclass_fields__", {}))
        return describe_unknown_key(key, fields)
    if "MissingMandatoryValue" in type(cause).__name__ or "Missing mandatory value" in message:
        return f"{key}: required, give it on the command line as {key}=..."
    return f"{key}: {message}" if key else message
