"""End to end through the runner with stub attacks: completed, skipped, failed, timed out; exit codes."""
from __future__ import annotations

import time

import pytest
import torch

from auditor import Attack, AttackOutput, Capability, hookimpl
from auditor.core.errors import UsageError
from auditor.core.results import AttackResult, AuditReport, Finding, ModelInfo, Severity
from auditor.engine.runner import exit_code_for


class CopyMembers(Attack):
    """'Reconstructs' by returning member images: the scoring must call them copies."""

    name = "copy_members"
    summary = "returns the members themselves"

    def run(self, model, data, ctx):
        return AttackOutput(reconstructions=data.members.images[::2].clone(), labels=data.members.labels[::2].clone())


class Noise(Attack):
    name = "noise"
    summary = "returns uniform noise"

    def run(self, model, data, ctx):
        g = ctx.generator()
        return AttackOutput(reconstructions=torch.rand((12, *data.image_shape), generator=g), labels=torch.arange(12) % 3)


class Raising(Attack):
    name = "raising"
    summary = "always raises"

    def run(self, model, data, ctx):
        raise RuntimeError("plugin bug")


class NeedsSomethingElse(Attack):
    name = "needs_gradients"
    summary = "needs gradients, no zeroth-order fallback"
    requires = frozenset({Capability.GRADIENTS})

    def run(self, model, data, ctx):
        return AttackOutput()


class Slow(Attack):
    name = "slow"
    summary = "loops forever"

    def run(self, model, data, ctx):
        while True:
            time.sleep(0.05)


class Stubs:
    @hookimpl
    def auditor_register_attacks(self):
        return [CopyMembers, Noise, Raising, NeedsSomethingElse, Slow]


def test_copy_is_flagged_high_and_noise_is_not(run_attack):
    copy = run_attack(Stubs(), "copy_members")
    assert copy.status == "completed"
    assert copy.scores.likely_copy_share == 1.0
    assert max(f.severity.rank for f in copy.findings) == Severity.HIGH.rank
    noise = run_attack(Stubs(), "noise")
    assert noise.scores.likely_copy_share == 0.0
    assert all(f.severity.rank < Severity.MEDIUM.rank for f in noise.findings)


def test_failed_plugin_is_recorded(run_attack):
    result = run_attack(Stubs(), "raising")
    assert result.status == "failed" and "plugin bug" in result.reason


def test_time_budget_really_stops_an_attack(run_attack):
    start = time.monotonic()
    result = run_attack(Stubs(), "slow", time_budget_s=1.0)
    assert result.status == "failed" and "time budget" in result.reason
    assert time.monotonic() - start < 30


def test_missing_capability_is_skipped_with_reason(run_attack, monkeypatch):
    import onnx2pytorch

    monkeypatch.setattr(onnx2pytorch, "ConvertModel", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no conversion")))
    result = run_attack(Stubs(), "needs_gradients")
    assert result.status == "skipped" and "gradients" in result.reason and "no conversion" in result.reason


def test_unknown_plugin_lists_installed(run_attack):
    with pytest.raises(UsageError, match=r"unknown plugin.*installed: \["):
        run_attack(Stubs(), "nonexistent")


def _report(statuses, severities=()):
    results = [AttackResult(attack=f"a{i}", status=s) for i, s in enumerate(statuses)]
    if severities:
        results[0].findings = [Finding(attack="a0", title="t", severity=s) for s in severities]
    return AuditReport(tool_version="0", created="2026-01-01T00:00:00Z", seed=0, model=ModelInfo(source="x", format="onnx"), results=results)


@pytest.mark.parametrize(("statuses", "severities", "gate", "code"), [
    (["completed"], [], Severity.HIGH, 0),
    (["completed"], [Severity.MEDIUM], Severity.HIGH, 0),
    (["completed"], [Severity.HIGH], Severity.HIGH, 1),
    (["completed"], [Severity.MEDIUM], Severity.MEDIUM, 1),
    (["completed", "failed"], [], Severity.HIGH, 3),
    (["completed", "failed"], [Severity.HIGH], Severity.HIGH, 1),   # 1 before 3
    (["skipped"], [], Severity.HIGH, 3),                            # nothing completed: does not pass
    (["completed"], [Severity.HIGH], None, 0),
])
def test_exit_code_precedence(statuses, severities, gate, code):
    assert exit_code_for(_report(statuses, severities), gate) == code
