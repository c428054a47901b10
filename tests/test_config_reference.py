"""docs/reference/config.md's generated block is what `action3d.config.reference.render()` writes, and
it has a row for every key of every command's schema."""
import difflib
import re

import pytest

from action3d.config import reference
from action3d.config.commands import SCHEMAS
from action3d.config.option import walk

REGENERATE = "python -m action3d.config.reference --write"


@pytest.fixture(scope="module")
def rendered() -> str:
    return reference.render()


def test_the_page_holds_the_generated_reference(rendered):
    text = reference.DOC.read_text(encoding="utf-8")
    block = reference.generated_block(text)
    assert block is not None, f"{reference.DOC}: no {reference.BEGIN} ... {reference.END} block"
    if block != rendered:
        diff = difflib.unified_diff(block.splitlines(), rendered.splitlines(), "the page", "render()", lineterm="", n=0)
        pytest.fail(f"{reference.DOC} is stale: run `{REGENERATE}`\n" + "\n".join(list(diff)[:30]))


def test_every_schema_key_has_a_row(rendered):
    tables = dict(re.findall(r"^## (.+?) \{#[^}]+\}\n(.*?)(?=^## |\Z)", rendered, re.M | re.S))
    missing = []
    for command, schema in SCHEMAS.items():
        for key, _field, parents in walk(schema):
            if parents:   # a section's key, in the section's table (`data.root`)
                found = f"`{key}` |" in rendered
            else:         # a command's own key, in that command's table (`split`)
                found = f"`{key}` |" in tables.get(f"`action3d {command}`", "")
            if not found:
                missing.append(f"{command}: {key}")
    assert not missing, f"keys without a row in the reference: {missing}"


def test_row_anchors_are_unique(rendered):
    anchors = re.findall(r'<a id="([^"]+)"></a>', rendered)
    assert len(anchors) == len(set(anchors)), sorted({a for a in anchors if anchors.count(a) > 1})
    assert set(reference.SEE_ALSO) <= set(anchors), f"SEE_ALSO names no row: {set(reference.SEE_ALSO) - set(anchors)}"


def test_check_mode_agrees(rendered, tmp_path):
    page = tmp_path / "config.md"
    page.write_text(f"# Reference\n\n{reference.BEGIN}\nold\n{reference.END}\n", encoding="utf-8")
    assert reference.main(["--check", "--page", str(page)]) == 1
    assert reference.main(["--write", "--page", str(page)]) == 0
    assert reference.generated_block(page.read_text(encoding="utf-8")) == rendered
    assert reference.main(["--check", "--page", str(page)]) == 0
