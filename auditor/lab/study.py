"""Studies: experiments that train several models and compare them (``audit study NAME ...``).

A plugin offers a study through the ``auditor_register_studies`` hook, returning :class:`Study`
objects. ``write_study_report`` renders a self-contained HTML page (tables, charts, image grids)
plus ``study.json``, with the same atomic writes as audit reports.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.results import Figure, Table
from auditor.core.version import __version__
from auditor.report.images import figure_base64
from auditor.report.templates import atomic_write, render_page


@dataclass(frozen=True)
class Study:
    """A named experiment: ``main(argv)`` parses its own arguments and returns an exit code."""

    name: str
    summary: str
    main: Callable[[list[str]], int]


class StudyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    tool_version: str = __version__
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    title: str
    summary: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    findings: list[str] = Field(default_factory=list)   # plain-language conclusions, measured
    tables: list[Table] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    rows: list[dict[str, Any]] = Field(default_factory=list)  # raw measurements, one per trained model
    duration_s: float = 0.0


def write_study_report(report: StudyReport, out_dir: Path) -> Path:
    html = render_page("study.html", report=report)
    atomic_write(out_dir / "study.json", json.dumps(report.model_dump(mode="json"), indent=2))
    atomic_write(out_dir / "study.html", html)
    return out_dir / "study.html"


def bar_chart_png(title: str, groups: list[str], series: dict[str, list[float]], ylabel: str) -> str:
    """A grouped bar chart as base64 PNG (matplotlib, Agg backend)."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) + 2), 3.4), dpi=110)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure_base64(fig)
