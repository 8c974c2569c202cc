"""The third-party plugin kit, end to end: examples/example_plugin (distribution auditor-loss-threshold).

In process, the plugin is imported from its source folder and driven with the ``auditor.lab.testing``
fixtures a plugin author uses. Then it is really installed into this interpreter (pip, no network,
no build isolation), found through its entry point by ``audit plugins``, run by ``audit run`` on the
tiny ONNX model with .npz data, and uninstalled, always.
"""
from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from auditor.core.results import AttackResult, Severity
from auditor.engine.plugins import collect_attacks

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "example_plugin"
DIST = "auditor-loss-threshold"


@pytest.fixture(scope="module")
def membership():
    """The plugin package imported from its source tree (as an author's editable checkout would be)."""
    sys.path.insert(0, str(PLUGIN / "src"))
    try:
        import auditor_loss_threshold
        import auditor_loss_threshold.roc
    finally:
        sys.path.remove(str(PLUGIN / "src"))
    return auditor_loss_threshold


def test_roc_matches_scikit_learn(membership):
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(1)
    members, reference = rng.normal(0.5, 1.0, 400).round(1), rng.normal(0.0, 1.0, 700).round(1)  # rounded: many ties
    roc = membership.roc.roc_curve(members, reference)
    y, s = np.r_[np.ones(400), np.zeros(700)], np.r_[members, reference]
    assert roc.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(roc.fpr, fpr)
    np.testing.assert_allclose(roc.tpr, tpr)
    for target in (0.001, 0.01, 0.1):
        assert roc.tpr_at(target) == pytest.approx(tpr[fpr <= target].max(), abs=1e-12)
        # the calibrated threshold flags at most `target` of the non-members and exactly tpr_at of the members
        t = roc.threshold_at(target)
        assert (reference >= t).mean() <= target + 1e-12 and (members >= t).mean() == pytest.approx(roc.tpr_at(target))


def test_no_signal_is_not_significant(membership):
    rng = np.random.default_rng(2)
    roc = membership.roc.roc_curve(rng.normal(size=500), rng.normal(size=500))
    assert abs(roc.null_z()) < 3 and abs(roc.auc - 0.5) < 0.06


@pytest.mark.parametrize("matplotlib", [True, False])
def test_roc_figure_is_a_png(membership, monkeypatch, matplotlib):
    import base64
    import io

    from PIL import Image

    if not matplotlib:
        monkeypatch.setitem(sys.modules, "matplotlib", None)  # the Pillow fallback
    rng = np.random.default_rng(3)
    curves = {"loss": membership.roc.roc_curve(rng.normal(1, 1, 50), rng.normal(0, 1, 80)),
              "confidence": membership.roc.roc_curve(rng.normal(0.5, 1, 50), rng.normal(0, 1, 80))}
    image = Image.open(io.BytesIO(base64.b64decode(membership.roc.roc_figure_png(curves, "title"))))
    assert image.format == "PNG" and image.width > 300 and image.height > 300


def _assess(membership, **metrics):
    base = {"members_scored": 500.0, "reference_scored": 500.0, "members_accuracy": 1.0, "reference_accuracy": 0.9,
            "loss_auc": 0.5, "confidence_auc": 0.5}
    mx = base | metrics
    mx["loss_auc"] = mx["auc"]
    attack = membership.MembershipInference()
    return attack.assess(AttackResult(attack="loss_threshold", status="completed", metrics=mx))


@pytest.mark.parametrize(("auc", "z", "tpr", "n_ref", "expected", "metric"), [
    (0.52, 1.0, 0.01, 500, Severity.INFO, "auc"),            # not significant
    (0.56, 4.0, 0.012, 500, Severity.LOW, "auc"),            # significant, below both medium thresholds
    (0.62, 8.0, 0.012, 500, Severity.MEDIUM, "auc"),         # AUC at medium
    (0.56, 4.0, 0.04, 500, Severity.MEDIUM, "tpr_at_1pct_fpr"),  # TPR at 1% FPR at medium
    (0.56, 4.0, 0.20, 50, Severity.LOW, "auc"),              # TPR ignored with too few non-members
    (0.80, 12.0, 0.02, 500, Severity.HIGH, "auc"),
    (0.58, 5.0, 0.15, 500, Severity.HIGH, "tpr_at_1pct_fpr"),
])
def test_documented_thresholds(membership, auc, z, tpr, n_ref, expected, metric):
    (finding,) = _assess(membership, auc=auc, auc_z=z, tpr_at_1pct_fpr=tpr, reference_scored=float(n_ref))
    assert finding.severity is expected and finding.metric == metric and finding.attack == "loss_threshold"


def test_config_is_validated(membership):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="high thresholds"):
        membership.MembershipConfig(auc_medium=0.8, auc_high=0.7)
    with pytest.raises(ValidationError):
        membership.MembershipConfig(signal="entropy")


def test_with_the_auditor_testing_fixtures(membership, plugin_manager, run_attack):
    plugin_manager.register(membership, name="loss_threshold")
    assert collect_attacks(plugin_manager)["loss_threshold"].requires == {"query"}
    result = run_attack(membership, "loss_threshold", signal="loss")
    assert result.status == "completed", result.reason
    assert result.scores is None                     # score=False: the core's reconstruction scoring did not run
    assert 0.0 <= result.metrics["auc"] <= 1.0 and result.metrics["reference_scored"] == 36
    assert result.findings and result.figures[0].title == "Membership inference ROC" and not result.figures[0].private
    assert result.tables[0].rows[0][0] == "loss (used)"


def test_without_reference_data_it_is_skipped(membership, tiny_classifier, audit_data):
    import torch

    from auditor.core.attack import RunContext
    from auditor.core.errors import CapabilityError
    from auditor.data.sets import AuditData

    with pytest.raises(CapabilityError, match="reference"):
        membership.MembershipInference().run(tiny_classifier, AuditData(audit_data.members, None, 3, audit_data.class_names),
                                             RunContext(device=torch.device("cpu"), seed=0, show_progress=False))


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                          capture_output=True, text=True, timeout=300)


# `audit plugins --json` then `audit run ARGS` in one fresh interpreter (one torch import instead of two).
_DRIVER = """
import contextlib, io, json, sys
from auditor.cli.main import main
listing = io.StringIO()
with contextlib.redirect_stdout(listing):
    listed = main(["plugins", "--json"])
ran = main(sys.argv[1:])
print(json.dumps({"plugins_exit": listed, "plugins": listing.getvalue(), "run_exit": ran}))
"""


def _audit_plugins_then_run(*args: str, cwd: Path) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", _DRIVER, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def test_installed_plugin_is_listed_and_runs(tiny_onnx_path, audit_data, tmp_path):
    source = tmp_path / "example_plugin"  # build from a copy: the checkout gets no build/ or egg-info
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    np.savez(tmp_path / "members.npz", x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(tmp_path / "reference.npz", x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())
    installed = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(source))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    try:
        seen, log = _audit_plugins_then_run("-q", "run", str(tiny_onnx_path), "--members", "members.npz", "--reference", "reference.npz",
                                            "--plugins", "loss_threshold", "--out", "report", "--fail-on", "high", "--no-member-images",
                                            cwd=tmp_path)
        assert seen["plugins_exit"] == 0 and seen["run_exit"] == 0, log
        info = next(p for p in json.loads(seen["plugins"]) if p["name"] == "loss_threshold")
        assert (info["distribution"], info["version"], info["requires"]) == (DIST, "0.1.0", {"loss_threshold": ["query"]})
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        (result,) = report["results"]
        assert (result["attack"], result["plugin"], result["status"]) == ("loss_threshold", "loss_threshold", "completed")
        assert {"auc", "tpr_at_1pct_fpr", "loss_auc", "confidence_auc"} <= set(result["metrics"])
        assert any(p["distribution"] == DIST for p in report["plugins"])
        assert "Membership inference ROC" in (tmp_path / "report" / "report.html").read_text()
    finally:
        removed = _pip("uninstall", "-y", DIST)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(DIST)

