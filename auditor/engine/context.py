"""``AuditRun``: everything one audit shares, built once when the audit starts and handed to every attack's ``assess``.

It holds the validated settings (by section), the severity thresholds, the deadline, the attack registry
and the LPIPS scorer, plus the similarity cache that several attacks scored against the same data share.
Nothing of one audit lives in module globals, so two audits in one process never see each other's settings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pluggy

from auditor.core.severity import SeverityThresholds
from auditor.engine.config import AuditConfig, ReportConfig, RunConfig
from auditor.engine.registry import Registry
from auditor.scoring.config import ScoringConfig

if TYPE_CHECKING:
    from auditor.scoring.lpips_scorer import LpipsScorer


@dataclass
class AuditRun:
    """One audit: its settings, thresholds, deadline, registry and scorers."""

    config: AuditConfig
    registry: Registry
    pm: pluggy.PluginManager | None = None
    started: float = field(default_factory=time.monotonic)
    scoring_cache: dict[Any, Any] = field(default_factory=dict)  # similarities against this run's data, per scoring setting

    @classmethod
    def start(cls, config: AuditConfig, pm: pluggy.PluginManager) -> AuditRun:
        """Build the run (and the attack registry, once) at the start of an audit."""
        return cls(config=config, registry=Registry.build(pm), pm=pm)

    @property
    def settings(self) -> RunConfig:
        return self.config.run

    @property
    def report_settings(self) -> ReportConfig:
        return self.config.report

    @property
    def scoring(self) -> ScoringConfig:
        return self.config.scoring

    @property
    def thresholds(self) -> SeverityThresholds:
        return self.config.severity

    @property
    def seed(self) -> int:
        return self.config.run.seed

    @property
    def deadline(self) -> float | None:
        """``time.monotonic()`` value at which the whole audit's budget is spent (None: no budget)."""
        budget = self.config.run.time_budget_s
        return self.started + budget if budget else None

    @cached_property
    def lpips(self) -> LpipsScorer:
        """The LPIPS scorer from the local weights cache, loaded on first use (``available`` says whether it can score)."""
        from auditor.scoring.lpips_scorer import LpipsScorer

        return LpipsScorer.from_cache()
