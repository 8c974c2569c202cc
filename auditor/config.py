"""What to audit: ``audit.toml`` and the ``audit run`` flags, validated by pydantic."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from auditor.data import DataConfig
from auditor.errors import UsageError
from auditor.model import ModelSpec
from auditor.preflight import PreflightSettings
from auditor.results import Severity
from auditor.scoring_config import ScoringConfig, deprecation


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    out: Path = Field(Path("audit-report"), description="Folder for report.json and report.html.")
    fail_on: Severity | None = Field(Severity.HIGH, description="Exit 1 when a finding reaches this level; None never fails on findings.")
    member_images: bool = Field(True, description="Show member (private training) images beside reconstructions; off for reports that travel.")
    junit: Path | None = None
    sarif: Path | None = None


class SeverityThresholds(BaseModel):
    """Documented thresholds that turn reconstruction scores into risk levels (``[severity]``).

    Likely copies are judged against the null (held-out real non-members scored the same way) by a
    one-sided binomial test, never as a raw share.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    copy_test_level: float = Field(0.01, gt=0.0, lt=1.0, description=(
        "One-sided binomial p-value at or below which the likely copies exceed what the null predicts: medium."))
    copy_test_level_high: float = Field(0.001, gt=0.0, lt=1.0, description="... and at or below this: high, when enough distinct members are recovered.")
    copy_members_high: int = Field(3, ge=1, description="Distinct members recovered as likely copies needed for a high finding.")
    gap_medium: float = Field(0.02, description="Null-centred gap (interval above 0) at or above which leakage is medium.")

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and {"copy_share_high", "copy_share_medium"} & set(raw):
            raw = {k: v for k, v in raw.items() if k not in ("copy_share_high", "copy_share_medium")}
            deprecation("[severity] copy_share_high and copy_share_medium are deprecated and ignored: likely copies are now "
                        "judged by a one-sided binomial test against the null (copy_test_level, copy_test_level_high, "
                        "copy_members_high)")
        return raw


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    plugins: list[str] | None = Field(None, description="Attacks to run; None runs every installed one.")
    seed: int = 0
    device: Literal["cpu", "cuda"] = "cpu"
    smoke: bool = False
    time_budget_s: float | None = Field(None, gt=0, description="Budget for the whole audit.")
    attack_budget_s: float | None = Field(None, gt=0, description="Default budget for each attack.")
    show_progress: bool = True


class AuditConfig(BaseModel):
    """The whole audit: ``[model]``, ``[data]``, ``[run]``, ``[report]``, ``[preflight]``, ``[scoring]``, ``[severity]``, ``[attacks.NAME]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: ModelSpec
    data: DataConfig | None = None
    run: RunConfig = RunConfig()
    report: ReportConfig = ReportConfig()
    preflight: PreflightSettings = PreflightSettings()
    scoring: ScoringConfig = ScoringConfig()
    severity: SeverityThresholds = SeverityThresholds()
    attacks: dict[str, dict[str, Any]] = Field(default_factory=dict)


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"{prefix}{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise UsageError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc


def parse_set(items: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME.key=value`` overrides; values are parsed as JSON where possible, else kept as text."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise UsageError(f"--set expects NAME.key=value, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(name, {})[key] = value
    return out


def build_config(raw: dict[str, Any]) -> AuditConfig:
    try:
        return AuditConfig.model_validate(raw)
    except ValidationError as exc:
        raise UsageError("invalid configuration: " + format_validation_error(exc)) from exc
