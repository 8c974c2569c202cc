"""Result data model: everything an audit writes is one of these pydantic models.

``AuditReport`` is both the ``report.json`` artifact (the source of truth) and the
view-model of the HTML template. Tensors never cross this boundary.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Severity(StrEnum):
    """Risk level of a finding; ordered info < low < medium < high."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


class Finding(BaseModel):
    """One risk statement made by an attack."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    attack: str
    title: str
    severity: Severity
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    detail: str = ""


class Figure(BaseModel):
    """A picture in the report: an embedded PNG (base64) with a caption."""

    model_config = ConfigDict(extra="forbid")
    title: str
    png_base64: str
    caption: str = ""
    private: bool = False  # True when the picture shows member (training) images


class Table(BaseModel):
    """A small table in the report: column names and rows of cells."""

    model_config = ConfigDict(extra="forbid")
    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


class SampleScore(BaseModel):
    """Scores of one reconstruction against the data the auditor holds."""

    model_config = ConfigDict(extra="forbid")
    index: int
    label: int
    nearest_member: int | None = None          # index into the member set
    nearest_member_ssim: float | None = None
    nearest_reference: int | None = None       # index into the reference set
    nearest_reference_ssim: float | None = None
    matched_member: int | None = None          # Hungarian one-to-one match
    matched_member_ssim: float | None = None
    nearest_member_lpips: float | None = None
    likely_copy: bool = False


class ClassScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: int
    name: str
    count: int
    matched_ssim_mean: float | None = None
    best_ssim_mean: float | None = None
    best_ssim_max: float | None = None
    reference_best_ssim_mean: float | None = None
    gap: float | None = None
    likely_copy_share: float | None = None
    copy_threshold: float | None = None


class Scores(BaseModel):
    """What the core's scoring found for one attack's reconstructions."""

    model_config = ConfigDict(extra="forbid")
    calibrated: bool
    calibration_note: str = ""
    percentile: float = 99.0
    matched_ssim_mean: float | None = None
    best_ssim_mean: float | None = None
    best_ssim_max: float | None = None
    reference_best_ssim_mean: float | None = None
    gap: float | None = None
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    likely_copy_share: float | None = None
    lpips_best_mean: float | None = None
    lpips_note: str = ""
    per_class: list[ClassScore] = Field(default_factory=list)
    samples: list[SampleScore] = Field(default_factory=list)


class AttackResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attack: str
    plugin: str | None = None
    summary: str = ""
    status: Literal["completed", "skipped", "failed"]
    reason: str | None = None
    gradient_mode: Literal["autograd", "zeroth_order"] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    duration_s: float = 0.0
    metrics: dict[str, float] = Field(default_factory=dict)
    scores: Scores | None = None
    findings: list[Finding] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class PluginInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    distribution: str | None = None
    version: str | None = None
    attacks: list[str] = Field(default_factory=list)
    requires: dict[str, list[str]] = Field(default_factory=dict)


class ModelInfo(BaseModel):
    """Provenance of the audited model, recorded before anything is executed."""

    model_config = ConfigDict(extra="forbid")
    source: str
    format: str
    path: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    opset: int | None = None
    producer: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    parameter_count: int | None = None
    num_classes: int | None = None
    input_shape: list[int] | None = None
    layout: str | None = None
    input_range: list[float] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    outputs_probabilities: bool | None = None
    capabilities: list[str] = Field(default_factory=list)
    parity_max_abs_diff: float | None = None
    parity_tolerance: float | None = None
    gradients_unavailable_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)


class DataInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members_source: str
    members_sha256: str
    members_count: int
    members_per_class: list[int]
    reference_source: str | None = None
    reference_sha256: str | None = None
    reference_count: int = 0
    reference_per_class: list[int] = Field(default_factory=list)
    class_names: list[str] = Field(default_factory=list)
    image_shape: list[int] = Field(default_factory=list)


class AuditReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = SCHEMA_VERSION
    tool_version: str
    created: datetime
    seed: int
    fail_on: Severity | None = None
    member_images: bool = True
    model: ModelInfo
    data: DataInfo | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    plugins: list[PluginInfo] = Field(default_factory=list)
    results: list[AttackResult] = Field(default_factory=list)
    duration_s: float = 0.0
    exit_code: int = 0
    verdict: str = ""

    @property
    def findings(self) -> list[Finding]:
        """All findings, most severe first."""
        found = [f for r in self.results for f in r.findings]
        return sorted(found, key=lambda f: -f.severity.rank)

    def highest_severity(self) -> Severity | None:
        found = self.findings
        return found[0].severity if found else None
