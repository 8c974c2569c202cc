"""``auditor.audit()``: the Python entry point for notebooks and pipelines, with the same behaviour as ``audit run``."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from auditor.core.results import AuditReport
from auditor.data.sets import AuditData
from auditor.engine.config import build_config
from auditor.engine.plugins import get_plugin_manager
from auditor.engine.runner import run_audit
from auditor.models.model import Classifier
from auditor.report.ci_outputs import write_junit, write_sarif
from auditor.report.html import write_report


def audit(model: str | Path | Classifier, members: str | Path | None = None, reference: str | Path | None = None,
          plugins: Sequence[str] | None = None, *, data: AuditData | None = None, out: str | Path | None = None,
          settings: Mapping[str, Any] | None = None, disable_plugins: Iterable[str] = (), dry_run: bool = False) -> AuditReport:
    """Audit ``model`` as ``audit run`` does and return the report.

    Args:
        model: a model source as ``audit run`` takes it (a path or ``onnx:``/``export:``/``timm:``/``factory:``/``pickle:``),
            or an already loaded :class:`auditor.Classifier` (its preprocessing is kept; the preflight only checks it).
        members: the member data (``--members``): a folder, ``.npz``, IDX folder or a known name such as ``mnist:train``.
        reference: the non-member reference data (``--reference``).
        plugins: the attacks to run (``--plugins``); None runs every installed one.
        data: data already loaded (instead of ``members``/``reference``).
        out: when given, ``report.json`` and ``report.html`` are written there (plus JUnit/SARIF when configured).
        settings: the other sections of ``audit.toml`` as a dict (``run``, ``report``, ``scoring``, ``severity``,
            ``preflight``, ``attacks``, and ``model``/``data`` options such as ``input_shape`` or ``limit``).
        disable_plugins: plugin names not to load (``--disable-plugin``).
        dry_run: validate the model, data and configuration, run nothing (``--dry-run``).

    Raises:
        AuditorError: bad model, data or configuration (``audit run`` exits 2 for these).
    """
    raw: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (settings or {}).items()}
    source = model.info.source if isinstance(model, Classifier) else str(model)
    raw["model"] = {**raw.get("model", {}), "source": source}
    if members is not None:
        raw["data"] = {**raw.get("data", {}), "members": str(members), **({"reference": str(reference)} if reference else {})}
    if plugins is not None:
        raw["run"] = {**raw.get("run", {}), "plugins": list(plugins)}
    if out is not None:
        raw["report"] = {**raw.get("report", {}), "out": str(out)}
    config = build_config(raw)
    pm = get_plugin_manager(blocked=disable_plugins)
    report = run_audit(config, pm, dry_run=dry_run, model=model if isinstance(model, Classifier) else None, data=data)
    if out is not None and not dry_run:
        write_report(report, config.report.out)
        if config.report.junit:
            write_junit(report, config.report.junit)
        if config.report.sarif:
            write_sarif(report, config.report.sarif)
    return report
