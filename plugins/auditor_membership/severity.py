"""Severity of membership leakage by rules a reader can check against the reported numbers.

The rules read the primary score at every FPR ``α`` of ``severity_fprs`` (1% and 0.1% by default) that the
reference set supports. With ``L(α)`` the lower end of the exact confidence interval of the TPR at ``α``
(thresholds from the calibration non-members), ``F(α) = max(α, FPR reached on the held-out non-members)``
and ``A`` the lower end of the bootstrap interval of the AUC:

* high:   ``L(α) > high_ratio · F(α)`` at some supported ``α`` (10 · 1% = 10%, or 10 · 0.1% = 1%), or ``A ≥ auc_high`` (0.80);
* medium: ``L(α) > medium_ratio · F(α)`` (3×), or ``A ≥ auc_medium`` (0.65);
* low:    ``L(α) > F(α)`` (members are flagged more often than non-members at that FPR), or ``A > 0.5``;
* info:   none of these: no membership signal at this sample size.

``high_ratio · F`` is a likelihood ratio: a flagged example is that many times more likely to be a member than a
non-member. Reading 0.1% as well as 1% follows LiRA (Carlini et al. 2022): the attacks that matter are the ones
that are right about a few examples, and an average-case number such as the AUC or the TPR at 1% hides them.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from auditor import Finding, Severity
from auditor_membership.evaluate import fpr_key


class SeverityRules(BaseModel):
    model_config = ConfigDict(frozen=True)
    fprs: tuple[float, ...]
    high_ratio: float
    medium_ratio: float
    auc_high: float
    auc_medium: float


def _tpr_points(metrics: dict[str, float], rules: SeverityRules) -> list[tuple[str, float, float]]:
    """(metric name, TPR lower bound, effective FPR) for every supported FPR of the rules, lowest FPR last."""
    out = []
    for alpha in sorted(rules.fprs, reverse=True):
        key = fpr_key(alpha)
        low = metrics.get(f"tpr_at_{key}_fpr_ci_low")
        if low is not None:
            out.append((f"tpr_at_{key}_fpr", low, max(alpha, metrics.get(f"heldout_fpr_at_{key}", alpha))))
    return out


def level(metrics: dict[str, float], rules: SeverityRules) -> tuple[Severity, str, float, float]:
    """(severity, metric, value, threshold) of the rule that decided the level."""
    points = _tpr_points(metrics, rules)
    auc_low = metrics["auc_ci_low"]
    tiers = ((Severity.HIGH, rules.high_ratio, rules.auc_high), (Severity.MEDIUM, rules.medium_ratio, rules.auc_medium),
             (Severity.LOW, 1.0, None))
    for severity, ratio, auc_bar in tiers:
        for name, low, fpr in points:
            if low > ratio * fpr:
                return severity, name, metrics[name], ratio * fpr
        if auc_bar is not None and auc_low >= auc_bar:
            return severity, "auc", metrics["auc"], auc_bar
    if auc_low > 0.5:
        return Severity.LOW, "auc", metrics["auc"], 0.5
    if points:
        name, _, fpr = points[0]
        return Severity.INFO, name, metrics[name], fpr
    return Severity.INFO, "auc", metrics["auc"], 0.5


def _tpr_text(metrics: dict[str, float], alpha: float, confidence: float) -> str:
    key = fpr_key(alpha)
    if f"tpr_at_{key}_fpr" not in metrics:
        return f"TPR at {alpha:.1%} FPR not supported by the reference set's size"
    return (f"TPR {metrics[f'tpr_at_{key}_fpr']:.1%} at {alpha:.1%} FPR "
            f"({confidence:.0%} CI {metrics[f'tpr_at_{key}_fpr_ci_low']:.1%}–{metrics[f'tpr_at_{key}_fpr_ci_high']:.1%}; "
            f"held-out FPR {metrics[f'heldout_fpr_at_{key}']:.2%})")


def finding(attack: str, primary: str, metrics: dict[str, float], rules: SeverityRules, confidence: float) -> Finding:
    severity, metric, value, threshold = level(metrics, rules)
    tprs = "; ".join(_tpr_text(metrics, a, confidence) for a in sorted(rules.fprs, reverse=True))
    facts = (f"Primary score {primary}: AUC {metrics['auc']:.3f} ({confidence:.0%} CI {metrics['auc_ci_low']:.3f}–{metrics['auc_ci_high']:.3f}); "
             f"{tprs}; {int(metrics['members_scored'])} members vs {int(metrics['heldout_scored'])} held-out non-members.")
    fprs = " or ".join(f"{a:.1%}" for a in sorted(rules.fprs, reverse=True))
    rule_text = (f" Levels: high when the TPR's lower bound exceeds {rules.high_ratio:g}× the FPR (at {fprs}) or the AUC's lower "
                 f"bound reaches {rules.auc_high:g}; medium at {rules.medium_ratio:g}× or {rules.auc_medium:g}; low when either lower "
                 "bound is above chance (the FPR, 0.5).")
    titles = {Severity.INFO: "No membership signal detected",
              Severity.LOW: "Weak evidence that training-set membership can be inferred",
              Severity.MEDIUM: "Training-set membership can be inferred for some members",
              Severity.HIGH: "Training-set membership can be inferred with high confidence"}
    return Finding(attack=attack, title=titles[severity], severity=severity, metric=metric, value=value, threshold=threshold,
                   detail=facts + rule_text)
