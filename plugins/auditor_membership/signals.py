"""Per-example membership scores from logits, each oriented so that higher means "more likely a member".

Everything is computed in float64 from the logits in log space, so that confident predictions keep
distinct scores instead of rounding to a probability of exactly 1:

* ``loss``: minus the cross-entropy loss, ``log p_y`` (Yeom et al. 2018);
* ``confidence``: the log-odds of the top-class probability, ``log(p_max / (1 - p_max))`` (the same order
  as ``p_max``, Salem et al. 2019, without the ties that ``p_max == 1.0`` would create);
* ``modified_entropy``: minus Song & Mittal's (2021) modified prediction entropy
  ``Mentr = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)``;
* ``scaled_logit``: LiRA's statistic (Carlini et al. 2022) ``log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import logsumexp

SCORES = ("loss", "confidence", "modified_entropy", "scaled_logit")


def _check(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"expected logits of shape [N, classes >= 2], got {list(z.shape)}")
    if not np.isfinite(z).all():
        raise ValueError("the model returned non-finite logits; membership scores would be meaningless")
    if labels is not None and (labels.shape != (len(z),) or labels.min(initial=0) < 0 or labels.max(initial=0) >= z.shape[1]):
        raise ValueError(f"expected {len(z)} labels in [0, {z.shape[1]}), got shape {list(labels.shape)}")
    return z


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = _check(logits)
    return z - logsumexp(z, axis=1, keepdims=True)


def log_one_minus_softmax(logits: np.ndarray) -> np.ndarray:
    """``log(1 - p_i)`` for every class without cancellation.

    Only the top class can have ``p_i > 1/2``; there ``log(1 - p_i) = logsumexp_{j != i} z_j - logsumexp_j z_j``.
    Elsewhere ``p_i <= 1/2`` and ``log1p(-p_i)`` is exact to rounding.
    """
    z = _check(logits)
    logp = z - logsumexp(z, axis=1, keepdims=True)
    out = np.log1p(-np.exp(np.minimum(logp, np.log(0.5))))
    top = z.argmax(1)
    out[np.arange(len(z)), top] = _log_rest(z, top) - logsumexp(z, axis=1)
    return out


def _log_rest(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``logsumexp_{j != target} z_j`` per row."""
    others = z.copy()
    others[np.arange(len(z)), target] = -np.inf
    return logsumexp(others, axis=1)


def log_odds(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``log(p_t / (1 - p_t))`` of the softmax at class ``target`` per row."""
    z = _check(logits, target)
    return z[np.arange(len(z)), target] - _log_rest(z, target)


def loss_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y = -log(1 + exp(-φ))`` with φ the scaled logit: exact even where ``z_y - logsumexp(z)`` rounds to 0."""
    return -np.logaddexp(0.0, -log_odds(logits, labels))


def confidence_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = _check(logits)
    return log_odds(z, z.argmax(1))


def modified_entropy_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    logp, log1mp = log_softmax(logits), log_one_minus_softmax(logits)
    p = np.exp(logp)
    rows = np.arange(len(labels))
    own = -np.exp(log1mp[rows, labels]) * loss_score(logits, labels)  # -(1 - p_y) log p_y, log p_y exact near 1
    terms = -p * log1mp                                                 # -p_i log(1 - p_i)
    terms[rows, labels] = 0.0
    return -(own + terms.sum(axis=1))


def scaled_logit_score(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return log_odds(logits, labels)


SCORE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "loss": loss_score, "confidence": confidence_score, "modified_entropy": modified_entropy_score,
    "scaled_logit": scaled_logit_score}


def all_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Every threshold score of :data:`SCORES` for one batch of logits and true labels."""
    labels = np.asarray(labels, dtype=np.int64)
    return {name: fn(logits, labels) for name, fn in SCORE_FUNCTIONS.items()}
