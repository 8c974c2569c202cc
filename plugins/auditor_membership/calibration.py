"""Per-class thresholds set on a calibration part of the reference set, evaluated on the held-out rest.

For a target false-positive rate ``α`` and ``n`` calibration non-members of a class, the threshold is the
``k``-th largest calibration score with ``k = floor(α (n + 1))``; an example is flagged as a member when
its score is strictly above it. For a fresh non-member exchangeable with the calibration set the chance
of being flagged is at most ``k / (n + 1) ≤ α`` (the split-conformal argument), so the FPR measured on the
held-out non-members is an honest check, not a fit. ``k = 0`` (``n < 1/α - 1``) means the class has too
few calibration non-members to set a threshold at that FPR.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


def split_reference(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of reference indices into (calibration, held-out); ``fraction`` of each class calibrates."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the calibration fraction must lie strictly between 0 and 1, got {fraction}")
    calibration, held_out = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        calibration.append(idx[:k])
        held_out.append(idx[k:])
    return np.sort(np.concatenate(calibration)), np.sort(np.concatenate(held_out))


def conformal_rank(n: int, alpha: float) -> int:
    """``k = floor(α (n + 1))``: how many calibration scores may lie at or above the threshold."""
    return int(math.floor(alpha * (n + 1) + 1e-9))


@dataclass(frozen=True)
class Thresholds:
    """Thresholds for one target FPR: per class (``values[c]``), one global value, or unsupported (``reason``)."""

    alpha: float
    mode: Literal["per_class", "global", "unsupported"]
    values: dict[int, float]
    global_value: float | None = None
    reason: str = ""

    def flags(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """True where an example is called a member (score strictly above its threshold)."""
        if self.mode == "unsupported":
            raise ValueError(f"no threshold at FPR {self.alpha:g}: {self.reason}")
        if self.mode == "global":
            return scores > self.global_value
        cut = np.array([self.values.get(int(c), np.inf) for c in labels])
        return scores > cut


def _kth_largest(values: np.ndarray, k: int) -> float:
    return float(np.sort(values)[::-1][k - 1])


def set_thresholds(cal_scores: np.ndarray, cal_labels: np.ndarray, alpha: float, classes: np.ndarray,
                   n_held_out: int, per_class: bool = True) -> Thresholds:
    """Thresholds at FPR ``alpha`` for the ``classes`` to be evaluated; per class when every class supports it.

    Falls back to one global threshold when some class has fewer than ``1/α - 1`` calibration non-members but
    the pooled calibration set has enough; reports ``unsupported`` when neither does, or when fewer than
    ``1/α`` held-out non-members are there to measure the FPR the threshold reaches.
    """
    need_held = math.ceil(1.0 / alpha - 1e-9)
    if n_held_out < need_held:
        return Thresholds(alpha, "unsupported", {}, reason=f"only {n_held_out} held-out non-members; measuring an FPR of "
                                                           f"{alpha:.2%} needs at least 1/FPR = {need_held}")
    need_cal = math.ceil(1.0 / alpha - 1.0 - 1e-9)
    counts = {int(c): int((cal_labels == c).sum()) for c in classes}
    if per_class and all(conformal_rank(n, alpha) >= 1 for n in counts.values()):
        values = {c: _kth_largest(cal_scores[cal_labels == c], conformal_rank(n, alpha)) for c, n in counts.items()}
        return Thresholds(alpha, "per_class", values)
    smallest = min(counts.values()) if counts else 0
    why = (f"per-class thresholds need {need_cal} calibration non-members in every class, the smallest class has {smallest}"
           if per_class else "per-class thresholds switched off")
    k = conformal_rank(len(cal_scores), alpha)
    if k >= 1:
        return Thresholds(alpha, "global", {}, _kth_largest(cal_scores, k), reason=why + "; one threshold over all classes is used")
    return Thresholds(alpha, "unsupported", {}, reason=why + f", and all {len(cal_scores)} calibration non-members together are "
                                                             f"fewer than {need_cal}")


def class_pvalues(cal_scores: np.ndarray, cal_labels: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(1 + #{calibration non-members of the same class scoring >= s}) / (n_class + 1)``: small = unusually member-like."""
    out = np.ones(len(scores))
    for c in np.unique(labels):
        pool = np.sort(cal_scores[cal_labels == c])
        here = labels == c
        at_or_above = len(pool) - np.searchsorted(pool, scores[here], side="left")
        out[here] = (1.0 + at_or_above) / (len(pool) + 1.0)
    return out
