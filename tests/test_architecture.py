"""The package's shape: commands at the edge, a library below, no cycles, one source per preset, injectable norms."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import action3d
from action3d import models
from action3d.cli import main
from action3d.config.model_presets import PRESETS as MODEL_PRESETS
from action3d.config.model_presets import builder_name
from action3d.models import PRESETS, ResNet3d

PACKAGE = Path(action3d.__file__).parent
CONF = PACKAGE.parent / "conf"
LIBRARY = ("engine", "data", "models")


def modules() -> dict:
    """module name -> parsed source of every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), filename=str(path))
    return out


def imported(tree: ast.AST, name: str) -> set:
    """Modules a module imports, at its top level or inside functions (a lazy import is still a
    dependency: a cycle through one is a cycle)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(name.split(".")[:-node.level] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_the_library_neither_reads_hydra_nor_exits():
    for name, tree in modules().items():
        if name.split(".")[1:2] and name.split(".")[1] in LIBRARY:
            source = ast.unparse(tree)
            assert "hydra" not in {m.split(".")[0] for m in _all_imports(tree)}, f"{name} imports hydra"
            assert "sys.exit" not in source and "SystemExit" not in source, f"{name} exits"


def _all_imports(tree: ast.AST) -> set:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_imports_hydras_internals():
    """Hydra's public API only (`hydra.compose`, the override parser, `OmegaConf.update`):
    `hydra._internal` changes between releases without notice."""
    root = PACKAGE.parent
    offenders = [str(path.relative_to(root)) for folder in ("action3d", "tests", "scripts")
                 for path in (root / folder).rglob("*.py") if "hydra._internal" in path.read_text()
                 and path.name != "test_architecture.py"]
    assert not offenders, offenders


def test_commands_do_not_import_each_other():
    """What two commands share lives in a module they both import (commands/_*.py), so a command
    can change without another one changing with it."""
    from action3d.cli import COMMANDS

    commands = {f"action3d.commands.{name}" for name in COMMANDS}
    trees = modules()
    for name in commands:
        others = {m for m in imported(trees[name], name) if m in commands and m != name}
        assert not others, f"{name} imports the command module(s) {sorted(others)}"


def test_the_package_has_no_import_cycle():
    trees = modules()
    # A module's own parent packages are loaded before it anyway: those edges are not imports.
    graph = {name: {m for m in imported(tree, name) if m in trees and m != name and not name.startswith(m + ".")}
             for name, tree in trees.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += graph[node]
        return False

    cycles = [name for name in graph if reaches(name, name)]
    loops = {name: next((m for m in graph[name] if reaches(m, name)), None) for name in cycles}
    assert not cycles, f"modules in an import cycle (module -> the import that leads back): {loops}"


def test_config_rules_and_the_cli_path_import_no_torch():
    code = ("import sys, action3d.cli, action3d.config, action3d.config.validation, action3d.data.formats; "
            "print(sorted(m for m in ('torch', 'torchvision', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_preset_has_a_builder_named_by_the_rule():
    """`model=NAME` (the config registry) <-> `action3d.models.<builder_name(NAME)>`: no preset
    without a builder, no builder without a preset."""
    assert sorted(PRESETS) == sorted(MODEL_PRESETS)
    for name, builder in PRESETS.items():
        assert builder.__name__ == builder_name(name) and getattr(models, builder_name(name)) is builder
        assert MODEL_PRESETS[name].source in builder.__doc__
    assert builder_name("ptv/x3d_m") == "ptv_x3d_m"
    with pytest.raises(ValueError, match="identifier"):
        builder_name("ptv/x3d-m")


def test_no_preset_is_a_yaml_file_any_more():
    """The presets are Python values; a conf/model/NAME.yaml would be a second source (Hydra would
    merge it over the Python preset NAME, by its deprecated automatic schema matching)."""
    assert not (CONF / "model").exists()


def test_version_flag_prints_the_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"action3d {action3d.__version__}"


def group_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(4, channels)


def test_injected_norm_and_activation_reach_every_layer():
    net = ResNet3d(18, base_channels=8, stage_blocks=(1, 1, 1, 1), norm_layer=group_norm, act_layer=nn.SiLU)
    kinds = {type(m) for m in net.modules()}
    assert nn.GroupNorm in kinds and nn.SiLU in kinds
    assert nn.BatchNorm3d not in kinds and nn.ReLU not in kinds


def test_a_group_norm_backbone_trains_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = PRESETS["tiny"](num_classes=3, base_channels=8, norm_layer=group_norm)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(6, 3, 4, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if not losses:
            assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bn_only_features_skip_a_group_norm_model_without_crashing():
    from action3d.engine.precise_bn import has_batch_norm, recompute_bn_stats

    model = PRESETS["tiny"](num_classes=3, base_channels=8, norm_layer=group_norm, norm_eval=True, frozen_stages=1)
    model.train()                                          # norm_eval and frozen stages: no BN to set to eval
    assert not has_batch_norm(model)
    assert recompute_bn_stats(model, [torch.randn(2, 3, 4, 32, 32)]) == 1
    assert nn.SyncBatchNorm.convert_sync_batchnorm(model) is model  # nothing to convert
    bn_weights = PRESETS["tiny"](num_classes=3, base_channels=8).state_dict()
    missing, unexpected = model.load_state_dict(bn_weights, strict=False)
    assert not missing and all("running" in k or "num_batches" in k for k in unexpected)


@pytest.mark.parametrize("command", [["info", "model=tiny"], ["data", "synth", "out=synth",
                                                                "data.synthetic.train_per_class=1",
                                                                "data.synthetic.val_per_class=1",
                                                                "data.synthetic.size=16",
                                                                "data.synthetic.num_frames=4"]])
def test_commands_without_a_run_directory_leave_no_log_file(command, tmp_path):
    subprocess.run([sys.executable, "-m", "action3d", *command], cwd=tmp_path, check=True, capture_output=True)
    assert not list(tmp_path.rglob("*.log"))
