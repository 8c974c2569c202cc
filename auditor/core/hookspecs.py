"""Hook specifications: the complete contract between auditor and its plugins.

Every hook is called with keyword arguments. A plugin implements a hook with
``@auditor.hookimpl`` and may accept fewer arguments than the spec lists.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from auditor.core.attack import Attack
    from auditor.core.results import AuditReport
    from auditor.lab.study import Study
    from auditor.models.model import Classifier, ModelSpec

_spec = pluggy.HookspecMarker("auditor")
hookimpl = pluggy.HookimplMarker("auditor")


@_spec
def auditor_register_attacks() -> Sequence[type[Attack]]:
    """Return the attack classes this plugin provides.

    Called once when the attack registry is built. Each class needs a unique ``name``;
    two plugins offering the same name is an error that names both.
    """


@_spec
def auditor_register_studies() -> Sequence[Study]:
    """Return the studies this plugin offers (``audit study NAME``).

    A study trains several models and writes one comparison report; names must be unique.
    """


@_spec(firstresult=True)
def auditor_load_model(spec: ModelSpec) -> Classifier | None:
    """Load the classifier described by ``spec``, or return None to decline.

    The call stops at the first non-None result. The core loaders (ONNX, torch.export,
    timm, factory, trusted pickle) run last, so a plugin can add sources or intercept one.
    """


@_spec
def auditor_audit_finished(report: AuditReport) -> None:
    """Called after every attack has run and before the report is written.

    Plugins may read the report (for example to forward findings elsewhere); they must
    not mutate it.
    """
