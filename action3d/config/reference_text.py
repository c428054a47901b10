"""The configuration reference's cells (docs/reference/config.md): a field's default, its allowed
values (choices, range, list length and entries, null) and the data formats that read it, as
Markdown text. Read by `action3d.config.reference`; torch-free."""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Tuple

from omegaconf import MISSING

from action3d.config.option import Rule, rule_of
from action3d.data.formats import FORMAT_NAMES, FORMATS, key_owners

CHECK_MARK = "†"
CHECK_NOTE = (f"{CHECK_MARK} a further rule, told in the meaning (it reads other keys or the value's shape); "
              "the config check names the key when it is broken.")


def literal(value: Any) -> str:
    """A value as it is written in a YAML file or an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and value == "":
        return "''"
    return str(value)


def code(value: Any) -> str:
    return f"`{literal(value)}`"


def default_of(field_: dataclasses.Field) -> Any:
    if field_.default_factory is not dataclasses.MISSING:
        return field_.default_factory()
    return field_.default


def default_text(field_: dataclasses.Field) -> str:
    value = default_of(field_)
    return "required" if value is MISSING or value is dataclasses.MISSING else code(value)


def _number(value: float) -> str:
    return f"{value:g}"


def range_text(rule: Rule) -> str:
    """`>= 1`, `> 0`, `<= 1`, `in [0, 1)`; "" without a range."""
    low, high = rule.low, rule.high
    if low is not None and high is not None:
        return f"in {'(' if rule.low_open else '['}{_number(low)}, {_number(high)}{')' if rule.high_open else ']'}"
    if low is not None:
        return f"{'>' if rule.low_open else '>='} {_number(low)}"
    if high is not None:
        return f"{'<' if rule.high_open else '<='} {_number(high)}"
    return ""


_TYPE_WORDS = {"int": "int", "float": "float", "str": "string", "bool": "bool", "Any": ""}


def _annotation(field_: dataclasses.Field) -> Tuple[bool, str]:
    """(is a list, the scalar type's name) of a field's annotation (a string: postponed annotations)."""
    text = str(field_.type).replace(" ", "").replace("typing.", "")
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    text = optional.group(1) if optional else text
    listed = re.fullmatch(r"List\[(.*)\]", text)
    return (True, listed.group(1)) if listed else (False, text)


def _scalar_text(rule: Rule, type_name: str) -> str:
    if rule.choices:
        return ", ".join(code(c) for c in rule.choices)
    if type_name == "bool":
        return "`true`, `false`"
    word = "int" if rule.integer else _TYPE_WORDS.get(type_name, type_name)
    return " ".join(part for part in (word, range_text(rule)) if part)


def allowed_text(field_: dataclasses.Field) -> str:
    """The values a key takes: choices, range, list length and entries, null; a mark for a custom rule."""
    rule = rule_of(field_)
    listed, type_name = _annotation(field_)
    if listed:
        inner = rule.items or Rule()
        word = "int" if inner.integer else _TYPE_WORDS.get(type_name, type_name)
        text = "list"
        if rule.length is not None or word:
            text += " of"
        if rule.length is not None:
            text += f" {rule.length}"
        if word:
            text += f" {word}s"
        if rule.entries:
            text += f" {rule.entries}"
        each = range_text(inner) if rule.items is not None else ""
        if rule.items is not None and inner.choices:
            each = "one of " + ", ".join(code(c) for c in inner.choices)
        if each:
            text += f", each {each}"
        if rule.increasing:
            text += ", increasing"
    else:
        text = _scalar_text(rule, type_name)
    if rule.nullable:
        text = f"{text}, or `null`" if text else "`null`"
    if rule.check is not None:
        text = f"{text or 'see the meaning'} {CHECK_MARK}"
    return text or "any"


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def formats_text(key: str) -> str:
    """The data formats that read data key `key` ("root", "synthetic.size"): "all", or their names."""
    owners = key_owners(key) or FORMAT_NAMES
    refusing = {f.name for f in FORMATS if key.split(".")[0] in f.refuses}
    readers = [name for name in owners if name not in refusing]
    return "all" if list(readers) == list(FORMAT_NAMES) else ", ".join(readers)


def escape(text: str) -> str:
    """A table cell: `|` and Markdown's emphasis characters escaped outside code spans."""
    parts = text.replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):      # outside the code spans
        parts[i] = parts[i].replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return "`".join(parts)
