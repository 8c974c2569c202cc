"""Severity of membership leakage by rules a reader can check against the reported numbers.

With ``α`` the FPR of ``severity_fpr`` (1% by default), ``L`` the lower end of the exact confidence
interval of the primary score's TPR at ``α`` (thresholds from the calibration non-members) and ``A`` the
lower end of the bootstrap interval of its AUC:

* high:   ``L > high_ratio · α`` (10 · 1% = 10%), or ``A ≥ auc_high`` (0.80);
* medium: ``L > medium_ratio · α`` (3%), or ``A ≥ auc_medium`` (0.65);
* low:    ``L > α`` (members are flagged more often than non-members at that FPR), or ``A > 0.5``;
* info:   neither: no membership signal at this sample size.

The TPR rules apply only where the FPR is supported (enough calibration and held-out non-members).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from auditor import Finding, Severity
from auditor_membership.evaluate import fpr_key


class SeverityRules(BaseModel):
    model_config = ConfigDict(frozen=True)
    fpr: float
    high_ratio: float
    medium_ratio: float
    auc_high: float
    auc_medium: float


def level(metrics: dict[str, float], rules: SeverityRules) -> tuple[Severity, str, float, float]:
    """(severity, metric, value, threshold) of the rule that decided the level."""
    key = fpr_key(rules.fpr)
    tpr_low = metrics.get(f"tpr_at_{key}_fpr_ci_low")
    auc_low = metrics["auc_ci_low"]
    tiers = ((Severity.HIGH, rules.high_ratio, rules.auc_high), (Severity.MEDIUM, rules.medium_ratio, rules.auc_medium))
    for severity, ratio, auc_bar in tiers:
        if tpr_low is not None and tpr_low > ratio * rules.fpr:
            return severity, f"tpr_at_{key}_fpr", metrics[f"tpr_at_{key}_fpr"], ratio * rules.fpr
        if auc_low >= auc_bar:
            return severity, "auc", metrics["auc"], auc_bar
    if tpr_low is not None and tpr_low > rules.fpr:
        return Severity.LOW, f"tpr_at_{key}_fpr", metrics[f"tpr_at_{key}_fpr"], rules.fpr
    if auc_low > 0.5:
        return Severity.LOW, "auc", metrics["auc"], 0.5
    if tpr_low is not None:
        return Severity.INFO, f"tpr_at_{key}_fpr", metrics[f"tpr_at_{key}_fpr"], rules.fpr
    return Severity.INFO, "auc", metrics["auc"], 0.5


def finding(attack: str, primary: str, metrics: dict[str, float], rules: SeverityRules, confidence: float) -> Finding:
    severity, metric, value, threshold = level(metrics, rules)
    key = fpr_key(rules.fpr)
    tpr_text = (f"TPR {metrics[f'tpr_at_{key}_fpr']:.1%} at {rules.fpr:.2g} FPR "
                f"({confidence:.0%} CI {metrics[f'tpr_at_{key}_fpr_ci_low']:.1%}–{metrics[f'tpr_at_{key}_fpr_ci_high']:.1%}; "
                f"held-out FPR {metrics[f'heldout_fpr_at_{key}']:.2%})" if f"tpr_at_{key}_fpr" in metrics
                else f"TPR at {rules.fpr:.2g} FPR not supported by the reference set's size")
    facts = (f"Primary score {primary}: AUC {metrics['auc']:.3f} ({confidence:.0%} CI {metrics['auc_ci_low']:.3f}–{metrics['auc_ci_high']:.3f}), "
             f"{tpr_text}; {int(metrics['members_scored'])} members vs {int(metrics['heldout_scored'])} held-out non-members.")
    rule_text = (f" Levels: high when the TPR's lower bound exceeds {rules.high_ratio:g}×FPR or the AUC's lower bound reaches "
                 f"{rules.auc_high:g}; medium at {rules.medium_ratio:g}×FPR or {rules.auc_medium:g}; low when either lower bound "
                 "is above chance (FPR, 0.5).")
    titles = {Severity.INFO: "No membership signal detected",
              Severity.LOW: "Weak evidence that training-set membership can be inferred",
              Severity.MEDIUM: "Training-set membership can be inferred for some members",
              Severity.HIGH: "Training-set membership can be inferred with high confidence for many members"}
    return Finding(attack=attack, title=titles[severity], severity=severity, metric=metric, value=value, threshold=threshold,
                   detail=facts + rule_text)
