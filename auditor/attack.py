"""The attack contract: what a plugin implements and what the runner hands it."""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from auditor.errors import AttackTimeout
from auditor.results import AttackResult, Figure, Finding, Table

if TYPE_CHECKING:
    from auditor.data import AuditData
    from auditor.model import Classifier

T = TypeVar("T")


class Capability(StrEnum):
    """What a loaded model can do; attacks declare which they need."""

    QUERY = "query"            # logits for inputs (every model)
    GRADIENTS = "gradients"    # autograd w.r.t. the input pixels
    PARAMETERS = "parameters"  # read the weights (torch parameters or ONNX initializers)


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
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("auditor.attack"))
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
        """Iterate with a progress bar on stderr (tqdm) that also honours the deadline."""
        from tqdm.auto import tqdm

        bar = tqdm(iterable, desc=desc, total=total, disable=not self.show_progress, leave=False)
        for item in bar:
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

    def __init__(self, config: AttackConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        """Attack ``model`` with ``data`` as the private members; honour ``ctx.smoke`` and the deadline."""

    def assess(self, result: AttackResult) -> list[Finding]:
        """Turn the scored result into findings. The default uses the core's calibrated copy rule."""
        from auditor.severity import reconstruction_findings

        return reconstruction_findings(self.name, result)


ProgressFn = Callable[[str], None]
