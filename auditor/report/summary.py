"""The plain-text summary of an audit that ``audit run`` prints (and the demo, and studies)."""
from __future__ import annotations

from auditor.core.results import AuditReport, Preflight


def preflight_lines(preflight: Preflight) -> str:
    lines = [f"preflight: {preflight.sentence()}", f"  {'candidate':<44} {'member accuracy':>15} {'cross-entropy':>13}"]
    lines += [f"  {c.name:<44} {c.member_accuracy:>15.1%} {c.member_cross_entropy:>13.3f}" for c in preflight.candidates]
    lines += [f"  note: {n}" for n in preflight.notes]
    lines += [f"chosen: {preflight.chosen}", f"member accuracy: {preflight.member_accuracy:.4f}"]
    return "\n".join(lines) + "\n"


def summary(report: AuditReport) -> str:
    lines = [f"preflight: {report.preflight.sentence()}"] if report.preflight else []
    lines += [f"{r.attack:<12} {r.status:<10} {r.duration_s:7.1f}s  " + (
        f"matched SSIM {r.scores.matched_ssim_mean:.3f}  gap {r.scores.gap if r.scores.gap is not None else float('nan'):+.3f}  "
        f"likely copies {r.scores.likely_copy_share if r.scores.likely_copy_share is not None else float('nan'):.1%}"
        if r.scores and r.scores.matched_ssim_mean is not None else (r.reason or "").splitlines()[0] if r.reason else "")
        for r in report.results]
    for f in report.findings:
        lines.append(f"[{f.severity.value.upper()}] {f.attack}: {f.title}")
    lines.append(f"verdict: {report.verdict} (exit {report.exit_code})")
    return "\n".join(lines)
