"""Import a script under ``recipes/`` or ``benchmarks/`` (not packages) as a module, for the
tests of those scripts."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script(relative_path: str, module_name: str) -> types.ModuleType:
    """``ROOT/<relative_path>`` as a module named ``module_name`` (registered in sys.modules,
    so dataclasses and pickling inside it work)."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_recipe(file_name: str) -> types.ModuleType:
    """``recipes/<file_name>`` as a module named ``<stem>_recipe``."""
    return load_script(f"recipes/{file_name}", f"{pathlib.Path(file_name).stem}_recipe")


def load_benchmark(file_name: str) -> types.ModuleType:
    """``benchmarks/<file_name>`` as a module named ``<stem>_bench``."""
    return load_script(f"benchmarks/{file_name}", f"{pathlib.Path(file_name).stem}_bench")
