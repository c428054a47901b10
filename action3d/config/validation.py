"""The one validator: every key's rules, read from its field (`action3d.config.option`).

- `check_values(cfg, command)`: unknown and required keys, then each leaf's value rules (choices,
  range, length, entries, custom check) and each section's own rule (the model's pathways build).
  A config is checked once per process: the command line's pre-check and the library calls that
  follow it (the Hydra task, `build_model`, `ResNet3d`) share the result.
- `refuse_inapplicable(cfg, command, keys)`: a key the user set that cannot take effect in this
  command, with this dataset format or given the rest of the config, is refused in one line.
- `preflight(cfg, command)`: the files, folders and devices the config names exist.

Plain Python, no torch: `action3d.cli` runs all three for every job of a command line before
Hydra creates anything.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional, Tuple

from omegaconf import DictConfig, OmegaConf

from action3d.config.checks import ConfigError, hashable
from action3d.config.commands import NOT_READ, SCHEMAS
from action3d.config.option import Context, check_value, find_field, rule_of, sections, walk

# Commands that read which videos a dataset holds (and so its format).
_READ_DATASET = ("train", "eval", "data check", "data prepare", "data pack", "data extract")


def effective_command(cfg: Any, command: str) -> str:
    """"data check" for `action3d data check`: each data action reads its own keys."""
    return f"data {cfg.action}" if command == "data" and _present(cfg, "action") else command


def validate(cfg: Any, command: str, *, user_keys: Iterable[str] = ()) -> None:
    """Raise `ConfigError` (one line naming the key) for the first broken rule of `cfg`."""
    check_values(cfg, command)
    refuse_inapplicable(cfg, command, user_keys)


# --------------------------------------------------------------------------- values

def check_values(cfg: Any, command: str) -> None:
    """Every value rule of `cfg` (a composed DictConfig or the schema's dataclass), once per
    distinct config and command in this process."""
    _checked(command, _fingerprint(cfg), cfg)


def _checked(command: str, fingerprint: Any, cfg: Any) -> None:
    if (command, fingerprint) in _CHECKED:
        return
    _check_values(cfg, command)
    _CHECKED.add((command, fingerprint))


_CHECKED: set = set()


def _check_values(cfg: Any, command: str) -> None:
    schema = SCHEMAS[command]
    if isinstance(cfg, DictConfig):
        check_known_keys(cfg)
    command = effective_command(cfg, command) if _present(cfg, "action") else command
    for key, field_, parents in walk(schema):
        if not _present(cfg, key):
            continue
        ctx = Context(key=key, section=_section(cfg, parents), root=cfg, command=command)
        check_value(rule_of(field_), key, _value(cfg, key), ctx)
    for key, field_ in sections(schema):
        rule = rule_of(field_)
        if rule.check is not None and _present(cfg, key):
            rule.check(_value(cfg, key), Context(key=key, section=_value(cfg, key), root=cfg, command=command))
    if command in _READ_DATASET:
        _check_format(cfg.data)
    if isinstance(cfg, DictConfig):
        check_required(cfg)  # after the values: a bad value given is the more useful line


def _check_format(data: Any) -> None:
    from action3d.data.formats import format_of

    format_of(data).check()


def check_known_keys(node: DictConfig, prefix: str = "") -> None:
    """`+key=value` makes Hydra add a key that no schema has (nothing would read it): a typo, or
    a key that was renamed or removed (then the line says what it became)."""
    from action3d.config.renamed import describe_unknown_key

    fields = getattr(OmegaConf.get_type(node), "__dataclass_fields__", None)
    if fields is None:
        return
    for key in node.keys():
        if key not in fields:
            raise ConfigError(describe_unknown_key(f"{prefix}{key}", list(fields)))
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            check_known_keys(child, f"{prefix}{key}.")


def check_required(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        raise ConfigError(f"{key}: required, give it on the command line as {key}=...")


# --------------------------------------------------------------------------- keys the user set

def refuse_inapplicable(cfg: Any, command: str, keys: Iterable[str]) -> None:
    """Raise `ConfigError` for the first key the user set that cannot take effect."""
    command = effective_command(cfg, command)
    for key in keys:
        reason = why_not(cfg, command, key)
        if reason:
            raise ConfigError(f"{key} does not apply here: {reason}")


def why_not(cfg: Any, command: str, key: str) -> Optional[str]:
    """Why `key`, set by the user, cannot take effect in `command` ("data check", ...); None: it can."""
    schema = SCHEMAS[command.split()[0]]
    path = key.split(".")
    for depth in range(1, len(path) + 1):
        dotted = ".".join(path[:depth])
        field_ = find_field(schema, dotted)
        if field_ is None:
            return None   # not a schema key (hydra.*, a config group such as recipe=)
        rule = rule_of(field_)
        if rule.commands is not None and command not in rule.commands:
            return NOT_READ[command]
        if dotted.startswith("data.") and depth == 2 and command in _READ_DATASET:
            reason = _format_reason(cfg.data, path[1])
            if reason:
                return reason
        if rule.applies is not None:
            parent = ".".join(path[:depth - 1])
            ctx = Context(key=dotted, section=_value(cfg, parent) if parent else cfg, root=cfg, command=command)
            reason = rule.applies(ctx)
            if reason:
                return reason
    return None


def _format_reason(data: Any, key: str) -> Optional[str]:
    """A data key that the dataset's format does not read (`data.annotation_dir` with a list file)."""
    from action3d.data.formats import format_of, key_owners

    fmt = format_of(data)
    if key in fmt.refuses:
        return fmt.refuses[key]
    owners = key_owners(key)
    if owners and fmt.name not in owners:
        return f"it applies to data.format={'|'.join(owners)}, and data.format={fmt.name}"
    return None


# --------------------------------------------------------------------------- files, folders, devices

def preflight(cfg: Any, command: str) -> None:
    """Raise `Action3dError` for the first file, folder or device the config names that is not
    there (checked after the values, before anything runs; reading them stays with the command)."""
    from action3d.data.formats import format_of

    command = effective_command(cfg, command)
    schema = SCHEMAS[command.split()[0]]
    checks = [(key, rule_of(field_), parents) for key, field_, parents in walk(schema)
              if rule_of(field_).preflight is not None and _present(cfg, key) and _value(cfg, key) is not None]
    files = [check for check in checks if check[2] != ("trainer",)]
    devices = [check for check in checks if check[2] == ("trainer",)]   # they import torch: last
    for key, rule, parents in files:
        rule.preflight(_value(cfg, key), Context(key=key, section=_section(cfg, parents), root=cfg, command=command))
    required, optional = _splits_read(cfg, command)
    if required or optional:
        format_of(cfg.data).preflight(required=required, optional=optional)
    for key, rule, parents in devices:
        rule.preflight(_value(cfg, key), Context(key=key, section=_section(cfg, parents), root=cfg, command=command))


def _splits_read(cfg: Any, command: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(splits that must be there, splits checked when given) for the command's dataset."""
    if command == "train":
        return ("train",), ("val",)
    if command == "eval":
        return (cfg.split,), ()
    if command in ("data check", "data prepare", "data pack", "data extract"):
        return ((), ("train", "val")) if cfg.split == "all" else ((cfg.split,), ())
    return (), ()


# --------------------------------------------------------------------------- reading a config

def _present(cfg: Any, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if isinstance(node, DictConfig):
            if part not in node or OmegaConf.is_missing(node, part):
                return False
            node = node._get_node(part)
        elif dataclasses.is_dataclass(node):
            if not hasattr(node, part):
                return False
            node = getattr(node, part)
        else:
            return False
    return True


def _value(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split(".") if key else ():
        if isinstance(node, DictConfig):
            if part not in node:
                return None
            node = node[part]
        else:
            node = getattr(node, part, None)
    return node


def _section(cfg: Any, parents: Tuple[str, ...]) -> Any:
    return _value(cfg, parents[-1]) if parents else cfg


def _fingerprint(cfg: Any) -> Any:
    """A hashable copy of every value of `cfg` (a DictConfig or a dataclass instance)."""
    if isinstance(cfg, DictConfig):
        try:
            plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
        except Exception:  # an interpolation that does not resolve is reported by the checks themselves
            plain = OmegaConf.to_container(cfg, resolve=False)
    else:
        plain = dataclasses.asdict(cfg)
    return hashable(plain)


def forget_checked() -> None:
    """Forget which configs were checked (tests that change the rules or the files)."""
    _CHECKED.clear()

