"""auditor: audit image classifiers for training-data leakage before their weights are published."""
from __future__ import annotations

__version__ = "0.1.0"

from auditor.attack import Attack, AttackConfig, AttackOutput, Capability, RunContext  # noqa: E402
from auditor.hookspecs import hookimpl  # noqa: E402
from auditor.results import AttackResult, AuditReport, Finding, Severity  # noqa: E402

__all__ = ["Attack", "AttackConfig", "AttackOutput", "AttackResult", "AuditReport", "Capability", "Finding",
           "RunContext", "Severity", "__version__", "hookimpl"]
