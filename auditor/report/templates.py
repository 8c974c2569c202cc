"""The one place pages are rendered: the Jinja environment, the shared stylesheet, metric formatting, atomic writes."""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from auditor.core.results import AttackResult, Severity
from auditor.report.charts import class_ssim_bars, hbars, severity_summary, similarity_histogram

_SEVERITY_CLASS = {Severity.HIGH: "sev-high", Severity.MEDIUM: "sev-medium", Severity.LOW: "sev-low", Severity.INFO: "sev-info"}


def fmt_metric(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def metric_value(result: AttackResult, key: str, value: object) -> str:
    """A metric as its attack declared it (``Attack.metrics``), else in the generic format."""
    spec = next((m for m in result.declared_metrics if m.name == key), None)
    return spec.render(value) if spec is not None and isinstance(value, (int, float)) else fmt_metric(value)  # type: ignore[arg-type]


def environment() -> Environment:
    """The Jinja environment of every page (report, comparison, study): strict, autoescaped, with the chart helpers."""
    env = Environment(loader=ChoiceLoader([PackageLoader("auditor_reports", "templates")]), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({"fmt": fmt_metric, "severity_class": lambda s: _SEVERITY_CLASS.get(Severity(s), "")})
    env.globals.update(metric_value=metric_value, severity_summary=severity_summary, class_ssim_bars=class_ssim_bars,
                       similarity_histogram=similarity_histogram, hbars=hbars)
    return env


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The CSS every page inlines (pages are self-contained)."""
    env = environment()
    return env.loader.get_source(env, "style.css")[0]  # type: ignore[union-attr]


def render_page(template: str, **context: Any) -> str:
    """Render one of the templates in ``reports/templates`` with the stylesheet as ``css``."""
    return environment().get_template(template).render(css=stylesheet(), **context)


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
