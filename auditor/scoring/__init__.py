"""Measurement: similarity kernels, matching, conformal calibration, the null-centred gap and LPIPS; pure functions
that return values and notes (``auditor.scoring`` keeps the names it always had)."""
from __future__ import annotations

from auditor.scoring.config import ScoringConfig
from auditor.scoring.reconstructions import likely_copy_flags, score_reconstructions
from auditor.scoring.similarity import (
    WIN,
    affine_ssim,
    affine_ssim_matrix,
    ensure_min_size,
    hungarian_match,
    psnr,
    similarity_matrix,
    ssim,
    ssim_matrix,
)

__all__ = ["WIN", "ScoringConfig", "affine_ssim", "affine_ssim_matrix", "ensure_min_size", "hungarian_match",
           "likely_copy_flags", "psnr", "score_reconstructions", "similarity_matrix", "ssim", "ssim_matrix"]
