"""``audit compare``: several audits side by side, models ranked by leakage.

Each input is a ``report.json`` written by ``audit run`` (or a folder holding one). The page
``compare.html`` (self-contained, like every report) ranks the models by leakage and shows, for each
attack, their scores in adjacent columns and their similarity histograms next to each other;
``compare.json`` holds the ranking.

Ranking rule, worst first: the highest share of likely copies of training images over a model's
attacks, then the highest member-minus-non-member SSIM gap, then the most severe finding. A model
whose attacks produced neither number ranks below every model that has one.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.errors import UsageError
from auditor.core.metrics import SCORE_METRICS, Metric
from auditor.core.results import AttackResult, AuditReport, Severity
from auditor.core.version import __version__
from auditor.report.html import load_report
from auditor.report.templates import atomic_write, render_page

log = logging.getLogger(__name__)

RANKING_RULE = ("worst first by the highest likely-copy share over the model's attacks, then the highest "
                "member − non-member SSIM gap, then the most severe finding")


class ComparedAudit(BaseModel):
    """One audited model's leakage headline, as ranked in ``compare.json``."""

    model_config = ConfigDict(extra="forbid")
    rank: int = 0
    label: str
    source: str
    sha256: str | None = None
    report_json: str | None = None
    report_html: str | None = None          # relative to the comparison's folder, when that file exists
    highest_severity: Severity | None = None
    worst_copy_share: float | None = None
    worst_copy_attack: str | None = None
    worst_gap: float | None = None
    worst_gap_attack: str | None = None
    exit_code: int = 0
    verdict: str = ""
    completed: int = 0
    attacks: int = 0
    members_sha256: str | None = None


class Comparison(BaseModel):
    """What ``compare.json`` holds."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    tool_version: str = __version__
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    title: str = "Privacy audits compared"
    ranking_rule: str = RANKING_RULE
    entries: list[ComparedAudit] = Field(default_factory=list)
    attacks: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def _worst(results: list[AttackResult], field: str) -> tuple[float | None, str | None]:
    best: tuple[float | None, str | None] = (None, None)
    for r in results:
        value = getattr(r.scores, field) if r.scores is not None else None
        if value is not None and math.isfinite(value) and (best[0] is None or value > best[0]):
            best = (value, r.attack)
    return best


def summarize(report: AuditReport, label: str, report_json: Path | None = None, out_dir: Path | None = None) -> ComparedAudit:
    """The leakage headline of one audit."""
    copy_share, copy_attack = _worst(report.results, "likely_copy_share")
    gap, gap_attack = _worst(report.results, "gap")
    html = None
    if report_json is not None and (report_json.parent / "report.html").exists() and out_dir is not None:
        html = os.path.relpath(report_json.parent / "report.html", out_dir)
    top = report.highest_severity()
    return ComparedAudit(label=label, source=report.model.source, sha256=report.model.sha256,
                         report_json=str(report_json) if report_json else None, report_html=html, highest_severity=top,
                         worst_copy_share=copy_share, worst_copy_attack=copy_attack, worst_gap=gap, worst_gap_attack=gap_attack,
                         exit_code=report.exit_code, verdict=report.verdict,
                         completed=sum(1 for r in report.results if r.status == "completed"), attacks=len(report.results),
                         members_sha256=report.data.members_sha256 if report.data else None)


def leakage_key(entry: ComparedAudit) -> tuple[float, float, int]:
    """Sort key, larger = leaks more (see the module docstring)."""
    return (entry.worst_copy_share if entry.worst_copy_share is not None else -math.inf,
            entry.worst_gap if entry.worst_gap is not None else -math.inf,
            entry.highest_severity.rank if entry.highest_severity is not None else -1)


def unique_labels(reports: Sequence[AuditReport], paths: Sequence[Path | None]) -> list[str]:
    """Short names for the models: the file name of the source, disambiguated by the report's folder, then a number."""
    base = [Path(r.model.source).name or r.model.source for r in reports]
    labels = [f"{label} ({p.parent.name})" if base.count(label) > 1 and p is not None and p.parent.name else label
              for label, p in zip(base, paths)]
    repeated = {label for label in labels if labels.count(label) > 1}
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label in repeated:
            seen[label] = seen.get(label, 0) + 1
            labels[i] = f"{label} #{seen[label]}"
    return labels


def compare_reports(reports: Sequence[AuditReport], *, paths: Sequence[Path | None] | None = None, labels: Sequence[str] | None = None,
                    out_dir: Path | None = None, title: str | None = None) -> tuple[Comparison, list[AuditReport]]:
    """Rank the audits; returns the comparison and the reports in ranked order."""
    if not reports:
        raise UsageError("audit compare needs at least one report.json")
    paths = list(paths) if paths is not None else [None] * len(reports)
    labels = list(labels) if labels is not None else unique_labels(reports, paths)
    entries = [summarize(r, label, p, out_dir) for r, label, p in zip(reports, labels, paths)]
    order = sorted(range(len(entries)), key=lambda i: leakage_key(entries[i]), reverse=True)
    ranked = [entries[i].model_copy(update={"rank": n + 1}) for n, i in enumerate(order)]
    attacks = list(dict.fromkeys(r.attack for rep in reports for r in rep.results))
    warnings = []
    if len({e.members_sha256 for e in entries}) > 1:
        warnings.append("The audits did not all use the same member data: their scores compare models trained on different sets.")
    if len({json.dumps(rep.config.get("severity"), sort_keys=True) for rep in reports}) > 1:
        warnings.append("The audits used different severity thresholds: compare their numbers, not only their verdicts.")
    comparison = Comparison(entries=ranked, attacks=attacks, warnings=warnings, **({"title": title} if title else {}))
    return comparison, [reports[i] for i in order]


def load_inputs(items: Sequence[Path]) -> tuple[list[AuditReport], list[Path]]:
    """Read each ``report.json`` (a folder stands for the ``report.json`` inside it)."""
    reports, paths = [], []
    for item in items:
        path = item / "report.json" if item.is_dir() else item
        reports.append(load_report(path))
        paths.append(path)
    return reports, paths


def _declared(results: list[AttackResult | None]) -> list[Metric]:
    """The metrics the attack declared (``Attack.metrics``), in order, over every model's result; shown when marked ``compare``."""
    seen: dict[str, Metric] = {}
    for r in results:
        for m in r.declared_metrics if r else []:
            if m.compare:
                seen.setdefault(m.name, m)
    return list(seen.values())


def _metric_rows(attack: str, ranked: list[AuditReport]) -> list[tuple[str, list[object], Metric | None]]:
    """(row label, one cell per model, the metric's declaration or None) for one attack."""
    results = [next((r for r in rep.results if r.attack == attack), None) for rep in ranked]
    rows: list[tuple[str, list[object], Metric | None]] = [("status", [r.status if r else "not run" for r in results], None)]
    top = [max((f.severity for f in r.findings), key=lambda s: s.rank, default=None) if r else None for r in results]
    rows.append(("highest finding", [s.value if s else None for s in top], None))
    if any(r is not None and r.scores is not None for r in results):
        for metric in SCORE_METRICS:
            rows.append((metric.title, [getattr(r.scores, metric.name) if r and r.scores else None for r in results], metric))
    for metric in _declared(results):
        if any(r is not None and metric.name in r.metrics for r in results):
            rows.append((metric.title, [r.metrics.get(metric.name) if r else None for r in results], metric))
    rows.append(("time (s)", [r.duration_s if r else None for r in results], None))
    return rows


def render_comparison(comparison: Comparison, ranked: list[AuditReport]) -> str:
    tables = {a: _metric_rows(a, ranked) for a in comparison.attacks}
    worst = {a: [metric.worst(cells) if metric else None for _, cells, metric in rows] for a, rows in tables.items()}
    results = {a: [next((r for r in rep.results if r.attack == a), None) for rep in ranked] for a in comparison.attacks}
    return render_page("compare.html", comparison=comparison, results=results, tables=tables, worst=worst)


def write_comparison(reports: Sequence[AuditReport], out_dir: Path, *, paths: Sequence[Path | None] | None = None,
                     labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Write ``compare.json`` and a self-contained ``compare.html`` into ``out_dir``; returns the HTML path.

    Studies call it with the reports they just wrote (``paths`` lets the page link to each report.html).
    """
    comparison, ranked = compare_reports(reports, paths=paths, labels=labels, out_dir=out_dir, title=title)
    html = render_comparison(comparison, ranked)
    atomic_write(out_dir / "compare.json", comparison.model_dump_json(indent=2))
    atomic_write(out_dir / "compare.html", html)
    log.info("comparison written to %s", out_dir / "compare.html")
    return out_dir / "compare.html"
