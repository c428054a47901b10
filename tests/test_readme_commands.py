"""Every command line README.md shows is one action3d accepts: it composes, validates and passes the
applicability check. Only a missing file or folder of the example (a dataset under /data, a run
directory) may stop it, and then with the one-line message that names that path."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from action3d.cli import _data_action_to_override, _split_flags, prevalidate
from action3d.errors import Action3dError

README = Path(__file__).resolve().parents[1] / "README.md"
MISSING = ("no such file", "no such folder", "does not exist", "is not set", "a folder without video files",
           "no folder")


def readme_commands() -> list:
    """`action3d ...` lines of README's code blocks (continuations joined, `$ ` prompts removed),
    without the examples of errors (the line after them starts with `action3d X: error`)."""
    lines = README.read_text().splitlines()
    commands, in_block, i = [], False, 0
    while i < len(lines):
        line = lines[i]
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
                commands.append(text.split("#")[0].strip())
        i += 1
    return commands


def test_readme_has_the_commands_of_every_section():
    found = " ".join(readme_commands())
    for command in ("train", "eval", "predict", "export", "embed", "explain", "info", "data synth", "data check",
                    "data prepare"):
        assert f"action3d {command}" in found, command


@pytest.mark.parametrize("line", readme_commands())
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
