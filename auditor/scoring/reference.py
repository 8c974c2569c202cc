"""Reference (non-member) images split per class into a calibration part and a held-out null part.

The calibration part sets the copy threshold and is the non-member pool that every image is
compared with ("closer to a member than to a non-member"). The null part is scored exactly like
reconstructions: against the members and against the calibration pool, by the same comparison.
Similarities are kept in the audit's cache (one audit, one data set), so several attacks scored in one
audit pay for them once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from auditor.data.sets import AuditData
from auditor.scoring.config import ScoringConfig
from auditor.scoring.similarity import similarity_matrix


@dataclass
class ReferenceClass:
    """One class: member indices, calibration and null indices (into the reference set) and their similarities."""

    members: np.ndarray
    calibration: np.ndarray
    null: np.ndarray
    calibration_members: np.ndarray  # [C, M]: calibration images against the class's members
    null_members: np.ndarray  # [H, M]
    null_calibration: np.ndarray  # [H, C]: null images against the calibration pool

    @property
    def calibration_best(self) -> np.ndarray:
        return self.calibration_members.max(axis=1) if self.calibration_members.size else np.zeros(0)

    @property
    def null_best(self) -> np.ndarray:
        return self.null_members.max(axis=1) if self.null_members.size else np.zeros(0)


def split_reference(ref_labels: np.ndarray, label: int, cap: int | None, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded calibration and null indices of one class: ``cap`` at most, ``share`` of them for calibration."""
    idx = np.flatnonzero(ref_labels == label)
    rng = np.random.default_rng([seed, label, 7])
    idx = rng.permutation(idx)
    if cap is not None:
        idx = idx[:cap]
    n_null = int(np.floor(len(idx) * (1.0 - share)))
    n_cal = len(idx) - n_null
    return np.sort(idx[:n_cal]), np.sort(idx[n_cal:])


def reference_classes(data: AuditData, mem_img: torch.Tensor, ref_img: torch.Tensor, cfg: ScoringConfig,
                      seed: int, cache: dict[Any, Any] | None = None) -> dict[int, ReferenceClass]:
    """Every class with both members and reference images, split and compared.

    ``cache`` (the audit's :attr:`AuditRun.scoring_cache`) keeps the result for this data set, so several attacks
    scored in one audit pay for the similarities once; without it nothing is kept.
    """
    assert data.reference is not None
    key = ("reference_classes", cfg.comparison, cfg.baseline_per_class, cfg.calibration_share, seed, tuple(mem_img.shape[1:]))
    if cache is not None and key in cache:
        return cache[key]
    mem_lab, ref_lab = data.members.labels.numpy(), data.reference.labels.numpy()
    out: dict[int, ReferenceClass] = {}
    for c in range(data.num_classes):
        members = np.flatnonzero(mem_lab == c)
        cal, null = split_reference(ref_lab, c, cfg.baseline_per_class, cfg.calibration_share, seed)
        if not len(members) or not len(cal):
            continue
        mem = mem_img[members]
        out[c] = ReferenceClass(
            members=members, calibration=cal, null=null,
            calibration_members=similarity_matrix(ref_img[cal], mem, cfg.comparison).numpy(),
            null_members=similarity_matrix(ref_img[null], mem, cfg.comparison).numpy(),
            null_calibration=similarity_matrix(ref_img[null], ref_img[cal], cfg.comparison).numpy(),
        )
    if cache is not None:
        cache[key] = out
    return out
