"""Result data model: everything an audit writes is one of these pydantic models.

``AuditReport`` is both the ``report.json`` artifact (the source of truth) and the
view-model of the HTML template. Tensors never cross this boundary.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.metrics import Metric

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
    likely_copies: int = 0
    calibration_count: int = 0                 # calibration non-members behind the threshold (0 when pooled)
    threshold_pooled: bool = False             # the threshold pools all classes' calibration images
    null_count: int = 0                        # held-out non-members scored as if they were reconstructions
    null_copy_rate: float | None = None        # their likely-copy rate


class Scores(BaseModel):
    """What the core's scoring found for one attack's reconstructions.

    Reports written before the calibrated copy rule lack the newer fields; they read with the
    defaults (``gap_kind="raw"``: their ``gap`` is the uncentred one).
    """

    model_config = ConfigDict(extra="forbid")
    calibrated: bool
    calibration_note: str = ""
    percentile: float | None = None            # old rule (99th percentile); None under the conformal rule
    comparison: Literal["ssim", "affine"] = "ssim"
    alpha: float | None = None                 # effective false-positive level of the copy threshold
    alpha_requested: float | None = None
    copy_rule_calibrated: bool = False         # True when the threshold holds at the requested alpha
    pooled_classes: list[int] = Field(default_factory=list)
    likely_copies: int = 0
    distinct_members_recovered: int | None = None
    null_count: int = 0
    null_likely_copies: int = 0
    null_copy_rate: float | None = None        # held-out real non-members scored as reconstructions
    copy_null_rate: float | None = None        # rate the binomial test assumes: max(alpha, null_copy_rate)
    copy_expected_by_null: float | None = None
    copy_p_value: float | None = None          # one-sided binomial: this many likely copies or more under the null
    copy_tpr_at_1pct_null_fpr: float | None = None    # share of reconstructions above the null's 1% threshold
    copy_tpr_at_0_1pct_null_fpr: float | None = None  # ... 0.1% (None: the null is too small to support it)
    roc_null_count: int = 0
    gap_kind: Literal["raw", "null_centred"] = "raw"
    raw_gap: float | None = None               # reconstructions' equal-pool gap, before centring
    null_gap: float | None = None              # the gap held-out non-members reach through the same pipeline
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


ReconstructionScores = Scores  # the name plugins and docs use


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
    declared_metrics: list[Metric] = Field(default_factory=list)  # the attack's declarations of its metrics
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
    outputs_kind: str | None = None             # logits, probabilities or log-probabilities (as the file gives them)
    flatten: str | None = None                  # CHW or HWC for graphs that take flat vectors
    graph_edits: list[str] = Field(default_factory=list)  # what the loader changed to make the file auditable
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


class PreprocessCandidate(BaseModel):
    """One way of feeding the data to the model, as the preflight tried it."""

    model_config = ConfigDict(extra="forbid")
    name: str
    input_range: list[float]
    mean: list[float] | None = None
    std: list[float] | None = None
    layout: str = "NCHW"
    flatten: str | None = None
    adaptation: str | None = None               # how the data's images were fitted to the model's input
    member_accuracy: float
    member_cross_entropy: float


class Preflight(BaseModel):
    """Can the audit mean anything? Accuracy of the model on the auditor's data, before any attack."""

    model_config = ConfigDict(extra="forbid")
    chosen: str
    chosen_by: Literal["user", "preflight"]
    member_accuracy: float
    member_cross_entropy: float
    member_sample: int
    reference_accuracy: float | None = None
    reference_cross_entropy: float | None = None
    reference_sample: int = 0
    accuracy_gap: float | None = None           # members minus reference: a first leakage signal
    floor: float
    passed: bool
    overridden: bool = False
    candidates: list[PreprocessCandidate] = Field(default_factory=list)
    class_permutation: list[int] | None = None  # model class for each data class, when a permutation fits much better
    permuted_accuracy: float | None = None
    permutation_applied: bool = False
    forward_passes: int = 0
    duration_s: float = 0.0
    notes: list[str] = Field(default_factory=list)

    def sentence(self) -> str:
        ref = (f", {self.reference_accuracy:.1%} on non-members (gap {self.accuracy_gap:+.1%})"
               if self.reference_accuracy is not None and self.accuracy_gap is not None else "")
        verb = "classifies" if self.passed else "does not classify"
        return (f"The model {verb} the data: {self.member_accuracy:.1%} top-1 accuracy on members{ref}, "
                f"with {self.chosen} preprocessing ({'given' if self.chosen_by == 'user' else 'chosen by the preflight'}).")


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
    preflight: Preflight | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    command: str | None = None                  # the `audit run ...` command line that reproduces this audit, as typed
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
