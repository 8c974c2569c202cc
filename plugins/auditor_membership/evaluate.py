"""Evaluate one membership score: AUC and balanced accuracy with bootstrap intervals, TPR at fixed FPRs
with per-class thresholds from the calibration non-members and exact binomial intervals on the held-out ones."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auditor_membership.calibration import Thresholds, set_thresholds
from auditor_membership.metrics import (
    Estimate,
    auc,
    best_balanced_accuracy,
    bootstrap,
    exact_rate,
    exposed_members,
)

FPRS = (0.01, 0.001)


def fpr_key(alpha: float) -> str:
    """Metric-name fragment for an FPR: 0.01 -> ``1pct``, 0.001 -> ``0.1pct``."""
    return f"{alpha * 100:g}pct"


@dataclass(frozen=True)
class OperatingPoint:
    """TPR and the held-out FPR reached by the thresholds set for a target FPR (``None`` when unsupported)."""

    alpha: float
    thresholds: Thresholds
    tpr: Estimate | None = None
    fpr: Estimate | None = None
    member_flags: np.ndarray | None = None


@dataclass(frozen=True)
class ScoreEvaluation:
    name: str
    auc: Estimate
    balanced_accuracy: Estimate
    points: dict[float, OperatingPoint] = field(default_factory=dict)
    exposed: int = 0            # members above every held-out non-member
    exposure_p: float = 1.0     # chance of that many if the score said nothing about membership

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics for report.json (unsupported operating points are left out, not NaN)."""
        out = {f"{prefix}auc": self.auc.value, f"{prefix}auc_ci_low": self.auc.low, f"{prefix}auc_ci_high": self.auc.high,
               f"{prefix}balanced_accuracy": self.balanced_accuracy.value,
               f"{prefix}balanced_accuracy_ci_low": self.balanced_accuracy.low,
               f"{prefix}balanced_accuracy_ci_high": self.balanced_accuracy.high,
               f"{prefix}members_above_heldout": self.exposed, f"{prefix}exposure_p_value": self.exposure_p}
        for alpha, point in self.points.items():
            key = fpr_key(alpha)
            out[f"{prefix}fpr_{key}_supported"] = float(point.tpr is not None)
            if point.tpr is not None and point.fpr is not None:
                out |= {f"{prefix}tpr_at_{key}_fpr": point.tpr.value, f"{prefix}tpr_at_{key}_fpr_ci_low": point.tpr.low,
                        f"{prefix}tpr_at_{key}_fpr_ci_high": point.tpr.high, f"{prefix}heldout_fpr_at_{key}": point.fpr.value,
                        f"{prefix}heldout_fpr_at_{key}_ci_high": point.fpr.high}
        return {k: float(v) for k, v in out.items() if np.isfinite(v)}


def evaluate_score(name: str, members: np.ndarray, member_labels: np.ndarray, calibration: np.ndarray, calibration_labels: np.ndarray,
                   held_out: np.ndarray, held_out_labels: np.ndarray, *, rounds: int, level: float, rng: np.random.Generator,
                   per_class: bool = True, fprs: tuple[float, ...] = FPRS) -> ScoreEvaluation:
    """All metrics of one score; members and held-out non-members are the evaluation sets."""
    area = bootstrap(auc, members, held_out, rounds, level, rng)
    balanced = bootstrap(best_balanced_accuracy, members, held_out, rounds, level, rng)
    classes = np.unique(np.concatenate([member_labels, held_out_labels]))
    points = {}
    for alpha in fprs:
        t = set_thresholds(calibration, calibration_labels, alpha, classes, len(held_out), per_class=per_class)
        if t.mode == "unsupported":
            points[alpha] = OperatingPoint(alpha, t)
            continue
        flags_m, flags_h = t.flags(members, member_labels), t.flags(held_out, held_out_labels)
        points[alpha] = OperatingPoint(alpha, t, exact_rate(int(flags_m.sum()), len(members), level),
                                       exact_rate(int(flags_h.sum()), len(held_out), level), flags_m)
    return ScoreEvaluation(name, area, balanced, points, *exposed_members(members, held_out))
