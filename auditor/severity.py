"""Findings from reconstruction scores, by documented and configurable thresholds.

A reconstruction is a *likely copy* of a training image when its nearest-member SSIM is
above the 99th percentile that real non-member images reach for its class (the core's
calibrated threshold) and it is closer to that member than to any non-member. Levels:

* high: at least ``copy_share_high`` (default 5%) of reconstructions are likely copies;
* medium: at least ``copy_share_medium`` (1%) are, or the member-minus-reference gap is at least
  ``gap_medium`` (0.02 SSIM) with its bootstrap confidence interval above zero;
* low: the gap's interval lies above zero but below ``gap_medium``;
* info: nothing above; or the scores are uncalibrated (no reference set).
"""
from __future__ import annotations

from auditor.config import SeverityThresholds
from auditor.results import AttackResult, Finding, Severity

_THRESHOLDS = SeverityThresholds()


def set_thresholds(thresholds: SeverityThresholds) -> None:
    global _THRESHOLDS
    _THRESHOLDS = thresholds


def reconstruction_findings(attack: str, result: AttackResult, thresholds: SeverityThresholds | None = None) -> list[Finding]:
    t = thresholds or _THRESHOLDS
    s = result.scores
    if s is None or not s.samples:
        return []
    if not s.calibrated:
        return [Finding(attack=attack, title="Reconstruction scores are uncalibrated (no reference set)", severity=Severity.INFO,
                        metric="best_ssim_mean", value=s.best_ssim_mean,
                        detail="Without non-member images the tool cannot tell training-data leakage from class-typical images. "
                               "Pass --reference to calibrate.")]
    findings: list[Finding] = []
    share = s.likely_copy_share or 0.0
    if share >= t.copy_share_high:
        severity = Severity.HIGH
    elif share >= t.copy_share_medium:
        severity = Severity.MEDIUM
    else:
        severity = None
    if severity is not None:
        findings.append(Finding(attack=attack, title="Reconstructions copy training images", severity=severity,
                                metric="likely_copy_share", value=share,
                                threshold=t.copy_share_high if severity is Severity.HIGH else t.copy_share_medium,
                                detail=f"{share:.1%} of reconstructions are closer to a training image than real unseen images get "
                                       f"(above the per-class {s.percentile:g}th percentile) and closer to it than to any non-member."))
    if s.gap is not None and s.gap_ci_low is not None and s.gap_ci_low > 0:
        level = Severity.MEDIUM if s.gap >= t.gap_medium else Severity.LOW
        findings.append(Finding(attack=attack, title="Reconstructions resemble members more than non-members", severity=level,
                                metric="gap", value=s.gap, threshold=t.gap_medium,
                                detail=f"Mean best-SSIM to members minus to non-members (equal pools): {s.gap:+.3f} "
                                       f"(CI {s.gap_ci_low:+.3f} to {s.gap_ci_high:+.3f})."))
    if not findings:
        findings.append(Finding(attack=attack, title="No training-data leakage detected by this attack", severity=Severity.INFO,
                                metric="gap", value=s.gap,
                                detail="Reconstructions are no closer to members than to non-members. This is not a proof of privacy."))
    return findings
