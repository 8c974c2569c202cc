"""What to audit: ``audit.toml`` and the ``audit run`` flags, validated by pydantic."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.core.errors import UsageError
from auditor.core.results import Severity
from auditor.core.severity import SeverityThresholds
from auditor.data.sets import DataConfig
from auditor.models.model import ModelSpec
from auditor.models.preflight import PreflightSettings
from auditor.scoring.config import ScoringConfig


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    out: Path = Field(Path("audit-report"), description="Folder for report.json and report.html.")
    fail_on: Severity | None = Field(Severity.HIGH, description="Exit 1 when a finding reaches this level; None never fails on findings.")
    member_images: bool = Field(True, description="Show member (private training) images beside reconstructions; off for reports that travel.")
    junit: Path | None = None
    sarif: Path | None = None


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
