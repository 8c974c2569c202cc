"""``[scoring]`` in audit.toml: how reconstructions are compared and how the copy rule is calibrated."""
from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auditor.core.deprecation import deprecation
from auditor.scoring.similarity import Comparison

log = logging.getLogger(__name__)

# old key -> what replaced it; accepted with a deprecation warning and otherwise ignored (or renamed)
DEPRECATED_KEYS = {
    "percentile": "alpha (the copy threshold is a conformal quantile at level 1 - alpha)",
    "min_reference_per_class": "alpha (classes with fewer than ceil(1/alpha) - 1 calibration images are pooled)",
}
RENAMED_KEYS = {"bootstrap": "replicates"}


class ScoringConfig(BaseModel):
    """How reconstructions are scored (``[scoring]`` in audit.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    comparison: Comparison = Field(
        "affine",
        description="'affine': SSIM after fitting each image to each candidate by a·x + b, a >= 0 (least squares); "
        "'ssim': plain SSIM. Reconstructions, calibration and null images all go through the same comparison.",
    )
    alpha: float = Field(
        0.01, gt=0.0, lt=1.0,
        description="False-positive rate of the likely-copy threshold: the conformal ceil((n+1)(1-alpha))-th order "
        "statistic of n calibration non-members' nearest-member similarity.",
    )
    calibration_share: float = Field(
        0.5, gt=0.0, lt=1.0,
        description="Share of each class's reference images that sets the threshold; the rest is the held-out null "
        "scored as if it were reconstructions.",
    )
    replicates: int = Field(300, ge=0, description="Delete-half subsamples for the gap's interval (0: no interval).")
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence level of the gap's interval.")
    lpips_pool: int = Field(256, ge=1, description="Members per class searched for the LPIPS nearest (the most similar).")
    baseline_per_class: int | None = Field(
        300, ge=2,
        description="Reference images per class used for calibration and null (seeded subset; None: all). They cost "
        "(images x members of the class) comparisons, once per data set.",
    )

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        for old, new in RENAMED_KEYS.items():
            if old in raw:
                deprecation(f"[scoring] {old} is deprecated: use {new}")
                raw.setdefault(new, raw.pop(old))
        for old, why in DEPRECATED_KEYS.items():
            if old in raw:
                raw.pop(old)
                deprecation(f"[scoring] {old} is deprecated and ignored: replaced by {why}")
        return raw
