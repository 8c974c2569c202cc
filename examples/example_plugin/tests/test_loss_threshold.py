"""How a plugin author tests against auditor: reuse the opt-in fixtures of ``auditor.testing``."""
from __future__ import annotations

import numpy as np
import pytest

import auditor_loss_threshold
from auditor.plugins import collect_attacks
from auditor_loss_threshold.roc import roc_curve

pytest_plugins = ["auditor.testing"]


def test_registers_through_the_hook(plugin_manager):
    plugin_manager.register(auditor_loss_threshold, name="loss_threshold")
    assert "loss_threshold" in collect_attacks(plugin_manager)


def test_roc_matches_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    members, reference = rng.normal(0.4, 1, 300).round(1), rng.normal(0, 1, 500).round(1)  # rounding makes ties
    roc = roc_curve(members, reference)
    y, s = np.r_[np.ones(300), np.zeros(500)], np.r_[members, reference]
    assert roc.auc == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, s, drop_intermediate=False)
    for target in (0.01, 0.1):
        assert roc.tpr_at(target) == pytest.approx(tpr[fpr <= target].max(), abs=1e-12)


def test_runs_in_smoke_mode(run_attack):
    result = run_attack(auditor_loss_threshold, "loss_threshold")
    assert result.status == "completed", result.reason
    assert 0.0 <= result.metrics["auc"] <= 1.0 and result.scores is None
    assert result.findings and result.figures[0].png_base64
