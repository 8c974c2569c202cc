"""RMIA (Zarifzadeh et al., ICML 2024) in its population form, offline.

For a target example ``x`` and population samples ``z`` (non-members drawn from the reference set),

    LR(x, z) = (Pr(x | θ) / Pr(x)) / (Pr(z | θ) / Pr(z)),    Score(x) = |{z : LR(x, z) > γ}| / |Z|,

with ``Pr(x | θ) = p_y(x)``, the target model's softmax probability of the true label. ``Pr(x)`` is the
probability averaged over models not trained on ``x``; in the offline setting the paper approximates
it from OUT reference models as ``Pr(x) = ((1 + a) · Pr_OUT(x) + (1 - a)) / 2`` (its linear correction for
the missing IN models, ``a`` set per dataset).

Without reference models (the plugin's default) nothing but the target model is available, so
``Pr_OUT(x)`` is replaced by the target's own ``p_y(x)``. Then ``Pr(x | θ)/Pr(x) = f(p_y)`` with
``f(p) = 2p / ((1 + a) p + 1 - a)``, increasing in ``p`` for ``a < 1``: the score is a monotone function of
``p_y`` and ranks examples exactly as the loss attack does (up to the resolution ``1/|Z|`` and ties once
``f(p_x)/γ`` exceeds every population value). What it adds is a population-calibrated scale. With reference
models, ``Pr(x)`` varies per example and RMIA is the stronger attack of the paper.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def log_marginal(log_p_out: np.ndarray, a: float) -> np.ndarray:
    """``log Pr(x) = log(((1 + a) P + 1 - a) / 2)`` for ``P = exp(log_p_out)``, written as ``log1p(-(1 + a)(1 - P) / 2)``."""
    if not 0.0 <= a < 1.0:
        raise ValueError(f"the offline RMIA parameter a must lie in [0, 1), got {a}")
    one_minus_p = -np.expm1(np.asarray(log_p_out, dtype=np.float64))
    return np.log1p(-(1.0 + a) * one_minus_p / 2.0)


def log_mean_probability(log_probs: np.ndarray, out_mask: np.ndarray | None = None) -> np.ndarray:
    """``log(mean_k p_k)`` over reference models (rows: examples, columns: models); only OUT models where masked."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if out_mask is None:
        return logsumexp(log_probs, axis=1) - np.log(log_probs.shape[1])
    counts = out_mask.sum(axis=1)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} examples have no reference model that was not trained on them")
    masked = np.where(out_mask, log_probs, -np.inf)
    return logsumexp(masked, axis=1) - np.log(counts)


def log_ratio(log_p_target: np.ndarray, log_p_out: np.ndarray, a: float) -> np.ndarray:
    """``log(Pr(x | θ) / Pr(x))`` per example."""
    return np.asarray(log_p_target, dtype=np.float64) - log_marginal(log_p_out, a)


def rmia_scores(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float,
                z_index_of_x: np.ndarray | None = None) -> np.ndarray:
    """Fraction of population samples ``z`` with ``LR(x, z) > γ``, for every ``x``.

    ``LR(x, z) > γ`` is ``log_ratio_z < log_ratio_x - log γ``, so one sort of the population answers every
    ``x`` in ``O((n + m) log m)``. ``z_index_of_x[i] >= 0`` marks an ``x`` that is itself population sample
    number ``z_index_of_x[i]``; it is left out of its own comparison (the fraction is over the other ``m - 1``).
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    pool = np.sort(np.asarray(log_ratio_z, dtype=np.float64))
    x = np.asarray(log_ratio_x, dtype=np.float64)
    cut = x - np.log(gamma)
    below = np.searchsorted(pool, cut, side="left").astype(np.float64)
    denominator = np.full(len(x), float(len(pool)))
    if z_index_of_x is not None:
        own = np.asarray(z_index_of_x) >= 0
        self_counted = own & (np.asarray(log_ratio_z)[np.maximum(z_index_of_x, 0)] < cut)  # only when γ < 1
        below -= self_counted
        denominator[own] -= 1.0
    if (denominator <= 0).any():
        raise ValueError("RMIA needs at least two population samples")
    return below / denominator
