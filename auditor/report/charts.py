"""Inline SVG charts for the HTML reports: no script, no external file, text escaped.

Each function returns :class:`markupsafe.Markup` (every piece of text in it went through :func:`markupsafe.escape`)
or ``None`` when there is nothing to draw. Charts use a fixed ``viewBox`` and scale to the page width.

* :func:`severity_summary`: where each attack's findings fall on the severity scale, against the gate.
* :func:`class_ssim_bars`: per class, matched SSIM to members beside non-members' best, with the copy threshold.
* :func:`similarity_histogram`: per reconstruction, its nearest-member SSIM against its nearest-non-member SSIM.
* :func:`hbars`: ranked horizontal bars (``audit compare``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from markupsafe import Markup, escape

from auditor.core.results import AuditReport, Scores, Severity

MEMBER = "#d2452f"       # reconstructions vs members (training images)
REFERENCE = "#2f6db5"    # reconstructions vs non-members
INK, MUTED, GRID = "#1b1b1f", "#5f6368", "#e6e6e6"
SEVERITY_COLOR = {Severity.INFO: "#1f5f99", Severity.LOW: "#8a7b00", Severity.MEDIUM: "#c46a00", Severity.HIGH: "#b3261e"}
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def _e(text: object) -> str:
    return str(escape(str(text)))


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _f(x: float) -> str:
    return f"{x:.1f}"


def _svg(width: int, height: int, body: list[str], label: str, *, wide: bool = False) -> Markup:
    return Markup(f'<svg class="chart{" wide" if wide else ""}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
                  f'aria-label="{_e(label)}" {FONT} font-size="13">' f"<title>{_e(label)}</title>" + "".join(body) + "</svg>")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-9 else "0"


def _legend(x: float, y: float, items: list[tuple[str, str]]) -> list[str]:
    out = []
    for label, color in items:
        out.append(f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="11" height="11" rx="2" fill="{color}"/>'
                   f'<text x="{_f(x + 16)}" y="{_f(y)}" fill="{INK}">{_e(label)}</text>')
        x += 16 + 7.4 * len(label) + 20
    return out


def _y_axis(body: list[str], ticks: list[float], y_of, left: float, right: float, label: str) -> None:
    for t in ticks:
        y = y_of(t)
        body.append(f'<line x1="{_f(left)}" x2="{_f(right)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>'
                    f'<text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{_tick_label(t)}</text>')
    mid = (y_of(ticks[0]) + y_of(ticks[-1])) / 2
    body.append(f'<text transform="translate(12 {_f(mid)}) rotate(-90)" text-anchor="middle" fill="{MUTED}">{_e(label)}</text>')


# --------------------------------------------------------------------------- severity


def severity_summary(report: AuditReport) -> Markup | None:
    """A dot matrix: one row per attack, one column per severity, the gate's side tinted."""
    if not report.results:
        return None
    levels = list(Severity)  # info < low < medium < high
    width, name_w, head, row_h = 960, 220, 40, 30
    col_w = (width - name_w - 10) / len(levels)
    height = head + row_h * len(report.results) + 8
    gate = report.fail_on
    body: list[str] = []
    for i, level in enumerate(levels):
        x = name_w + i * col_w
        failing = gate is not None and level.rank >= gate.rank
        if failing:
            body.append(f'<rect x="{_f(x)}" y="0" width="{_f(col_w)}" height="{height}" fill="#fdecea"/>')
        count = sum(1 for f in report.findings if f.severity == level)
        body.append(f'<text x="{_f(x + col_w / 2)}" y="18" text-anchor="middle" font-weight="600" fill="{SEVERITY_COLOR[level]}">'
                    f"{count} {level.value}</text>")
    if gate is not None:
        x = name_w + levels.index(gate) * col_w
        body.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="0" y2="{height}" stroke="{SEVERITY_COLOR[Severity.HIGH]}" stroke-dasharray="4 3"/>'
                    f'<text x="{_f(x + 4)}" y="33" fill="{SEVERITY_COLOR[Severity.HIGH]}" font-size="10">gate: {_e(gate.value)} →</text>')
    else:
        body.append(f'<text x="{_f(width - 8)}" y="33" text-anchor="end" fill="{MUTED}" font-size="10">gate off</text>')
    for r, result in enumerate(report.results):
        y = head + r * row_h
        cy = y + row_h / 2
        body.append(f'<line x1="0" x2="{width}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>'
                    f'<text x="6" y="{_f(cy + 4)}" fill="{INK}" font-weight="600">{_e(_short(result.attack, 24))}</text>')
        if result.status != "completed" and not result.findings:
            reason = (result.reason or "").splitlines()[0] if result.reason else ""
            body.append(f'<text x="{_f(name_w + 8)}" y="{_f(cy + 4)}" fill="{MUTED}" font-style="italic">'
                        f"{_e(_short(f'{result.status}: {reason}' if reason else result.status, 80))}</text>")
            continue
        for i, level in enumerate(levels):
            found = [f for f in result.findings if f.severity == level]
            if not found:
                continue
            cx = name_w + (i + 0.5) * col_w
            tip = "; ".join(f.title for f in found)
            body.append(f'<g><title>{_e(f"{level.value}: {tip}")}</title>'
                        f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="10" fill="{SEVERITY_COLOR[level]}"/>'
                        f'<text x="{_f(cx)}" y="{_f(cy + 4)}" text-anchor="middle" fill="#fff" font-weight="700" font-size="11">{len(found)}</text></g>')
        if result.status == "completed" and not result.findings:
            body.append(f'<text x="{_f(name_w + 8)}" y="{_f(cy + 4)}" fill="{MUTED}" font-style="italic">completed, no findings</text>')
    return _svg(width, height, body, "Findings of each attack by severity", wide=True)


# --------------------------------------------------------------------------- reconstruction scores


def class_ssim_bars(scores: Scores | None) -> Markup | None:
    """Grouped bars per class: matched SSIM to members, best SSIM of non-members, and the copy threshold."""
    if scores is None:
        return None
    classes = [c for c in scores.per_class if c.matched_ssim_mean is not None]
    if not classes:
        return None
    width, left, right, top, plot_h = 620, 52, 12, 34, 200
    labels = [_short(c.name or str(c.label), 14) for c in classes]
    band = (width - left - right) / len(classes)
    longest = max(len(t) for t in labels) * 7.4
    rotate = longest > band - 4                                  # labels wider than their band are slanted 35°
    bottom = round(22 + longest * 0.58) if rotate else 36
    height = top + plot_h + bottom
    values = [v for c in classes for v in (c.matched_ssim_mean, c.reference_best_ssim_mean, c.copy_threshold) if v is not None]
    lo, hi = min(0.0, math.floor(min(values) * 10) / 10), 1.0

    def y_of(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    body: list[str] = []
    _y_axis(body, nice_ticks(lo, hi, 5), y_of, left, width - right, "SSIM")
    has_ref = any(c.reference_best_ssim_mean is not None for c in classes)
    bar_w = max(2.0, min(26.0, band * (0.36 if has_ref else 0.6)))
    every = max(1, math.ceil(len(classes) / 40))
    for i, c in enumerate(classes):
        cx = left + (i + 0.5) * band
        pairs = [(c.matched_ssim_mean, MEMBER, "matched SSIM to members")]
        if has_ref:
            pairs.append((c.reference_best_ssim_mean, REFERENCE, "best SSIM of non-members"))
        for j, (value, color, what) in enumerate(pairs):
            if value is None:
                continue
            x = cx - len(pairs) * bar_w / 2 + j * bar_w
            y0, y1 = y_of(max(value, lo)), y_of(0.0)
            body.append(f'<rect x="{_f(x)}" y="{_f(min(y0, y1))}" width="{_f(bar_w - 1)}" height="{_f(abs(y1 - y0))}" fill="{color}">'
                        f"<title>{_e(f'class {c.label} ({c.name}): {what} {value:.3f}')}</title></rect>")
        if c.copy_threshold is not None:
            y = y_of(c.copy_threshold)
            half = len(pairs) * bar_w / 2 + 3
            body.append(f'<line x1="{_f(cx - half)}" x2="{_f(cx + half)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{INK}" stroke-width="2">'
                        f"<title>{_e(f'class {c.label} ({c.name}): copy threshold {c.copy_threshold:.3f}')}</title></line>")
        if i % every == 0:
            label = _e(labels[i])
            base = height - bottom + 14
            if rotate:
                body.append(f'<text transform="translate({_f(cx)} {_f(base)}) rotate(-35)" text-anchor="end" fill="{MUTED}" font-size="11">{label}</text>')
            else:
                body.append(f'<text x="{_f(cx)}" y="{_f(base)}" text-anchor="middle" fill="{MUTED}">{label}</text>')
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y_of(0.0))}" y2="{_f(y_of(0.0))}" stroke="{MUTED}"/>')
    legend = [("matched SSIM to members", MEMBER)] + ([("best SSIM of non-members", REFERENCE)] if has_ref else [])
    body += _legend(left, 16, legend)
    if any(c.copy_threshold is not None for c in classes):
        x = left + sum(16 + 7.4 * len(t) + 20 for t, _ in legend)
        body.append(f'<line x1="{_f(x)}" x2="{_f(x + 14)}" y1="12" y2="12" stroke="{INK}" stroke-width="2"/>'
                    f'<text x="{_f(x + 19)}" y="16" fill="{INK}">copy threshold</text>')
    return _svg(width, height, body, "Per-class SSIM of reconstructions to members and to non-members")


def similarity_histogram(scores: Scores | None) -> Markup | None:
    """Histograms of each reconstruction's nearest-member SSIM and nearest-non-member SSIM."""
    if scores is None:
        return None
    member = np.array([s.nearest_member_ssim for s in scores.samples if s.nearest_member_ssim is not None], dtype=float)
    reference = np.array([s.nearest_reference_ssim for s in scores.samples if s.nearest_reference_ssim is not None], dtype=float)
    member, reference = member[np.isfinite(member)], reference[np.isfinite(reference)]
    if len(member) == 0:
        return None
    both = np.concatenate([member, reference])
    lo, hi = math.floor(both.min() * 20) / 20, math.ceil(both.max() * 20) / 20
    if hi - lo < 0.1:
        mid = (lo + hi) / 2
        lo, hi = mid - 0.05, mid + 0.05
    bins = int(min(40, max(10, round((hi - lo) / 0.025))))
    edges = np.linspace(lo, hi, bins + 1)
    series = [("nearest member (training image)", member, MEMBER)]
    if len(reference):
        series.append(("nearest non-member", reference, REFERENCE))
    counts = [np.histogram(values, bins=edges)[0] for _, values, _ in series]
    peak = max(int(c.max()) for c in counts) or 1
    width, height, left, right, top, bottom = 620, 250, 52, 12, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    def y_of(n: float) -> float:
        return top + (1 - n / peak) * plot_h

    body: list[str] = []
    ticks = [t for t in nice_ticks(0, peak, 4) if t == int(t)] or [0, peak]
    _y_axis(body, ticks, y_of, left, width - right, "reconstructions")
    for (label, values, color), count in zip(series, counts):
        for k, n in enumerate(count):
            if n == 0:
                continue
            x0, x1 = x_of(edges[k]), x_of(edges[k + 1])
            body.append(f'<rect x="{_f(x0 + 0.5)}" y="{_f(y_of(n))}" width="{_f(x1 - x0 - 1)}" height="{_f(y_of(0) - y_of(n))}" '
                        f'fill="{color}" fill-opacity="0.55" stroke="{color}">'
                        f"<title>{_e(f'{label}: {n} with SSIM {edges[k]:.3f} to {edges[k + 1]:.3f}')}</title></rect>")
        mean = float(values.mean())
        body.append(f'<line x1="{_f(x_of(mean))}" x2="{_f(x_of(mean))}" y1="{top - 4}" y2="{_f(y_of(0))}" stroke="{color}" '
                    f'stroke-width="2" stroke-dasharray="5 3"><title>{_e(f"{label}: mean {mean:.3f}")}</title></line>')
    for t in nice_ticks(lo, hi, 8):
        x = x_of(t)
        body.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(y_of(0))}" y2="{_f(y_of(0) + 4)}" stroke="{MUTED}"/>'
                    f'<text x="{_f(x)}" y="{_f(y_of(0) + 16)}" text-anchor="middle" fill="{MUTED}">{_tick_label(t)}</text>')
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y_of(0))}" y2="{_f(y_of(0))}" stroke="{MUTED}"/>'
                f'<text x="{_f(left + plot_w / 2)}" y="{height - 4}" text-anchor="middle" fill="{MUTED}">SSIM (dashed: mean)</text>')
    body += _legend(left, 16, [(label, color) for label, _, color in series])
    return _svg(width, height, body, "Nearest-member and nearest-non-member SSIM of each reconstruction")


# --------------------------------------------------------------------------- comparisons


def _signed(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.1%}"
    return f"{value:+.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:+.2g}"


def hbars(title: str, labels: Sequence[str], values: Sequence[float | None], *, color: str = MEMBER, percent: bool = False,
          min_span: float = 0.0, marker: float | None = None, marker_label: str = "") -> Markup | None:
    """Horizontal bars, one per label in the given order (``None`` is drawn as "–"); the axis spans at least ``min_span``."""
    if not labels:
        return None
    finite = [v for v in values if v is not None and math.isfinite(v)]
    extra = [marker] if marker is not None else []
    lo, hi = min([0.0, *finite, *extra]), max([0.0, *finite, *extra])
    if hi - lo < min_span:
        if lo < 0 and hi > 0:
            lo, hi = lo * min_span / (hi - lo), hi * min_span / (hi - lo)
        elif lo < 0:
            lo = -min_span
        else:
            hi = min_span
    hi = hi if hi > lo else lo + 1.0
    width, name_w, value_w, row_h, top = 620, 170, 70, 24, 30
    height = top + row_h * len(labels) + 10
    plot_w = width - name_w - value_w - 10

    def x_of(v: float) -> float:
        return name_w + (v - lo) / (hi - lo) * plot_w

    body = [f'<text x="0" y="16" font-weight="600" fill="{INK}">{_e(title)}</text>']
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * row_h
        body.append(f'<text x="{name_w - 8}" y="{_f(y + 16)}" text-anchor="end" fill="{INK}">{_e(_short(label, 22))}</text>')
        if value is None or not math.isfinite(value):
            body.append(f'<text x="{_f(x_of(0) + 6)}" y="{_f(y + 16)}" fill="{MUTED}">–</text>')
            continue
        x0, x1 = sorted((x_of(0.0), x_of(value)))
        text = _signed(value, percent)
        body.append(f'<rect x="{_f(x0)}" y="{_f(y + 4)}" width="{_f(max(x1 - x0, 1.5))}" height="{row_h - 8}" rx="2" fill="{color}">'
                    f"<title>{_e(f'{label}: {text}')}</title></rect>"
                    f'<text x="{_f(width - value_w + 4)}" y="{_f(y + 16)}" fill="{INK}">{_e(text)}</text>')
    body.append(f'<line x1="{_f(x_of(0))}" x2="{_f(x_of(0))}" y1="{top}" y2="{height - 6}" stroke="{MUTED}"/>')
    if marker is not None:
        body.append(f'<line x1="{_f(x_of(marker))}" x2="{_f(x_of(marker))}" y1="{top - 6}" y2="{height - 6}" stroke="{INK}" '
                    f'stroke-dasharray="4 3"/><text x="{_f(x_of(marker) + 4)}" y="{top - 2}" fill="{MUTED}" font-size="11">'
                    f"{_e(marker_label)}</text>")
    return _svg(width, height, body, title)
