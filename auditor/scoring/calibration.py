"""The likely-copy rule's statistics: conformal thresholds, pooling, the null test, ROC at low null FPR.

* **Threshold.** For ``n`` calibration non-members with nearest-member similarities ``v``, the threshold
  is the ``ceil((n+1)(1-alpha))``-th smallest ``v``. A fresh non-member exchangeable with them exceeds it
  with probability at most ``alpha`` (split conformal). It exists only when ``n >= ceil(1/alpha) - 1``.
* **Pooling.** A class with fewer calibration images than that uses the threshold of all classes'
  calibration values pooled. With too few in total, the rule is uncalibrated at ``alpha`` and runs at
  the finest level the data supports, ``1/(n+1)`` (the pooled maximum), and says so.
* **Decision.** The reconstructions' likely-copy count is compared with what the null predicts by a
  one-sided binomial test (:func:`copy_p_value`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binomtest


def calibration_need(alpha: float) -> int:
    """Smallest calibration size with a finite conformal threshold at ``alpha``: ``ceil(1/alpha) - 1``."""
    return math.ceil(round(1.0 / alpha, 9)) - 1


def conformal_threshold(values: np.ndarray, alpha: float) -> float | None:
    """The ``ceil((n+1)(1-alpha))``-th order statistic of ``values``; None when that exceeds ``n``."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    k = math.ceil(round((v.size + 1) * (1.0 - alpha), 9))
    return float(v[k - 1]) if 1 <= k <= v.size else None


@dataclass
class CopyRule:
    """Per-class thresholds at an effective level ``alpha``."""

    alpha_requested: float
    alpha: float | None  # effective level; None: no calibration data at all
    thresholds: dict[int, float] = field(default_factory=dict)
    pooled: list[int] = field(default_factory=list)  # classes whose threshold is the pooled one
    calibration_count: dict[int, int] = field(default_factory=dict)

    @property
    def calibrated_at_requested(self) -> bool:
        return self.alpha is not None and self.alpha <= self.alpha_requested + 1e-12

    def describe(self, names: dict[int, str]) -> str:
        need = calibration_need(self.alpha_requested)
        total = sum(self.calibration_count.values())
        if self.alpha is None:
            return "The copy rule is uncalibrated: no calibration non-member shares a class with the members."
        text = ""
        if not self.calibrated_at_requested:
            text = (f"The copy rule is uncalibrated at alpha = {self.alpha_requested:g}: that needs at least {need} "
                    f"calibration non-members, and there are {total} in all. It runs at alpha = {self.alpha:.3g} instead "
                    "(the largest calibration value, all classes pooled). ")
        elif self.pooled:
            counts = ", ".join(f"{names.get(c, c)} ({self.calibration_count.get(c, 0)})" for c in self.pooled)
            text = (f"Classes with fewer than {need} calibration images share the threshold of all classes pooled "
                    f"({total} images): {counts}. ")
        return text


def fit_copy_rule(calibration: dict[int, np.ndarray], alpha: float) -> CopyRule:
    """Thresholds per class from each class's calibration values, pooling classes that are too small."""
    need = calibration_need(alpha)
    rule = CopyRule(alpha_requested=alpha, alpha=alpha, calibration_count={c: len(v) for c, v in calibration.items()})
    pool = np.concatenate([np.asarray(v, dtype=np.float64) for v in calibration.values()]) if calibration else np.zeros(0)
    if pool.size == 0:
        rule.alpha = None
        return rule
    if pool.size < need:
        rule.alpha = 1.0 / (pool.size + 1)
        rule.thresholds = {c: float(pool.max()) for c in calibration}
        rule.pooled = sorted(calibration)
        return rule
    pooled_threshold = conformal_threshold(pool, alpha)
    assert pooled_threshold is not None
    for c, v in calibration.items():
        own = conformal_threshold(v, alpha) if len(v) >= need else None
        rule.thresholds[c] = own if own is not None else pooled_threshold
        if own is None:
            rule.pooled.append(c)
    return rule


def copy_p_value(copies: int, n: int, null_rate: float) -> float:
    """One-sided binomial p-value of ``copies`` or more likely copies among ``n`` at the null's rate."""
    if n <= 0:
        return 1.0
    if null_rate >= 1.0:
        return 1.0
    return float(binomtest(int(copies), int(n), max(float(null_rate), 0.0), alternative="greater").pvalue)


def tpr_at_null_fpr(scores: dict[int, np.ndarray], null: dict[int, np.ndarray], fpr: float) -> float | None:
    """Share of reconstructions above the class's conformal null threshold at ``fpr`` (pooled for small classes).

    None when the null is too small to support ``fpr`` (fewer than ``ceil(1/fpr) - 1`` null images in all).
    """
    rule = fit_copy_rule({c: v for c, v in null.items() if len(v)}, fpr)
    if not rule.calibrated_at_requested:
        return None
    hits = [np.asarray(v) > rule.thresholds[c] for c, v in scores.items() if c in rule.thresholds and len(v)]
    total = sum(len(h) for h in hits)
    return float(sum(int(h.sum()) for h in hits) / total) if total else None
