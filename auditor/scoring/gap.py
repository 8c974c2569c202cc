"""The null-centred leakage gap and its delete-half subsampling interval.

For one image (a reconstruction, or a held-out real non-member scored as if it were one) the
*equal-pool gap* is the expected best similarity to a random ``k``-subset of its class's members
minus the expected best similarity to a random ``k``-subset of the class's calibration non-members,
``k`` the smaller pool. The reconstructions' mean gap minus the null's (held-out non-members, weighted
to the reconstructions' class mix) is the *null-centred gap*: a member/reference distribution shift
moves both terms alike and cancels.

The interval subsamples all four sets, reconstructions, members, calibration references and null
references, to half their size without replacement (resampling with replacement duplicates columns
and biases the max behind "nearest"). For a mean, a half-sample drawn without replacement varies about
the full sample as much as the full sample varies about the truth, so the interval is the estimate
minus the quantiles of the half-sample statistics about their own mean (which also removes the shift
that the smaller pools cause).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln


def expected_max(s: np.ndarray, k: int) -> np.ndarray:
    """Expected row maximum of ``s`` [R, M] over a uniformly random ``k``-subset of its columns.

    The weight of the ``j``-th largest value is ``C(M-j, k-1) / C(M, k)``; ranks whose weights sum to
    less than 1e-9 are skipped, so only the top values are sorted.
    """
    m = s.shape[1]
    if k >= m:
        return s.max(axis=1).astype(np.float64)
    j = np.arange(1, m - k + 2)  # rank of the subset's maximum, 1 = largest
    log_w = gammaln(m - j + 1) - gammaln(k) - gammaln(m - j - k + 2)
    log_w -= gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)
    w = np.exp(log_w)
    keep = min(len(w), int(np.searchsorted(np.cumsum(w), 1.0 - 1e-9)) + 1)
    top = -np.partition(-s, keep - 1, axis=1)[:, :keep] if keep < m else s
    top = np.sort(top, axis=1)[:, ::-1][:, :keep]
    return top.astype(np.float64) @ w[:keep]


def equal_pool_gap(to_members: np.ndarray, to_reference: np.ndarray) -> np.ndarray:
    """Per-row gap over equal-size pools of members and references."""
    k = min(to_members.shape[1], to_reference.shape[1])
    return expected_max(to_members, k) - expected_max(to_reference, k)


@dataclass
class GapClass:
    """One class's similarity matrices: reconstructions and null images against members and references."""

    recon_members: np.ndarray  # [R, M]
    recon_reference: np.ndarray  # [R, P]
    null_members: np.ndarray  # [H, M]
    null_reference: np.ndarray  # [H, P]


@dataclass
class CentredGap:
    recon: float  # reconstructions' mean equal-pool gap
    null: float  # held-out non-members' mean gap, weighted to the reconstructions' class mix
    centred: float
    per_class_recon: list[float]
    per_class_null: list[float]
    low: float | None = None
    high: float | None = None


def centred_gap(classes: list[GapClass]) -> CentredGap:
    """Point estimate over classes that have reconstructions, members, references and null images."""
    rec = [equal_pool_gap(c.recon_members, c.recon_reference) for c in classes]
    nul = [equal_pool_gap(c.null_members, c.null_reference) for c in classes]
    weights = np.array([len(r) for r in rec], dtype=np.float64)
    weights /= weights.sum()
    rec_means = [float(r.mean()) for r in rec]
    null_means = [float(n.mean()) for n in nul]
    g_rec, g_null = float(weights @ rec_means), float(weights @ null_means)
    return CentredGap(g_rec, g_null, g_rec - g_null, rec_means, null_means)


def _half(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(n, math.ceil(n / 2), replace=False)


def subsample_interval(classes: list[GapClass], estimate: float, replicates: int, confidence: float,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Delete-half subsampling interval of the null-centred gap (see the module docstring)."""
    weights = np.array([c.recon_members.shape[0] for c in classes], dtype=np.float64)
    weights /= weights.sum()
    stats = np.zeros(replicates)
    for b in range(replicates):
        total = 0.0
        for w, c in zip(weights, classes):
            cols_m, cols_p = _half(c.recon_members.shape[1], rng), _half(c.recon_reference.shape[1], rng)
            r, h = _half(c.recon_members.shape[0], rng), _half(c.null_members.shape[0], rng)
            d_rec = equal_pool_gap(c.recon_members[np.ix_(r, cols_m)], c.recon_reference[np.ix_(r, cols_p)])
            d_null = equal_pool_gap(c.null_members[np.ix_(h, cols_m)], c.null_reference[np.ix_(h, cols_p)])
            total += w * (float(d_rec.mean()) - float(d_null.mean()))
        stats[b] = total
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats - stats.mean(), [tail, 1.0 - tail])
    return estimate - float(hi), estimate - float(lo)
