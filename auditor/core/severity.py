"""Findings from reconstruction scores, by documented and configurable thresholds (``[severity]``).

A reconstruction is a *likely copy* of a training image when its nearest-member similarity exceeds
the conformal threshold at ``alpha`` set on calibration non-members of its class, and it is closer to
that member than to an equal-size pool of non-members (:mod:`auditor.scoring.reconstructions`). Held-out real
non-members go through the same rule; the binomial test's null rate is the larger of their rate and
``alpha``. Levels:

* high: the likely copies exceed the null with one-sided binomial p <= ``copy_test_level_high``
  (default 0.001) and point to at least ``copy_members_high`` (3) distinct members;
* medium: they exceed it with p <= ``copy_test_level`` (0.01); or the null-centred gap is at least
  ``gap_medium`` (0.02) with its interval above zero;
* low: the null-centred gap's interval lies above zero, the gap below ``gap_medium``;
* info: nothing above; or the scores are uncalibrated (no reference set).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auditor.core.deprecation import deprecation
from auditor.core.results import AttackResult, Finding, Scores, Severity


class SeverityThresholds(BaseModel):
    """Documented thresholds that turn reconstruction scores into risk levels (``[severity]``).

    Likely copies are judged against the null (held-out real non-members scored the same way) by a
    one-sided binomial test, never as a raw share.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    copy_test_level: float = Field(0.01, gt=0.0, lt=1.0, description=(
        "One-sided binomial p-value at or below which the likely copies exceed what the null predicts: medium."))
    copy_test_level_high: float = Field(0.001, gt=0.0, lt=1.0, description="... and at or below this: high, when enough distinct members are recovered.")
    copy_members_high: int = Field(3, ge=1, description="Distinct members recovered as likely copies needed for a high finding.")
    gap_medium: float = Field(0.02, description="Null-centred gap (interval above 0) at or above which leakage is medium.")

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and {"copy_share_high", "copy_share_medium"} & set(raw):
            raw = {k: v for k, v in raw.items() if k not in ("copy_share_high", "copy_share_medium")}
            deprecation("[severity] copy_share_high and copy_share_medium are deprecated and ignored: likely copies are now "
                        "judged by a one-sided binomial test against the null (copy_test_level, copy_test_level_high, "
                        "copy_members_high)")
        return raw


def copy_severity(s: Scores, t: SeverityThresholds) -> Severity | None:
    """The level the likely copies reach against the null, or None when they do not exceed it."""
    if s.copy_p_value is None or not s.likely_copies:
        return None
    if s.copy_p_value <= t.copy_test_level_high and (s.distinct_members_recovered or 0) >= t.copy_members_high:
        return Severity.HIGH
    if s.copy_p_value <= t.copy_test_level:
        return Severity.MEDIUM
    return None


def _copy_detail(s: Scores) -> str:
    n = len(s.samples)
    text = (f"{s.likely_copies} of {n} reconstructions ({s.distinct_members_recovered} distinct training images) are likely "
            f"copies; held-out real non-members scored the same way are likely copies at {(s.null_copy_rate or 0.0):.1%} "
            f"({s.null_likely_copies} of {s.null_count}), so {s.copy_expected_by_null or 0.0:.1f} are expected by chance "
            f"(rate {s.copy_null_rate or 0.0:.2%}); one-sided binomial p = {s.copy_p_value:.2g}.")
    if not s.copy_rule_calibrated and s.alpha is not None:
        text += f" The threshold is uncalibrated at alpha = {s.alpha_requested:g} and ran at {s.alpha:.3g}."
    return text


def reconstruction_findings(attack: str, result: AttackResult, thresholds: SeverityThresholds | None = None) -> list[Finding]:
    """Findings from ``result.scores`` by the copy rule at ``thresholds`` (the documented defaults when None)."""
    t = thresholds if thresholds is not None else SeverityThresholds()
    s = result.scores
    if s is None or not s.samples:
        return []
    if not s.calibrated:
        return [Finding(attack=attack, title="Reconstruction scores are uncalibrated (no reference set)", severity=Severity.INFO,
                        metric="best_ssim_mean", value=s.best_ssim_mean,
                        detail="Without non-member images the tool cannot tell training-data leakage from class-typical images. "
                               "Pass --reference to calibrate.")]
    findings: list[Finding] = []
    level = copy_severity(s, t)
    if level is not None:
        findings.append(Finding(attack=attack, title="Reconstructions copy training images", severity=level,
                                metric="copy_p_value", value=s.copy_p_value,
                                threshold=t.copy_test_level_high if level is Severity.HIGH else t.copy_test_level,
                                detail=_copy_detail(s)))
    centred = s.gap_kind == "null_centred"
    if s.gap is not None and s.gap_ci_low is not None and s.gap_ci_low > 0:
        gap_level = Severity.MEDIUM if s.gap >= t.gap_medium else Severity.LOW
        what = (f"Reconstructions' member-minus-non-member gap {s.raw_gap:+.3f} minus the null's {s.null_gap:+.3f}: "
                if centred else "Mean best-SSIM to members minus to non-members (equal pools): ")
        findings.append(Finding(attack=attack, title="Reconstructions resemble members more than non-members do", severity=gap_level,
                                metric="gap", value=s.gap, threshold=t.gap_medium,
                                detail=f"{what}{s.gap:+.3f} (interval {s.gap_ci_low:+.3f} to {s.gap_ci_high:+.3f})."))
    if not findings:
        detail = "Reconstructions are no closer to members than held-out non-members are. This is not a proof of privacy."
        if s.likely_copies:
            detail = _copy_detail(s) + " That is within what the null predicts. This is not a proof of privacy."
        findings.append(Finding(attack=attack, title="No training-data leakage detected by this attack", severity=Severity.INFO,
                                metric="gap", value=s.gap, detail=detail))
    return findings
