"""The option matrix is complete: every schema key has a test that shows its effect."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from action3d.config import SCHEMAS

from option_matrix import EFFECTS

TESTS = Path(__file__).parent


def schema_keys(cls, prefix: str = ""):
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            yield from schema_keys(type(default), prefix + f.name + ".")
        else:
            yield prefix + f.name


def all_keys() -> set:
    return {key for schema in SCHEMAS.values() for key in schema_keys(schema)}


def test_every_schema_key_has_an_effect_test():
    missing = sorted(all_keys() - set(EFFECTS))
    assert not missing, f"{len(missing)} config keys without a test in tests/option_matrix.py: {missing}"


def test_every_entry_names_an_existing_test_of_an_existing_key():
    unknown = sorted(set(EFFECTS) - all_keys())
    assert not unknown, f"entries for keys no schema has: {unknown}"
    for key, node in EFFECTS.items():
        path, _, name = node.partition("::")
        source = (TESTS.parent / path).read_text() if (TESTS.parent / path).is_file() else ""
        assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.M), f"{key}: {node} does not exist"
