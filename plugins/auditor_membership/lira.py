"""Offline LiRA (Carlini et al., S&P 2022) with a fixed variance, from the plugin's reference models.

LiRA works on the scaled logit ``φ = log(p_y / (1 - p_y))``. Offline, it fits a Gaussian to ``φ`` of each example
under the reference models that were **not** trained on it (OUT models) and scores the target's ``φ`` by how far it
lies above that fit. With few reference models the paper uses one global variance instead of per-example ones;
dividing by a constant does not change any ranking, threshold or AUC, so the score is

    lira(x) = φ_target(x) - mean_{OUT models k} φ_k(x)

(higher = more member-like). Unlike RMIA's probability ratio, it keeps its resolution where a model is very
confident: ``p_y = 1 - 1e-7`` and ``1 - 1e-6`` differ by 2.3 in ``φ`` but by a factor 1.000001 in probability.
"""
from __future__ import annotations

import numpy as np


def offline_scores(phi_target: np.ndarray, phi_reference: np.ndarray, out_mask: np.ndarray | None = None) -> np.ndarray:
    """``φ_target - mean of φ over OUT reference models`` per example (rows: examples, columns: models; all OUT when no mask)."""
    phi_reference = np.asarray(phi_reference, dtype=np.float64)
    if phi_reference.ndim != 2 or len(phi_reference) != len(phi_target):
        raise ValueError(f"expected reference scaled logits of shape [{len(phi_target)}, models], got {list(phi_reference.shape)}")
    mask = np.ones(phi_reference.shape, dtype=bool) if out_mask is None else np.asarray(out_mask, dtype=bool)
    counts = mask.sum(axis=1)
    if (counts == 0).any():
        raise ValueError(f"{int((counts == 0).sum())} examples have no reference model that was not trained on them")
    return np.asarray(phi_target, dtype=np.float64) - np.where(mask, phi_reference, 0.0).sum(axis=1) / counts
