"""Reference (non-member) images split per class into a calibration part and a held-out null part.

The calibration part sets the copy threshold and is the non-member pool that every image is
compared with ("closer to a member than to a non-member"). The null part is scored exactly like
reconstructions: against the members and against the calibration pool, by the same comparison.
Similarities are cached while the same member and reference tensors are alive, so several attacks
scored against one data set pay for them once.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch

from auditor.data import AuditData
from auditor.scoring_config import ScoringConfig
from auditor.similarity import similarity_matrix


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


_CACHE: dict[tuple, tuple[weakref.ref, weakref.ref, dict[int, ReferenceClass]]] = {}


def reference_classes(data: AuditData, mem_img: torch.Tensor, ref_img: torch.Tensor, cfg: ScoringConfig,
                      seed: int) -> dict[int, ReferenceClass]:
    """Every class with both members and reference images, split and compared (cached per data set)."""
    assert data.reference is not None
    held = (data.members.images, data.reference.images)
    key = (id(held[0]), id(held[1]), cfg.comparison, cfg.baseline_per_class, cfg.calibration_share, seed,
           tuple(mem_img.shape[1:]))
    cached = _CACHE.get(key)
    if cached is not None and cached[0]() is held[0] and cached[1]() is held[1]:
        return cached[2]
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
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[key] = (weakref.ref(held[0]), weakref.ref(held[1]), out)
    return out
