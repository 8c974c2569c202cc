"""Write ``report.json`` (the source of truth) and a self-contained ``report.html``, atomically."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from auditor.core.errors import UsageError
from auditor.core.results import AuditReport, Severity
from auditor.report.templates import atomic_write, fmt_metric, render_page

__all__ = ["atomic_write", "fmt_metric", "first_screen", "load_report", "render_html", "strip_private", "write_report"]

log = logging.getLogger(__name__)

def _preflight_sentence(report: AuditReport) -> str:
    if report.preflight is None:
        return "No preflight was recorded: this report does not say whether the model classifies the auditor's data."
    return report.preflight.sentence()


def first_screen(report: AuditReport) -> list[str]:
    """One sentence each: did the model classify the data, what did the attacks recover, against the null, the verdict."""
    scored = [r for r in report.results if r.scores is not None and r.scores.samples]
    calibrated = [r for r in scored if r.scores.calibrated and r.scores.distinct_members_recovered is not None]
    lines = [_preflight_sentence(report)]
    if not scored:
        lines.append("No attack produced reconstructions to compare with the training images.")
    elif not calibrated:
        lines.append(f"{len(scored)} attack(s) produced reconstructions, but without non-member images the tool cannot say "
                     "whether any is a copy of a training image.")
    else:
        per = ", ".join(f"{r.attack} {r.scores.distinct_members_recovered}" for r in calibrated)
        total = sum(r.scores.distinct_members_recovered for r in calibrated)
        lines.append(f"The attacks recovered {total} distinct training image(s) as likely copies ({per}), from "
                     f"{sum(len(r.scores.samples) for r in calibrated)} reconstructions.")
        parts = []
        for r in calibrated:
            s = r.scores
            parts.append(f"{r.attack}: {s.likely_copies} likely copies where {s.copy_expected_by_null or 0.0:.1f} are expected "
                         f"by chance (p = {s.copy_p_value:.2g})" if s.copy_p_value is not None else f"{r.attack}: no test")
        rate = max((r.scores.null_copy_rate or 0.0) for r in calibrated)
        lines.append(f"Held-out real non-members scored the same way are likely copies at up to {rate:.1%}; against that "
                     f"null, {'; '.join(parts)}.")
    lines.append(f"Verdict: {report.verdict}." if report.verdict else "No verdict was recorded.")
    return lines


def render_html(report: AuditReport) -> str:
    counts = {s.value: sum(1 for f in report.findings if f.severity == s) for s in reversed(list(Severity))}
    return render_page("report.html", report=report, findings=report.findings, severity_counts=counts,
                       show_private=report.member_images, first_screen=first_screen(report))


def strip_private(report: AuditReport) -> AuditReport:
    """A copy without member images (for reports that travel)."""
    results = [r.model_copy(update={"figures": [f for f in r.figures if not f.private]}) for r in report.results]
    return report.model_copy(update={"results": results, "member_images": False})


def write_report(report: AuditReport, out_dir: Path) -> Path:
    """Write report.json and report.html into ``out_dir``; returns the HTML path. Never leaves a half-written file."""
    if not report.member_images:
        report = strip_private(report)
    html = render_html(report)  # render first: a template error must not replace a good report
    payload = report.model_dump_json(indent=2)
    atomic_write(out_dir / "report.json", payload)
    atomic_write(out_dir / "report.html", html)
    log.info("report written to %s", out_dir / "report.html")
    return out_dir / "report.html"


def load_report(path: Path) -> AuditReport:
    """Read a ``report.json``; a missing or foreign file is a :class:`UsageError`."""
    try:
        return AuditReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{path} not found") from exc
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not an auditor report (schema version 1): {str(exc)[:500]}") from exc
