"""Outputs CI systems read: JUnit XML (one test case per attack and finding) and SARIF 2.1.0."""
from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from auditor.core.results import AuditReport, Severity
from auditor.report.html import atomic_write

_SARIF_LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note", Severity.INFO: "none"}


def write_junit(report: AuditReport, path: Path) -> None:
    atomic_write(path, ET.tostring(junit_suite(report), encoding="unicode", xml_declaration=True))


def junit_suite(report: AuditReport, name: str = "auditor") -> ET.Element:
    """One ``<testsuite>``: a test case per attack and per finding (``audit batch`` puts one per model in ``<testsuites>``)."""
    suite = ET.Element("testsuite", name=name, tests="0", failures="0", errors="0", skipped="0")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    gate = report.fail_on
    for result in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"auditor.{result.attack}", name="run", time=f"{result.duration_s:.3f}")
        counts["tests"] += 1
        if result.status == "failed":
            ET.SubElement(case, "error", message=(result.reason or "failed").splitlines()[0]).text = result.reason
            counts["errors"] += 1
        elif result.status == "skipped":
            ET.SubElement(case, "skipped", message=(result.reason or "skipped").splitlines()[0])
            counts["skipped"] += 1
        for i, finding in enumerate(result.findings):
            fc = ET.SubElement(suite, "testcase", classname=f"auditor.{result.attack}", name=f"finding-{i}: {finding.title}")
            counts["tests"] += 1
            if gate is not None and finding.severity.rank >= gate.rank:
                ET.SubElement(fc, "failure", message=f"{finding.severity.value}: {finding.title}").text = finding.detail
                counts["failures"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    return suite


def write_sarif(report: AuditReport, path: Path) -> None:
    rules, results = sarif_findings(report)
    atomic_write(path, json.dumps(sarif_document(report.tool_version, rules, results), indent=2))


def sarif_findings(report: AuditReport) -> tuple[dict[str, dict], list[dict]]:
    """SARIF rules (by id) and results for one report's findings."""
    rules: dict[str, dict] = {}
    results: list[dict] = []
    for finding in report.findings:
        rule_id = f"{finding.attack}/{finding.title}"
        rules.setdefault(rule_id, {"id": rule_id, "shortDescription": {"text": finding.title}})
        results.append({"ruleId": rule_id, "level": _SARIF_LEVEL[finding.severity],
                        "message": {"text": f"{finding.title}. {finding.detail}"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": report.model.path or report.model.source}}}],
                        "properties": {"severity": finding.severity.value, "metric": finding.metric, "value": finding.value}})
    return rules, results


def sarif_document(tool_version: str, rules: dict[str, dict], results: list[dict]) -> dict:
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "auditor", "version": tool_version, "rules": list(rules.values())}},
                      "results": results}]}
