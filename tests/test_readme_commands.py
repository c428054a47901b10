"""Every command line README.md and the manual (docs/**/*.md) show is one action3d accepts: it
composes, validates and passes the applicability check. Only a missing file or folder of the example
(a dataset under /data, a run directory) may stop it, and then with the one-line message that names
that path. Also: README.md stays a front door (at most 15 KB) and mkdocs.yml's nav and docs/ agree."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from action3d.cli import _data_action_to_override, _split_flags, prevalidate
from action3d.errors import Action3dError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
README_MAX_BYTES = 15 * 1024
MISSING = ("no such file", "no such folder", "does not exist", "is not set", "a folder without video files",
           "no folder")
COMMANDS = ("train", "eval", "predict", "export", "embed", "explain", "info", "data synth", "data check",
            "data prepare", "data pack", "data extract")


def documented_files() -> list:
    """README.md, then every page of the manual, in a stable order."""
    return [README] + sorted(DOCS.rglob("*.md"))


def file_commands(path: Path) -> list:
    """`(line number, command)` of the `action3d ...` lines of a Markdown file's code blocks
    (continuations joined, `$ ` prompts removed), without the examples of errors (the line after
    them starts with `action3d X: error`)."""
    lines = path.read_text().splitlines()
    commands, in_block, i = [], False, 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if line.strip().startswith("```"):
            in_block = not in_block
        text = line.strip().removeprefix("$ ")
        indented = line.startswith("    ") and text.startswith("action3d ")
        if (in_block or indented) and re.match(r"(action3d |torchrun .*-m action3d )", text):
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if ": error:" not in following + text and "..." not in text and "COMMAND" not in text:
                commands.append((number, text.split("#")[0].strip()))
        i += 1
    return commands


def documented_commands() -> list:
    """`(file relative to the checkout, line number, command)` over README.md and docs/."""
    return [(str(path.relative_to(ROOT)), number, command)
            for path in documented_files() for number, command in file_commands(path)]


def readme_commands() -> list:
    return [command for _, _, command in documented_commands()]


def test_readme_has_the_commands_of_every_section():
    """Across README and the manual every command is shown (and so tested); README's tour shows
    train, eval, predict, a sweep and torchrun; the CLI page shows every command."""
    found = " ".join(readme_commands())
    for command in COMMANDS:
        assert f"action3d {command}" in found, command
    readme = " ".join(command for _, command in file_commands(README))
    for command in ("action3d train", "action3d eval", "action3d predict", "action3d train -m", "torchrun "):
        assert command in readme, f"README.md's tour lacks {command!r}"
    cli = " ".join(command for _, command in file_commands(DOCS / "cli.md"))
    for command in COMMANDS:
        assert f"action3d {command}" in cli, f"docs/cli.md lacks `action3d {command}`"


@pytest.mark.parametrize("line", [pytest.param(command, id=f"{path}:{number}")
                                  for path, number, command in documented_commands()])
def test_a_readme_command_line_is_accepted(line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")                 # as the shell expands it in a SLURM array
    words = shlex.split(os.path.expandvars(line.split("-m action3d ", 1)[-1].removeprefix("action3d ")))
    if words[0].startswith("-"):
        pytest.skip("a flag of the action3d entry point")
    command, rest = words[0], words[1:]
    if command == "data":
        rest = _data_action_to_override(rest)
    flags, overrides = _split_flags(rest)
    if line.startswith("torchrun"):
        monkeypatch.setenv("WORLD_SIZE", "4")
    if "hydra/sweeper=optuna" in line or "hydra/launcher=" in line:
        pytest.importorskip("hydra_plugins")
    try:
        prevalidate(command, overrides)
    except Action3dError as err:
        message = str(err)
        assert any(words in message for words in MISSING), f"{line}\n-> {message}"


def test_readme_is_at_most_15_kb():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; the front door keeps to {README_MAX_BYTES}"


def _nav_pages(node) -> list:
    """The page paths of mkdocs.yml's nav (a list of `title: page`, `title: [...]` or `page` items)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


def test_the_nav_and_the_docs_folder_agree():
    """Every page of mkdocs.yml's nav exists under docs_dir, and every docs/**/*.md is in the nav."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(MKDOCS.read_text())
    docs_dir = ROOT / config.get("docs_dir", "docs")
    assert docs_dir == DOCS
    nav = [page for page in _nav_pages(config["nav"]) if not re.match(r"[a-z]+://", page)]
    missing = [page for page in nav if not (docs_dir / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist: {missing}"
    pages = {str(path.relative_to(docs_dir)) for path in docs_dir.rglob("*.md")}
    assert not pages - set(nav), f"pages missing from mkdocs.yml's nav: {sorted(pages - set(nav))}"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def documented_errors() -> list:
    """(file:line, command line, the error line shown after it) of every `$ action3d ...` example
    followed by its `action3d COMMAND: error: ...` line."""
    found = []
    for path in documented_files():
        lines = path.read_text().splitlines()
        for number, (line, following) in enumerate(zip(lines, lines[1:]), start=1):
            if line.startswith("$ action3d ") and ": error: " in following:
                found.append((f"{path.relative_to(ROOT)}:{number}", line[2:], following))
    return found


@pytest.mark.parametrize("where, line, shown", documented_errors(), ids=[w for w, _, _ in documented_errors()])
def test_a_documented_error_is_the_one_the_command_line_prints(where, line, shown, capsys, tmp_path, monkeypatch):
    """The error examples of README and the manual are what action3d prints (`...` stands for the rest)."""
    from action3d.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(line)[1:]) == 2
    printed = capsys.readouterr().err.strip()
    expected = shown.strip()
    if expected.endswith("...)") or expected.endswith("..."):
        assert printed.startswith(expected.rsplit(", ...", 1)[0].rsplit("...", 1)[0]), printed
    else:
        assert printed == expected
