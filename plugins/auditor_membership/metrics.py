"""Attack metrics with confidence intervals: AUC and balanced accuracy (bootstrap), TPR/FPR at a threshold (exact binomial)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln
from scipy.stats import binomtest, rankdata


def auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney probability that a member outscores a non-member (ties count half)."""
    n1, n0 = len(members), len(nonmembers)
    ranks = rankdata(np.concatenate([members, nonmembers]))
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def best_balanced_accuracy(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """max over thresholds t of (TPR(t) + TNR(t)) / 2, calling ``score >= t`` a member (``t = +inf`` included: 0.5)."""
    scores = np.concatenate([members, nonmembers])
    is_member = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    order = np.argsort(-scores, kind="mergesort")
    s, m = scores[order], is_member[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tpr = np.cumsum(m)[last] / len(members)
    fpr = np.cumsum(1 - m)[last] / len(nonmembers)
    return float(max(0.5, ((tpr + 1 - fpr) / 2).max()))


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


def bootstrap(statistic, members: np.ndarray, nonmembers: np.ndarray, rounds: int, level: float,
              rng: np.random.Generator) -> Estimate:
    """Percentile bootstrap, members and non-members resampled separately (stratified), ``rounds`` times."""
    value = statistic(members, nonmembers)
    if rounds < 1:
        return Estimate(value, float("nan"), float("nan"))
    draws = np.array([statistic(members[rng.integers(0, len(members), len(members))],
                                nonmembers[rng.integers(0, len(nonmembers), len(nonmembers))]) for _ in range(rounds)])
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Estimate(value, float(low), float(high))


def exact_rate(successes: int, trials: int, level: float) -> Estimate:
    """A proportion with its exact (Clopper-Pearson) two-sided confidence interval."""
    if trials <= 0:
        raise ValueError(f"a rate needs at least one trial, got {trials}")
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=level, method="exact")
    return Estimate(successes / trials, float(ci.low), float(ci.high))


def exposed_members(members: np.ndarray, nonmembers: np.ndarray) -> tuple[int, float]:
    """``k``: members scoring strictly above every non-member; ``p``: the chance of ``k`` or more if the scores said nothing
    about membership (exchangeable): the top ``k`` of the pooled ``n + m`` scores all members, ``C(n, k) / C(n + m, k)``."""
    n, total = len(members), len(members) + len(nonmembers)
    if not len(nonmembers) or not n:
        raise ValueError(f"exposure needs members and non-members, got {n} and {len(nonmembers)}")
    k = int((members > nonmembers.max()).sum())
    log_p = gammaln(n + 1) - gammaln(n - k + 1) - gammaln(total + 1) + gammaln(total - k + 1)
    return k, float(np.exp(log_p))
