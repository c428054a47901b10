"""Every public name resolves: each package's `__all__`, the lazily exported ones included
(`action3d.data` imports its modules on first use; a stale entry would raise AttributeError)."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import action3d


def packages() -> list:
    found = [action3d.__name__]
    for info in pkgutil.walk_packages(action3d.__path__, prefix="action3d."):
        if info.ispkg:
            found.append(info.name)
    return found


PUBLIC = [(package, name) for package in packages()
          for name in getattr(importlib.import_module(package), "__all__", [])]


def test_the_packages_that_export_names_are_found():
    exporting = {package for package, _ in PUBLIC}
    assert {"action3d.config", "action3d.data", "action3d.data.formats", "action3d.models"} <= exporting


@pytest.mark.parametrize("package, name", PUBLIC, ids=[f"{p}.{n}" for p, n in PUBLIC])
def test_every_name_in_all_resolves(package, name):
    module = importlib.import_module(package)
    assert getattr(module, name) is not None
    assert name in dir(module)
