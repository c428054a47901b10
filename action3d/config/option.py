"""A config field that declares its own rules: `option(default, help=..., choices=..., low=..., ...)`.

Each field of the typed schemas (`action3d.config.model`, `.data`, `.train`, `.commands`) is
declared with `option(...)`, which stores a `Rule` in the dataclass field's metadata: the field's
one-line help, its choices, its range, its list length and the rule of each list entry, a custom
check for what those cannot say (a per-stage list, another key it must agree with), the commands
it applies to, and a condition under which it cannot take effect. One validator
(`action3d.config.validation`) reads them; the configuration reference (`docs/reference/config.md`)
is generated from them. OmegaConf 2.3 rejects `typing.Literal` in structured configs and an Enum
cannot name choices such as `3x1x1`, so choices are part of the declaration, not of the type
(litgpt's idea).

    @dataclass
    class SchedConfig:
        name: str = option("cosine", choices=("cosine", "multistep", "constant"), help="learning-rate schedule")
        gamma: float = option(0.1, low=0.0, high=1.0, applies=only_when("name", "multistep"),
                              help="multistep: the factor at each milestone")

No torch here: the command line checks a config before any heavy import.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

# Every command name a field may list in `commands=`; `data` is split by its action, since each
# action reads different keys.
DATA_ACTIONS = ("synth", "check", "prepare", "pack", "extract")
COMMANDS = ("train", "eval", "predict", "info", "export", "embed", "explain",
            *(f"data {action}" for action in DATA_ACTIONS))
RUN_CHECKPOINT = ("eval", "predict", "export", "embed", "explain")   # commands that run a trained model
READ_VIDEOS = ("predict", "embed", "explain")                        # ... on the videos given by video=


@dataclass(frozen=True)
class Context:
    """What a rule's callbacks see: the key's dotted name, the section that holds it, the whole
    composed config and the command it runs in ("train", "data prepare", ...)."""
    key: str
    section: Any
    root: Any
    command: str


@dataclass(frozen=True)
class Rule:
    """The rules of one config key (see the module docstring)."""
    help: str = ""
    choices: Tuple[Any, ...] = ()
    low: Optional[float] = None            # value >= low (> low with low_open)
    high: Optional[float] = None           # value <= high (< high with high_open)
    low_open: bool = False
    high_open: bool = False
    length: Optional[int] = None           # a list of exactly this many entries
    items: Optional[Rule] = None         # the rule of each entry of a list
    increasing: bool = False               # list entries strictly increasing
    entries: str = ""                      # what a list's entries are, e.g. "(temporal, spatial)"
    integer: bool = False                  # whole numbers only (a field typed Any)
    check: Optional[Callable[[Any, Context], None]] = None          # anything else: raises ConfigError
    applies: Optional[Callable[[Context], Optional[str]]] = None    # why a value set by the user cannot apply
    commands: Optional[Tuple[str, ...]] = None                      # where it applies (None: every command)
    preflight: Optional[Callable[[Any, Context], None]] = None      # files and devices it names must exist
    nullable: bool = False                 # None is a valid value (no other rule applies to it)
    required: Optional[Callable[[Context], Optional[str]]] = None   # a nullable key needed here: why

    @property
    def bounded(self) -> bool:
        """Whether the generated bad-value test has something to break: choices, a range or a length."""
        inner = self.items is not None and self.items.bounded
        return bool(self.choices) or self.low is not None or self.high is not None or self.length is not None or inner


def option(default: Any = dataclasses.MISSING, *, factory: Optional[Callable[[], Any]] = None, help: str,
           **rules: Any) -> Any:
    """A dataclass field with `default` (or `factory` for a list/section) and its `Rule`.

    A default of None makes the key nullable: None means "not set" and skips the other rules.
    """
    rule = Rule(help=help, nullable=rules.pop("nullable", default is None), **rules)
    if factory is not None:
        return field(default_factory=factory, metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


def section(factory: Callable[[], Any], *, help: str, **rules: Any) -> Any:
    """A nested section (a dataclass) with its help and the commands it applies to."""
    return field(default_factory=factory, metadata={"rule": Rule(help=help, **rules)})


def rule_of(field_: dataclasses.Field) -> Rule:
    return field_.metadata.get("rule", Rule())


def is_section(field_: dataclasses.Field) -> bool:
    return field_.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(field_.default_factory())


def walk(schema: type, prefix: str = "") -> Iterator[Tuple[str, dataclasses.Field, Tuple[str, ...]]]:
    """(dotted key, field, dotted keys of the sections around it) for every leaf key of `schema`."""
    yield from _walk(schema, prefix, ())


def _walk(schema: type, prefix: str, parents: Tuple[str, ...]):
    for f in dataclasses.fields(schema):
        key = prefix + f.name
        if is_section(f):
            yield from _walk(type(f.default_factory()), key + ".", (*parents, key))
        else:
            yield key, f, parents


def sections(schema: type, prefix: str = "") -> Iterator[Tuple[str, dataclasses.Field]]:
    """(dotted key, field) of every nested section of `schema`."""
    for f in dataclasses.fields(schema):
        if is_section(f):
            yield prefix + f.name, f
            yield from sections(type(f.default_factory()), prefix + f.name + ".")


def find_field(schema: type, key: str) -> Optional[dataclasses.Field]:
    """The field of dotted `key` in `schema` (a section's own field for a section), or None."""
    head, _, rest = key.partition(".")
    for f in dataclasses.fields(schema):
        if f.name == head:
            if not rest:
                return f
            return find_field(type(f.default_factory()), rest) if is_section(f) else None
    return None


# --------------------------------------------------------------------------- conditions, shared by the schemas

def only_when(sibling: str, *values: Any, reason: str) -> Callable[[Context], Optional[str]]:
    """`applies=`: the key takes effect only when its section's `sibling` is one of `values`;
    `reason` says what the key is ("it is an SGD setting"), the line adds the sibling's value."""
    def applies(ctx: Context) -> Optional[str]:
        actual = getattr(ctx.section, sibling)
        if actual in values:
            return None
        name = ctx.key.rsplit(".", 1)[0] + "." + sibling if "." in ctx.key else sibling
        return f"{reason} and {name}={actual}"
    return applies


def all_of(*conditions: Callable[[Context], Optional[str]]) -> Callable[[Context], Optional[str]]:
    """`applies=`: the first reason any of the conditions gives."""
    def applies(ctx: Context) -> Optional[str]:
        for condition in conditions:
            reason = condition(ctx)
            if reason:
                return reason
        return None
    return applies


def every_command_but(*excluded: str) -> Tuple[str, ...]:
    return tuple(c for c in COMMANDS if c not in excluded)


def commands_with(*names: Sequence[str] | str) -> Tuple[str, ...]:
    """`commands=`: the union of names and tuples of names, in COMMANDS order."""
    wanted = {n for name in names for n in ((name,) if isinstance(name, str) else name)}
    unknown = wanted - set(COMMANDS)
    if unknown:
        raise ValueError(f"unknown command names {sorted(unknown)}")
    return tuple(c for c in COMMANDS if c in wanted)


# --------------------------------------------------------------------------- reading the rules

def check_value(rule: Rule, key: str, value: Any, ctx: Context) -> None:
    """Raise `ConfigError` (one line naming `key`) when `value` breaks `rule`'s value rules
    (choices, range, length, entries, custom check). Whether it applies is another question
    (`action3d.config.validation`)."""
    from action3d.config.checks import ConfigError, check_choice, check_range, fail, is_int, is_sequence

    if value is None:
        needed = rule.required(ctx) if rule.required is not None else None
        if needed or not rule.nullable:
            raise ConfigError(f"{key}: {needed or 'a value is required'}")
        return
    if rule.choices:
        check_choice(key, value, rule.choices)
    if rule.integer and not is_int(value):
        fail(key, value, "expected a whole number")
    if rule.low is not None or rule.high is not None:
        check_range(key, value, low=rule.low, high=rule.high, low_open=rule.low_open, high_open=rule.high_open)
    if rule.length is not None or rule.items is not None or rule.increasing:
        if not is_sequence(value):
            fail(key, value, f"needs a list{f' of {rule.length} values' if rule.length else ''}")
        if rule.length is not None and len(value) != rule.length:
            fail(key, value, f"needs {rule.length} values{' ' + rule.entries if rule.entries else ''}")
        for entry in value if rule.items is not None else ():
            try:
                check_value(rule.items, key, entry, ctx)
            except Exception as err:  # name the whole list, as the user typed it
                fail(key, value, "entries: " + str(err).split(" is not allowed: ", 1)[-1])
        if rule.increasing and any(b <= a for a, b in zip(value, value[1:])):
            fail(key, value, "entries must increase")
    if rule.check is not None:
        rule.check(value, ctx)


def check_fields(schema: type, section: Any, *, prefix: str = "", root: Any = None, command: str = "",
                 keys: Optional[Sequence[str]] = None) -> None:
    """The value rules of `schema`'s leaf fields (or only `keys`) on `section`, an object with those
    attributes (a dataclass, an OmegaConf node or a namespace): for library calls such as
    `ResNet3d(...)` and `make_synthetic(...)` made from Python, outside any command line."""
    for f in dataclasses.fields(schema):
        if (keys is not None and f.name not in keys) or is_section(f):
            continue
        ctx = Context(key=prefix + f.name, section=section, root=section if root is None else root, command=command)
        check_value(rule_of(f), prefix + f.name, getattr(section, f.name), ctx)
