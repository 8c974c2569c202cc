"""report.json round trip, self-contained HTML, escaping of hostile text, atomic writes."""
from __future__ import annotations

import json
import re

from auditor.core.results import AttackResult, AuditReport, ClassScore, DataInfo, Figure, Finding, ModelInfo, Scores, Severity
from auditor.report.html import load_report, render_html, write_report

XSS = '<script>alert(1)</script>'
IMG = '"><img src=x onerror=alert(2)>'


def _hostile_report() -> AuditReport:
    return AuditReport(
        tool_version="0.1.0", created="2026-11-28T00:00:00Z", seed=0, fail_on=Severity.HIGH,
        model=ModelInfo(source=f"evil{IMG}.onnx", format="onnx", metadata={"author": XSS}, producer=IMG),
        data=DataInfo(members_source="m", members_sha256="0" * 64, members_count=2, members_per_class=[1, 1], class_names=[XSS, IMG]),
        results=[AttackResult(attack="inversion", status="completed", summary=XSS,
                              scores=Scores(calibrated=True, per_class=[ClassScore(label=0, name=XSS, count=1)]),
                              findings=[Finding(attack="inversion", title=XSS, severity=Severity.HIGH, detail=IMG)],
                              figures=[Figure(title=XSS, png_base64="iVBORw0KGgo=", caption=IMG)])])


def test_json_round_trip(tmp_path):
    report = _hostile_report()
    write_report(report, tmp_path)
    loaded = load_report(tmp_path / "report.json")
    assert loaded == report
    assert json.loads((tmp_path / "report.json").read_text())["schema_version"] == 1


def test_hostile_text_is_escaped_everywhere():
    html = render_html(_hostile_report())
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 0


def test_html_is_self_contained():
    html = render_html(_hostile_report())
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<style>" in html and "data:image/png;base64," in html


def test_no_member_images_drops_private_figures(tmp_path):
    report = _hostile_report()
    report.results[0].figures.append(Figure(title="pairs", png_base64="AAAA", private=True))
    write_report(report.model_copy(update={"member_images": False}), tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert all(not f["private"] for f in data["results"][0]["figures"])
    assert "contains private data" not in (tmp_path / "report.html").read_text()


def test_failed_render_never_replaces_a_good_report(tmp_path, monkeypatch):
    import auditor.report.html as report_module

    write_report(_hostile_report(), tmp_path)
    good_json, good_html = (tmp_path / "report.json").read_text(), (tmp_path / "report.html").read_text()

    def broken(_report):
        raise RuntimeError("template crashed")

    monkeypatch.setattr(report_module, "render_html", broken)
    try:
        write_report(_hostile_report(), tmp_path)
    except RuntimeError:
        pass
    assert (tmp_path / "report.json").read_text() == good_json
    assert (tmp_path / "report.html").read_text() == good_html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]
