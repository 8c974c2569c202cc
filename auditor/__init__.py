"""auditor: audit image classifiers for training-data leakage before their weights are published.

This module is the public API. Plugins (builtin and third-party) import from here, and studies from
:mod:`auditor.lab`; everything else under ``auditor.*`` is the host's inside and may move.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditor import _moved
from auditor.core.attack import Attack, AttackConfig, AttackOutput, RunContext
from auditor.core.capabilities import Capability
from auditor.core.errors import (
    AttackTimeout,
    AuditorError,
    CapabilityError,
    DataError,
    ModelLoadError,
    UsageError,
)
from auditor.core.hookspecs import hookimpl
from auditor.core.metrics import Metric
from auditor.core.paths import datasets_dir
from auditor.core.progress import progress
from auditor.core.results import (
    AttackResult,
    AuditReport,
    Figure,
    Finding,
    Scores,
    Severity,
    Table,
)
from auditor.core.severity import SeverityThresholds, reconstruction_findings
from auditor.core.version import __version__
from auditor.data.sets import AuditData, LabeledImages, balanced_subset, load_images
from auditor.models.model import Classifier, LogProbabilities, Preprocess, from_module
from auditor.report.images import (
    auto_scale,
    figure_base64,
    make_grid,
    png_base64,
    rows_grid,
)
from auditor.scoring.similarity import ssim, ssim_matrix

if TYPE_CHECKING:
    from auditor.engine.context import AuditRun

_moved.install()  # the released flat paths (auditor.attack, auditor.model, ...) still import, with a DeprecationWarning


def audit(*args: Any, **kwargs: Any) -> AuditReport:
    """Audit a model as ``audit run`` does; see :func:`auditor.engine.api.audit` for the arguments."""
    from auditor.engine.api import audit as _audit

    return _audit(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "AuditRun":  # the engine loads on first use, so `import auditor` in a plugin stays light
        from auditor.engine.context import AuditRun

        return AuditRun
    raise AttributeError(f"module 'auditor' has no attribute {name!r}")


__all__ = ["Attack", "AttackConfig", "AttackOutput", "AttackResult", "AttackTimeout", "AuditData", "AuditReport", "AuditRun",
           "AuditorError", "Capability", "CapabilityError", "Classifier", "DataError", "Figure", "Finding", "LabeledImages",
           "LogProbabilities", "Metric", "ModelLoadError", "Preprocess", "RunContext", "Scores", "Severity",
           "SeverityThresholds", "Table", "UsageError", "__version__", "audit", "auto_scale", "balanced_subset", "datasets_dir",
           "figure_base64", "from_module", "hookimpl", "load_images", "make_grid", "png_base64", "progress",
           "reconstruction_findings", "rows_grid", "ssim", "ssim_matrix"]
