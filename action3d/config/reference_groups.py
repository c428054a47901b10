"""What the config groups of conf/ set (`data=`, `trainer=`, `optim=`, `sched=`, `recipe=`, and the
model presets of `model=`), key by key, for the configuration reference. Torch-free."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from action3d.config.commands import SCHEMAS
from action3d.config.model_presets import PRESET_GROUP, PRESETS
from action3d.config.option import DATA_ACTIONS
from action3d.config.reference_text import code, default_of


def command_actions(command: str) -> List[str]:
    """SCHEMAS' `data` is four commands as far as `commands=` goes: one per action."""
    return [f"data {action}" for action in DATA_ACTIONS] if command == "data" else [command]


def conf_dir() -> Path:
    from action3d.commands._hydra import find_conf_dir

    return Path(find_conf_dir())


@dataclass(frozen=True)
class GroupOption:
    group: str                    # "data"
    name: str                     # "kinetics"
    values: Dict[str, Any]        # dotted key of the whole config -> value
    default: bool                 # the option conf/COMMAND.yaml's defaults list selects


def defaults_list(path: Path) -> Dict[str, Optional[str]]:
    """group -> option of a command's defaults list (Hydra's `- group: option` entries)."""
    entries = OmegaConf.to_container(OmegaConf.load(path)).get("defaults", [])
    return {k: v for entry in entries if isinstance(entry, dict) for k, v in entry.items()
            if " " not in k and "/" not in k}


def _dotted(node: Any, prefix: str = "") -> Dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out: Dict[str, Any] = {}
    for key, value in node.items():
        out.update(_dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def group_options(conf: Optional[Path] = None) -> Dict[str, List[GroupOption]]:
    """command -> the options of every config group its conf/COMMAND.yaml lists (the model
    presets for `model`), with the values each sets (dotted keys)."""
    conf = conf or conf_dir()
    out: Dict[str, List[GroupOption]] = {}
    for command in SCHEMAS:
        options: List[GroupOption] = []
        for group, chosen in defaults_list(conf / f"{command}.yaml").items():
            if group == PRESET_GROUP:
                for name, preset in PRESETS.items():
                    node = {"model": dataclasses.asdict(preset.model_config()), "data": preset.sampling()}
                    options.append(GroupOption(group, name, _dotted(node), name == chosen))
                continue
            for path in sorted((conf / group).glob("*.yaml")):
                text = path.read_text(encoding="utf-8")
                package = "" if re.search(r"^#\s*@package\s+_global_", text, re.M) else group + "."
                values = OmegaConf.to_container(OmegaConf.load(path)) or {}
                options.append(GroupOption(group, path.stem, _dotted(values, package), path.stem == chosen))
        for action in command_actions(command):
            out[action] = options
    return out


def groups_text(key: str, field_: dataclasses.Field, options: Sequence[GroupOption]) -> str:
    """What the config groups set for `key` where it differs from the schema's default (a model
    preset's sampling always: it overrides the dataset group's), `data=kinetics: 224; ...`, the
    default option of each group first. Of the model presets only the default one is listed per
    key (the others: the line above the model table)."""
    default = default_of(field_)
    entries: List[Tuple[str, bool, List[str], Any]] = []   # group, is the default option, names, value
    for option_ in options:
        if key not in option_.values:
            continue
        value = option_.values[key]
        preset = option_.group == PRESET_GROUP
        if preset and key.startswith("model.") and not option_.default:
            continue
        if value == default and not (preset and key.startswith("data.")):
            continue
        for entry in entries:
            if entry[0] == option_.group and not entry[1] and not option_.default and entry[3] == value:
                entry[2].append(option_.name)
                break
        else:
            entries.append((option_.group, option_.default, [option_.name], value))
    entries.sort(key=lambda e: not e[1])   # stable: each default option first, then file order
    return "; ".join(f"{group}={', '.join(names)}{' (default)' if is_default else ''}: {code(value)}"
                     for group, is_default, names, value in entries)
