"""What ``audit batch`` writes over all models: ``batch.json``, the ranking page (``audit compare``), JUnit and SARIF.

Exit code of the batch: the most severe over the models with the usual precedence, 2 before 1 before 3
before 0. A model whose worker died before its report was written counts as 3 (its audit is incomplete);
a model that could not be loaded or configured counts as 2.
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.results import AuditReport
from auditor.core.version import __version__
from auditor.report.html import atomic_write, load_report

log = logging.getLogger(__name__)

PRECEDENCE = (2, 1, 3, 0)


def most_severe(codes: list[int]) -> int:
    """2 > 1 > 3 > 0; any other code (130, 143) ranks first."""
    ranked = sorted(codes, key=lambda c: PRECEDENCE.index(c) if c in PRECEDENCE else -1)
    return ranked[0] if ranked else 0


class BatchEntry(BaseModel):
    """One model of the batch, as recorded in ``batch.json``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    source: str
    key: str
    folder: str
    status: str                       # completed | up to date | failed
    exit_code: int
    verdict: str = ""
    reason: str | None = None
    seconds: float = 0.0              # wall clock of the task as the driver saw it (0 when up to date)
    audit_seconds: float | None = None
    host: str | None = None
    report_json: str | None = None    # relative to the batch folder


class BatchSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    tool_version: str = __version__
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    exit_code: int = 0
    engine: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0
    counts: dict[str, int] = Field(default_factory=dict)
    entries: list[BatchEntry] = Field(default_factory=list)
    ranking: list[dict[str, Any]] = Field(default_factory=list)
    plugins: list[dict[str, Any]] = Field(default_factory=list)


def _reports(out: Path, entries: list[BatchEntry]) -> list[tuple[BatchEntry, AuditReport, Path]]:
    found = []
    for entry in entries:
        if entry.report_json is not None:
            path = out / entry.report_json
            found.append((entry, load_report(path), path))
    return found


def write_junit_all(found: list[tuple[BatchEntry, AuditReport, Path]], failed: list[BatchEntry], path: Path) -> None:
    """``<testsuites>`` with one suite per model; a model without a report is one suite with one error."""
    from auditor.report.ci_outputs import junit_suite

    root = ET.Element("testsuites", name="auditor batch")
    for entry, report, _ in found:
        root.append(junit_suite(report, name=entry.name))
    for entry in failed:
        suite = ET.SubElement(root, "testsuite", name=entry.name, tests="1", failures="0", errors="1", skipped="0")
        case = ET.SubElement(suite, "testcase", classname="auditor.batch", name="audit", time=f"{entry.seconds:.3f}")
        ET.SubElement(case, "error", message=(entry.reason or "failed").splitlines()[0]).text = entry.reason
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    atomic_write(path, ET.tostring(root, encoding="unicode", xml_declaration=True))


def write_sarif_all(found: list[tuple[BatchEntry, AuditReport, Path]], failed: list[BatchEntry], path: Path) -> None:
    """One SARIF run: every model's findings, plus an error result per model that has no report."""
    from auditor.report.ci_outputs import sarif_document, sarif_findings

    rules: dict[str, dict] = {}
    results: list[dict] = []
    for _, report, _ in found:
        r, res = sarif_findings(report)
        rules.update(r)
        results.extend(res)
    if failed:
        rules["batch/audit-failed"] = {"id": "batch/audit-failed", "shortDescription": {"text": "The model could not be audited"}}
    for entry in failed:
        results.append({"ruleId": "batch/audit-failed", "level": "error", "message": {"text": f"{entry.name}: {entry.reason}"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": entry.source}}}],
                        "properties": {"exit_code": entry.exit_code}})
    atomic_write(path, json.dumps(sarif_document(__version__, rules, results), indent=2))


def write_outputs(summary: BatchSummary, out: Path, *, title: str | None = None, junit: Path | None = None,
                  sarif: Path | None = None) -> Path:
    """The ranking page (compare.html / compare.json), JUnit / SARIF when asked, then batch.json; returns batch.json."""
    from auditor.report.compare import compare_reports, write_comparison

    found = _reports(out, summary.entries)
    failed = [e for e in summary.entries if e.report_json is None]
    if found:
        reports, paths, labels = [r for _, r, _ in found], [p for _, _, p in found], [e.name for e, _, _ in found]
        write_comparison(reports, out, paths=paths, labels=labels, title=title or "Batch audit: models ranked by leakage")
        comparison, _ = compare_reports(reports, paths=paths, labels=labels, out_dir=out)
        summary.ranking = [{"rank": c.rank, "name": c.label, "worst_copy_share": c.worst_copy_share, "worst_gap": c.worst_gap,
                            "highest_severity": c.highest_severity.value if c.highest_severity else None, "exit_code": c.exit_code}
                           for c in comparison.entries]
    if junit is not None:
        write_junit_all(found, failed, junit)
    if sarif is not None:
        write_sarif_all(found, failed, sarif)
    path = out / "batch.json"
    atomic_write(path, summary.model_dump_json(indent=2))
    return path
