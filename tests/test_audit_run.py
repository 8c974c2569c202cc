"""One AuditRun per audit: thresholds, registry and caches belong to the run, never to module globals; assess gets
the run (old one-argument overrides still work); metrics are declared by their attack; ``auditor.audit()``."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import auditor
from auditor import Attack, AttackOutput, AttackResult, Finding, Metric, Severity, hookimpl
from auditor.core.results import AuditReport
from auditor.engine.config import build_config
from auditor.engine.plugins import get_plugin_manager
from auditor.engine.runner import run_audit
from auditor.report.compare import _metric_rows
from auditor.scoring import score_reconstructions

ROOT = Path(__file__).resolve().parents[1]


class CopyMembers(Attack):
    """Returns the members themselves: every reconstruction is a perfect copy."""

    name = "copy_members"
    summary = "returns the member images"
    metrics = (Metric(name="returned", label="images returned", higher_is_better=False, format="d"),)

    def run(self, model, data, ctx):
        return AttackOutput(reconstructions=data.members.images.clone(), labels=data.members.labels.clone(),
                            metrics={"returned": float(len(data.members))})


class OldStyle(Attack):
    """An override written before the run was passed: ``assess(self, result)``."""

    name = "old_style"
    summary = "one-argument assess"

    def run(self, model, data, ctx):
        return AttackOutput(score=False, metrics={"x": 1.0})

    def assess(self, result: AttackResult) -> list[Finding]:
        return [Finding(attack=self.name, title="old style assessed", severity=Severity.LOW, value=result.metrics["x"])]


class SeesRun(Attack):
    name = "sees_run"
    summary = "records what assess receives"
    seen: list = []

    def run(self, model, data, ctx):
        return AttackOutput(score=False)

    def assess(self, result, run):
        SeesRun.seen.append(run)
        return []


class Counting:
    calls = 0

    @hookimpl
    def auditor_register_attacks(self):
        Counting.calls += 1
        return [CopyMembers, OldStyle, SeesRun]


def _audit(tiny_classifier, audit_data, attacks: list[str], severity: dict | None = None) -> AuditReport:
    pm = get_plugin_manager(autoload=False)
    pm.register(Counting(), name="counting")
    config = build_config({"model": {"source": "python:tiny"}, "run": {"plugins": attacks, "show_progress": False},
                           "severity": severity or {}, "scoring": {"replicates": 0}})
    return run_audit(config, pm, model=tiny_classifier, data=audit_data)


@pytest.fixture
def torch_classifier(tiny_net):
    from auditor import from_module
    from auditor.lab.testing import IMAGE_SHAPE, NUM_CLASSES

    return from_module(tiny_net, num_classes=NUM_CLASSES, input_shape=IMAGE_SHAPE, source="python:TinyNet")


def test_registry_is_built_once_per_audit(torch_classifier, audit_data):
    Counting.calls = 0
    report = _audit(torch_classifier, audit_data, ["old_style"])
    assert Counting.calls == 1
    assert [p.name for p in report.plugins] == ["counting"]


def test_thresholds_come_from_each_audits_own_settings(torch_classifier, audit_data):
    strict = _audit(torch_classifier, audit_data, ["copy_members"], {"copy_test_level": 0.02, "copy_members_high": 1000})
    default = _audit(torch_classifier, audit_data, ["copy_members"])
    later = _audit(torch_classifier, audit_data, ["copy_members"], {"copy_test_level": 0.03, "copy_members_high": 1000})

    def copy_threshold(report: AuditReport) -> float | None:
        return next(f.threshold for f in report.findings if f.metric == "copy_p_value")

    assert copy_threshold(strict) == 0.02 and copy_threshold(later) == 0.03
    assert copy_threshold(default) in (0.01, 0.001)  # the documented defaults, not the previous audit's


def test_assess_gets_the_run_and_old_overrides_still_work(torch_classifier, audit_data):
    SeesRun.seen.clear()
    report = _audit(torch_classifier, audit_data, ["old_style", "sees_run"], {"gap_medium": 0.5})
    old = next(r for r in report.results if r.attack == "old_style")
    assert [f.title for f in old.findings] == ["old style assessed"]
    (run,) = SeesRun.seen
    assert isinstance(run, auditor.AuditRun)
    assert run.thresholds.gap_medium == 0.5 and set(run.registry.attacks) == {"copy_members", "old_style", "sees_run"}


def test_declared_metrics_travel_with_the_result_and_drive_compare(torch_classifier, audit_data):
    report = _audit(torch_classifier, audit_data, ["copy_members"])
    (result,) = [r for r in report.results if r.attack == "copy_members"]
    assert [m.name for m in result.declared_metrics] == ["returned"]
    low = report.model_copy(deep=True)
    low.results[0].metrics["returned"] = 3.0
    rows = {label: (cells, metric) for label, cells, metric in _metric_rows("copy_members", [report, low])}
    cells, metric = rows["images returned"]
    assert cells == [float(len(audit_data.members)), 3.0] and metric.worst(cells) == 0 and metric.render(cells[0]) == str(len(audit_data.members))


def test_the_host_names_no_plugin_metric():
    """compare, charts and the gate read declarations: no builtin plugin's compared metric is spelled in the host."""
    import auditor_bnn_sat.attack
    import auditor_inversion.attack
    import auditor_kkt.attack
    import auditor_membership.attack
    import auditor_shortcut.attack
    import auditor_tldr.attack

    names = {m.name for mod in (auditor_bnn_sat.attack, auditor_inversion.attack, auditor_kkt.attack, auditor_membership.attack,
                                 auditor_shortcut.attack, auditor_tldr.attack)
             for cls in vars(mod).values() if isinstance(cls, type) and issubclass(cls, Attack) for m in cls.metrics if m.compare}
    assert {"auc", "max_pull", "preimages"} <= names
    spelled = set()
    for path in (ROOT / "auditor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                spelled.add((str(path.relative_to(ROOT)), node.value))
    assert spelled == set()


def test_scoring_cache_is_the_callers(audit_data):
    recon, labels = audit_data.members.images[:6], audit_data.members.labels[:6]
    cache: dict = {}
    first = score_reconstructions(recon, labels, audit_data, cache=cache, seed=1)
    assert len(cache) == 1
    cached = next(iter(cache.values()))
    again = score_reconstructions(recon, labels, audit_data, cache=cache, seed=1)
    assert next(iter(cache.values())) is cached and again.model_dump() == first.model_dump()
    fresh = score_reconstructions(recon, labels, audit_data, seed=1)
    assert fresh.model_dump() == first.model_dump()


def test_no_module_global_holds_an_audits_settings():
    import auditor.core.severity as severity
    import auditor.scoring.reference as reference

    assert not hasattr(severity, "set_thresholds") and not hasattr(severity, "_THRESHOLDS")
    assert not hasattr(reference, "_CACHE")


def test_python_api_matches_audit_run(tiny_onnx_path, audit_data, tmp_path):
    from auditor.cli import main

    members, reference = tmp_path / "members.npz", tmp_path / "reference.npz"
    np.savez(members, x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(reference, x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())
    report = auditor.audit(tiny_onnx_path, members=members, reference=reference, plugins=["membership"], out=tmp_path / "api",
                           settings={"run": {"smoke": True, "show_progress": False}})
    code = main(["-q", "run", str(tiny_onnx_path), "--members", str(members), "--reference", str(reference), "--plugins",
                 "membership", "--smoke", "--out", str(tmp_path / "cli")])
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    written = json.loads((tmp_path / "api" / "report.json").read_text())
    assert isinstance(report, AuditReport) and report.exit_code == code == cli["exit_code"] == written["exit_code"]
    assert [(r["attack"], r["status"], r["metrics"]) for r in cli["results"]] == \
           [(r.attack, r.status, r.metrics) for r in report.results]


def test_deprecated_paths_still_work_and_warn():
    import importlib
    import sys

    for old, new in (("auditor.attack", "auditor.core.attack"), ("auditor.runner", "auditor.engine.runner"),
                     ("auditor.severity", "auditor.core.severity"), ("auditor.zoo", "auditor.lab.zoo")):
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.")):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
