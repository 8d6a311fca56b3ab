"""Import a script under ``recipes/`` (not a package) as a module, for the recipe tests."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_recipe(file_name: str) -> types.ModuleType:
    """``recipes/<file_name>`` as a module named ``<stem>_recipe`` (registered in sys.modules,
    so dataclasses and pickling inside it work)."""
    path = ROOT / "recipes" / file_name
    spec = importlib.util.spec_from_file_location(f"{path.stem}_recipe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
