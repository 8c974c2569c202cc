"""Presentation: report.json/report.html, charts, ``audit compare``, CI outputs (JUnit, SARIF), figures and images.
Reads results and metric declarations; knows no plugin (``auditor.report`` keeps the names it always had)."""
from __future__ import annotations

from auditor.report.html import (
    first_screen,
    load_report,
    render_html,
    strip_private,
    write_report,
)
from auditor.report.templates import atomic_write, fmt_metric

__all__ = ["atomic_write", "first_screen", "fmt_metric", "load_report", "render_html", "strip_private", "write_report"]
