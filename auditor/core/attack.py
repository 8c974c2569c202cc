"""The attack contract: what a plugin implements and what the runner hands it."""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from auditor.core.capabilities import Capability
from auditor.core.errors import AttackTimeout
from auditor.core.metrics import Metric
from auditor.core.progress import progress
from auditor.core.results import AttackResult, Figure, Finding, Table
from auditor.core.severity import reconstruction_findings

if TYPE_CHECKING:
    from auditor.data.sets import AuditData
    from auditor.engine.context import AuditRun
    from auditor.models.model import Classifier

T = TypeVar("T")


class AttackConfig(BaseModel):
    """Base of every attack's options. Subclass and add fields with descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    time_budget_s: float | None = Field(
        None, gt=0, description="Wall-clock budget for this attack; past it the attack is stopped and recorded as failed."
    )


@dataclass
class RunContext:
    """Everything the runner gives an attack besides the model and data."""

    device: torch.device
    seed: int
    smoke: bool = False
    gradient_mode: Literal["autograd", "zeroth_order"] | None = None
    workdir: Path | None = None
    deadline: float | None = None  # time.monotonic() value past which the attack must stop
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("auditor.core.attack"))
    show_progress: bool = True

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        """Raise :class:`AttackTimeout` when the time budget is spent. Call it in every loop."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise AttackTimeout("time budget exhausted")

    def generator(self, offset: int = 0) -> torch.Generator:
        """A seeded CPU generator; ``offset`` separates independent streams."""
        return torch.Generator().manual_seed(self.seed * 1000003 + offset)

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
        """Iterate with progress on stderr (a live bar on a terminal, a line every 10 % in logs), honouring the deadline."""
        for item in progress(iterable, desc, total, enabled=self.show_progress):
            self.check_deadline()
            yield item


@dataclass
class AttackOutput:
    """What :meth:`Attack.run` returns. The runner scores ``reconstructions`` itself."""

    reconstructions: torch.Tensor | None = None  # [N, C, H, W] float32 in [0, 1]
    labels: torch.Tensor | None = None           # [N] class each reconstruction targets
    metrics: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    score: bool = True  # False: do not run the core's reconstruction scoring


class Attack(ABC):
    """A privacy attack. Subclass, set ``name``/``summary``/``requires``, define ``Config``, implement ``run``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.QUERY})
    zeroth_order: ClassVar[bool] = False  # may run on a query-only gradient estimate
    Config: ClassVar[type[AttackConfig]] = AttackConfig
    metrics: ClassVar[tuple[Metric, ...]] = ()  # declarations of the keys ``run`` puts in ``AttackOutput.metrics``

    def __init__(self, config: AttackConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        """Attack ``model`` with ``data`` as the private members; honour ``ctx.smoke`` and the deadline."""

    def assess(self, result: AttackResult, run: AuditRun | None = None) -> list[Finding]:
        """Turn the scored result into findings. The default uses the core's calibrated copy rule at the audit's
        ``[severity]`` thresholds (``run.thresholds``; the documented defaults without a run).

        Overrides may take ``(result)`` only (the older form) or ``(result, run)``: the runner looks at the signature.
        """
        return reconstruction_findings(self.name, result, run.thresholds if run is not None else None)

    @classmethod
    def demo_options(cls, budget_s: float) -> dict[str, Any]:
        """Options for a short demonstration run of about ``budget_s`` seconds (``audit demo``); none by default."""
        return {}


ProgressFn = Callable[[str], None]
