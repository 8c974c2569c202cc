"""``audit compare`` (ranking, labels, the page) and the inline SVG charts of the reports."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from auditor.cli.main import main
from auditor.core.results import AttackResult, AuditReport, ClassScore, Finding, ModelInfo, SampleScore, Scores, Severity
from auditor.report.charts import class_ssim_bars, hbars, nice_ticks, severity_summary, similarity_histogram
from auditor.report.compare import compare_reports, leakage_key, summarize
from auditor.report.html import render_html, write_report

XSS = "<script>alert(1)</script>"


def _report(source: str, copies: float | None, gap: float | None, severity: Severity | None = None, samples: int = 30) -> AuditReport:
    rng = np.random.default_rng(len(source))
    scores = None
    if copies is not None or gap is not None:
        scores = Scores(calibrated=True, likely_copy_share=copies, gap=gap, matched_ssim_mean=0.5,
                        per_class=[ClassScore(label=0, name="zero", count=samples, matched_ssim_mean=0.5, reference_best_ssim_mean=0.4,
                                              copy_threshold=0.8)],
                        samples=[SampleScore(index=i, label=0, nearest_member_ssim=float(rng.uniform(0.3, 0.9)),
                                             nearest_reference_ssim=float(rng.uniform(0.2, 0.8))) for i in range(samples)])
    findings = [Finding(attack="inversion", title="t", severity=severity)] if severity else []
    return AuditReport(tool_version="0.1.0", created="2026-11-28T00:00:00Z", seed=0, fail_on=Severity.HIGH,
                       model=ModelInfo(source=source, format="onnx"),
                       results=[AttackResult(attack="inversion", status="completed", scores=scores, findings=findings)])


def test_ranking_is_worst_first_copies_then_gap_then_severity():
    reports = [_report("safe.onnx", 0.0, 0.001, Severity.INFO), _report("copies.onnx", 0.2, 0.01, Severity.HIGH),
               _report("gap.onnx", 0.0, 0.08, Severity.MEDIUM), _report("none.onnx", None, None, Severity.HIGH),
               _report("tie.onnx", 0.0, 0.08, Severity.HIGH)]
    comparison, ranked = compare_reports(reports)
    assert [e.label for e in comparison.entries] == ["copies.onnx", "tie.onnx", "gap.onnx", "safe.onnx", "none.onnx"]
    assert [e.rank for e in comparison.entries] == [1, 2, 3, 4, 5]
    assert [r.model.source for r in ranked] == [e.source for e in comparison.entries]
    assert leakage_key(summarize(reports[3], "x")) < leakage_key(summarize(reports[0], "y"))


def test_labels_are_unique_and_warnings_name_mismatches(tmp_path):
    a, b = _report("model.onnx", 0.1, 0.1), _report("model.onnx", 0.0, 0.0)
    b = b.model_copy(update={"config": {"severity": {"copy_share_high": 0.5}}})
    comparison, _ = compare_reports([a, b], paths=[tmp_path / "run1" / "report.json", tmp_path / "run2" / "report.json"])
    assert [e.label for e in comparison.entries] == ["model.onnx (run1)", "model.onnx (run2)"]
    assert any("severity thresholds" in w for w in comparison.warnings)
    same, _ = compare_reports([a, a])
    assert [e.label for e in same.entries] == ["model.onnx #1", "model.onnx #2"]


def test_cli_compare_writes_a_self_contained_page(tmp_path, capsys):
    write_report(_report("low.onnx", 0.0, 0.01, Severity.LOW), tmp_path / "low")
    write_report(_report(f"high{XSS}.onnx", 0.3, 0.2, Severity.HIGH), tmp_path / "high")
    assert main(["-q", "compare", str(tmp_path / "low" / "report.json"), str(tmp_path / "high"), "--out", str(tmp_path / "cmp")]) == 0
    assert "compare.html" in capsys.readouterr().out
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [e["rank"] for e in data["entries"]] == [1, 2] and data["entries"][0]["worst_copy_share"] == 0.3
    assert data["entries"][0]["report_html"] == "../high/report.html"
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "<script" not in html and "&lt;script&gt;" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert html.count('<svg class="chart') >= 4  # two ranking charts, one histogram per model


def test_cli_compare_bad_input_exits_2(tmp_path, capsys):
    assert main(["-q", "compare", str(tmp_path / "missing.json"), "--out", str(tmp_path / "cmp")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert main(["-q", "compare", str(tmp_path / "bad.json"), "--out", str(tmp_path / "cmp")]) == 2
    assert not (tmp_path / "cmp").exists()


def test_charts_escape_hostile_text():
    report = _report("m.onnx", 0.1, 0.1, Severity.HIGH)
    report.results[0].attack = XSS
    report.results[0].scores.per_class[0].name = XSS
    report.results[0].findings = [Finding(attack=XSS, title=XSS, severity=Severity.HIGH)]
    for svg in (severity_summary(report), class_ssim_bars(report.results[0].scores), hbars(XSS, [XSS], [0.1])):
        assert "<script" not in str(svg) and "&lt;script&gt;" in str(svg)
    html = render_html(report)
    assert "<script" not in html and html.count('<svg class="chart') == 3


def test_histogram_counts_every_reconstruction():
    scores = _report("m.onnx", 0.1, 0.1).results[0].scores
    svg = str(similarity_histogram(scores))
    counts = {"member": 0, "non-member": 0}
    for who, n in re.findall(r"<title>nearest (member \(training image\)|non-member): (\d+) with SSIM", svg):
        counts["member" if who.startswith("member") else "non-member"] += int(n)
    assert counts == {"member": 30, "non-member": 30}


def test_charts_handle_little_or_odd_data():
    assert similarity_histogram(None) is None and class_ssim_bars(None) is None
    assert similarity_histogram(Scores(calibrated=False)) is None
    one = Scores(calibrated=False, samples=[SampleScore(index=0, label=0, nearest_member_ssim=-0.2)],
                 per_class=[ClassScore(label=0, name="a", count=1, matched_ssim_mean=-0.2)])
    assert "<svg" in str(similarity_histogram(one)) and "<svg" in str(class_ssim_bars(one))
    many = Scores(calibrated=True, per_class=[ClassScore(label=k, name=f"class-{k}", count=1, matched_ssim_mean=0.3) for k in range(100)])
    assert "rotate(-35)" in str(class_ssim_bars(many))
    empty = AuditReport(tool_version="0.1.0", created="2026-11-28T00:00:00Z", seed=0, model=ModelInfo(source="m", format="onnx"))
    assert severity_summary(empty) is None and "<svg" not in render_html(empty)
    assert hbars("t", ["a", "b"], [None, float("nan")]) is not None


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (-0.2, 1), (0, 37), (0.0312, 0.0877), (-3, -1)])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12 and ticks[0] >= lo - 1e-12 and ticks[-1] <= hi + 1e-12
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert any(np.isclose(mantissa, m) for m in (1, 2, 5))
