"""Metric declarations: each number an attack reports is declared once, by the attack that emits it.

An attack lists its :class:`Metric` declarations in ``Attack.metrics``; the runner records them in the
report beside the values (``AttackResult.declared_metrics``), and the HTML report, ``audit compare``
and the charts read the declarations instead of knowing any plugin's keys. The scores the core computes
for reconstructions (:class:`auditor.core.results.Scores`) are declared here, in :data:`SCORE_METRICS`.
"""
from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class Metric(BaseModel):
    """One metric: its key, how to show it, and which direction means more leakage."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="The key in ``AttackOutput.metrics`` (or the field of ``Scores``).")
    label: str = Field("", description="Row label in reports and comparisons; the name when empty.")
    higher_is_better: bool | None = Field(
        None, description="For privacy: True when a higher value means less leakage, False when it means more; "
                          "None when the number has no direction (sizes, times). Comparisons mark the worst model by it.")
    format: str = Field(".3f", description="A format spec for the value: '.3f', '.1%', 'd' (whole numbers), '.3g'.")
    description: str = ""
    compare: bool = Field(True, description="Show it as a row in ``audit compare``.")

    @property
    def title(self) -> str:
        return self.label or self.name

    def render(self, value: float | int | None) -> str:
        """The value as text by ``format`` ('–' when missing or not finite)."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        if self.format == "d":
            return str(int(round(value)))
        return format(value, self.format)

    def worst(self, values: list[float | None]) -> int | None:
        """Index of the single value that means most leakage; None when there is no direction, a tie or one value."""
        if self.higher_is_better is None:
            return None
        sign = -1.0 if self.higher_is_better else 1.0
        numbers = sorted(((sign * v, i) for i, v in enumerate(values) if isinstance(v, (int, float)) and math.isfinite(v)),
                         reverse=True)
        return numbers[0][1] if len(numbers) > 1 and numbers[0][0] > numbers[1][0] else None


SCORE_METRICS: tuple[Metric, ...] = (
    Metric(name="likely_copy_share", label="likely copies", higher_is_better=False, format=".1%"),
    Metric(name="gap", label="gap (member − non-member)", higher_is_better=False, format="+.3f"),
    Metric(name="matched_ssim_mean", label="matched SSIM", higher_is_better=False),
    Metric(name="best_ssim_mean", label="best SSIM to members", higher_is_better=False),
    Metric(name="reference_best_ssim_mean", label="best SSIM to non-members", higher_is_better=False),
    Metric(name="best_ssim_max", label="worst case SSIM", higher_is_better=False),
    Metric(name="lpips_best_mean", label="LPIPS to members", higher_is_better=None,
           description="LPIPS distance to the nearest member (lower is closer); shown without marking."),
)
"""The reconstruction scores the core computes for every attack that returns reconstructions."""
