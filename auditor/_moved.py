"""The host's old flat module paths (the released layout, before the sub-packages), kept importable for third parties.

``import auditor.attack`` still works and gives the module's new home (``auditor.core.attack``), with a
DeprecationWarning that names it. New code imports the public API (``from auditor import ...``).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED = {
    "auditor.attack": "auditor.core.attack",
    "auditor.charts": "auditor.report.charts",
    "auditor.ci_outputs": "auditor.report.ci_outputs",
    "auditor.compare": "auditor.report.compare",
    "auditor.config": "auditor.engine.config",
    "auditor.demo": "auditor.lab.demo",
    "auditor.errors": "auditor.core.errors",
    "auditor.hookspecs": "auditor.core.hookspecs",
    "auditor.images": "auditor.report.images",
    "auditor.loaders": "auditor.models.loaders",
    "auditor.lpips_cache": "auditor.scoring.lpips_scorer",
    "auditor.model": "auditor.models.model",
    "auditor.onnx_model": "auditor.models.onnx_model",
    "auditor.paths": "auditor.core.paths",
    "auditor.plugins": "auditor.engine.plugins",
    "auditor.presets": "auditor.lab.presets",
    "auditor.results": "auditor.core.results",
    "auditor.runner": "auditor.engine.runner",
    "auditor.severity": "auditor.core.severity",
    "auditor.study": "auditor.lab.study",
    "auditor.zeroth_order": "auditor.models.zeroth_order",
    "auditor.zoo": "auditor.lab.zoo",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names and loads them as the moved module itself (same object, so patches and identity hold)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a placeholder; exec_module swaps in the moved module

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} is deprecated; import from {new} (or the public API: `from auditor import ...`)",
                      DeprecationWarning, stacklevel=2)
        sys.modules[module.__name__] = importlib.import_module(new)


def install() -> None:
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
