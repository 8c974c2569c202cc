"""Write ``report.json`` (the source of truth) and a self-contained ``report.html``, atomically."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from auditor.results import AuditReport, Severity

log = logging.getLogger(__name__)

_SEVERITY_CLASS = {Severity.HIGH: "sev-high", Severity.MEDIUM: "sev-medium", Severity.LOW: "sev-low", Severity.INFO: "sev-info"}


def fmt_metric(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=ChoiceLoader([PackageLoader("auditor_reports", "templates")]), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({"fmt": fmt_metric, "severity_class": lambda s: _SEVERITY_CLASS.get(Severity(s), "")})
    from auditor import charts  # inline SVG charts; they escape their own text and return Markup

    env.globals.update(severity_summary=charts.severity_summary, class_ssim_bars=charts.class_ssim_bars,
                       similarity_histogram=charts.similarity_histogram, hbars=charts.hbars)
    return env


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
    env = _environment()
    css = env.loader.get_source(env, "style.css")[0]  # type: ignore[union-attr]
    counts = {s.value: sum(1 for f in report.findings if f.severity == s) for s in reversed(list(Severity))}
    return env.get_template("report.html").render(report=report, css=css, findings=report.findings, severity_counts=counts,
                                                  show_private=report.member_images, first_screen=first_screen(report))


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    from auditor.errors import UsageError

    try:
        return AuditReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{path} not found") from exc
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not an auditor report (schema version 1): {str(exc)[:500]}") from exc
