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

MOVED = {  # released paths first, then the flat paths that existed briefly while this round's work was written

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
    "auditor.audit_setup": "auditor.engine.audit_setup",
    "auditor.batch_cli": "auditor.cli.batch",
    "auditor.batch_engine": "auditor.batch.engine",
    "auditor.batch_manifest": "auditor.batch.manifest",
    "auditor.batch_outputs": "auditor.batch.outputs",
    "auditor.batch_worker": "auditor.batch.worker",
    "auditor.factory": "auditor.models.factory",
    "auditor.image_fit": "auditor.models.image_fit",
    "auditor.known_data": "auditor.data.known",
    "auditor.onnx_files": "auditor.models.onnx_files",
    "auditor.onnx_graph": "auditor.models.onnx_graph",
    "auditor.onnx_loader": "auditor.models.onnx_loader",
    "auditor.preflight": "auditor.models.preflight",
    "auditor.provenance": "auditor.models.provenance",
    "auditor.qonnx_lower": "auditor.models.qonnx_lower",
    "auditor.score_figures": "auditor.report.score_figures",
    "auditor.scoring_calibration": "auditor.scoring.calibration",
    "auditor.scoring_config": "auditor.scoring.config",
    "auditor.scoring_gap": "auditor.scoring.gap",
    "auditor.scoring_reference": "auditor.scoring.reference",
    "auditor.similarity": "auditor.scoring.similarity",
    "auditor.sniff": "auditor.models.sniff",
    "auditor.weights": "auditor.models.weights",
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
