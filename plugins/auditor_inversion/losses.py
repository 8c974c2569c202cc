"""Loss terms of network inversion, each a plain function; :class:`WeightedLoss` combines named terms.

* ``kl``: KL(P‖Q) between the conditioning vector P and the classifier's softmax Q, computed once and
  correctly as ``kl_div(log_softmax(logits), P, reduction="batchmean")`` = mean_i Σ_k P log(P/Q).
* ``ce``: cross-entropy of the logits to the conditioned label.
* ``cosine``: mean pairwise cosine similarity of penultimate features within the batch
  (1/(N(N−1)) Σ_{i≠j} cos θ_ij), optionally only between samples of the same class.
* ``ortho``: (1/N²) Σ_ij (G_ij − δ_ij)² with G = F̃F̃ᵀ of L2-normalised features (Gram orthogonality).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


def kl_term(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean")


def ce_term(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def _pairwise_cosine(features: torch.Tensor) -> torch.Tensor:
    f = F.normalize(features, dim=1)
    return f @ f.T


def cosine_term(features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean off-diagonal cosine similarity; with ``labels``, only pairs of the same class count."""
    n = len(features)
    if n < 2:
        return features.sum() * 0.0
    sim = _pairwise_cosine(features)
    mask = ~torch.eye(n, dtype=torch.bool, device=features.device)
    if labels is not None:
        mask &= labels[:, None] == labels[None, :]
        if not mask.any():
            return features.sum() * 0.0
    return sim[mask].mean()


def ortho_term(features: torch.Tensor) -> torch.Tensor:
    gram = _pairwise_cosine(features)
    eye = torch.eye(len(features), device=features.device)
    return ((gram - eye) ** 2).mean()


class WeightedLoss:
    """Weighted sum of named terms; terms with weight 0 are skipped (switchable)."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = {k: float(v) for k, v in weights.items()}

    def enabled(self, name: str) -> bool:
        return self.weights.get(name, 0.0) != 0.0

    def combine(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = None
        for name, value in terms.items():
            weight = self.weights.get(name, 0.0)
            if weight == 0.0:
                continue
            total = weight * value if total is None else total + weight * value
        if total is None:
            raise ValueError(f"every loss term is switched off (weights {self.weights})")
        return total
