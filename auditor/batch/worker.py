"""What runs in a batch worker: one model's whole audit, written to its report folder, returning a small summary.

Workers read the model and the data from paths and write ``report.json`` / ``report.html`` themselves,
so private training images never travel through Ray's object store; the driver gets back a
:class:`CellSummary` (status, exit code, verdict, a reason). The folder appears atomically: the report is
written into a hidden temporary folder beside it, which is then renamed into place.

Fault injection (tests and drills only): when the driver's environment has
``AUDITOR_BATCH_INJECT_FAULT=NAME`` (a model's file or label name), the worker auditing that model kills
its own process with SIGKILL half-way through writing its report, as a crash or an OOM kill would, on
every attempt. ``NAME:once`` kills only the first attempt (a marker file ``OUT/.fault-FOLDER`` records it),
so Ray's retry then completes the audit.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.core.version import __version__

log = logging.getLogger(__name__)

FAULT_ENV = "AUDITOR_BATCH_INJECT_FAULT"
PARTIAL_PREFIX = ".partial-"


class AuditCell(BaseModel):
    """Everything a worker needs, by value and small: configuration and paths, never images."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    config: dict[str, Any]
    out_dir: str                       # absolute path of the batch folder, shared by driver and workers
    folder: str                        # report folder name inside out_dir
    plugins: list[dict[str, Any]]      # the driver's plugin fingerprint (part of the key)
    disabled_plugins: list[str] = Field(default_factory=list)
    threads: int = 1
    fault: Literal["always", "once"] | None = None


class CellSummary(BaseModel):
    """What a task returns: a few fields, no images, no scores beyond the verdict."""

    model_config = ConfigDict(extra="forbid")
    name: str
    folder: str
    status: Literal["completed", "failed", "up to date"]
    exit_code: int
    verdict: str = ""
    reason: str | None = None
    duration_s: float = 0.0
    host: str = ""
    pid: int = 0


def plugin_fingerprint(pm) -> list[dict[str, Any]]:
    """The auditor's version and every plugin's distribution and version: a new attack version changes the key."""
    from auditor.engine.plugins import plugin_infos

    return [{"name": "auditor", "version": __version__}] + [
        {"name": i.name, "distribution": i.distribution, "version": i.version, "attacks": sorted(i.attacks)} for i in plugin_infos(pm)]


def _kill_self() -> None:
    """SIGKILL this process (fault injection); the caller never returns."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # pragma: no cover - the signal is delivered first


def fault_marker(out_dir: Path, folder: str) -> Path:
    return out_dir / f".fault-{folder}"


def _should_fault(cell: AuditCell) -> bool:
    if cell.fault == "once":
        marker = fault_marker(Path(cell.out_dir), cell.folder)
        if marker.exists():
            return False
        marker.write_text(f"killed pid {os.getpid()}\n", encoding="utf-8")
    return cell.fault is not None


def publish(report, out_dir: Path, folder: str, *, fault: bool = False) -> Path:
    """Write the report into a temporary folder beside ``out_dir / folder``, then rename it into place.

    An existing folder (``--force``) is moved aside first and removed after the rename, so the folder
    holds either the old complete report or the new one, never a half-written one.
    """
    from auditor.report.html import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / folder
    tmp = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{folder}-", dir=out_dir))
    try:
        if fault:  # a report half-written when the process dies, as a crash or an OOM kill leaves it
            (tmp / "report.json").write_text('{"schema_version": 1, "results": [', encoding="utf-8")
            _kill_self()
        write_report(report, tmp)
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{folder}-old-", dir=out_dir))
            os.replace(final, old / folder)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def is_complete(folder: Path) -> bool:
    """A report folder written by :func:`publish`: both files present and report.json readable."""
    from auditor.core.results import AuditReport

    try:
        AuditReport.model_validate_json((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (folder / "report.html").is_file()


def audit_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """Audit one model (runs in a Ray worker, or in-process for ``--workers 1``); returns a CellSummary as a dict."""
    import socket

    import torch

    from auditor.core.errors import AuditorError
    from auditor.engine.config import build_config
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit

    cell = AuditCell.model_validate(payload)
    start = time.monotonic()
    base = {"name": cell.name, "folder": cell.folder, "host": socket.gethostname(), "pid": os.getpid()}
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cell.threads))
    try:
        config = build_config(cell.config)
        pm = get_plugin_manager(blocked=cell.disabled_plugins)
        mine = plugin_fingerprint(pm)
        if mine != cell.plugins:
            raise AuditorError(f"this worker's plugins differ from the driver's (driver {cell.plugins}, worker {mine}); "
                               "install the same versions on every node")
        report = run_audit(config, pm)
        publish(report, Path(cell.out_dir), cell.folder, fault=_should_fault(cell))
        summary = CellSummary(**base, status="completed", exit_code=report.exit_code, verdict=report.verdict,
                              duration_s=round(time.monotonic() - start, 3))
    except AuditorError as exc:
        summary = CellSummary(**base, status="failed", exit_code=exc.exit_code, reason=str(exc), verdict="not audited",
                              duration_s=round(time.monotonic() - start, 3))
    except Exception as exc:
        log.debug("audit of %s raised", cell.name, exc_info=True)
        summary = CellSummary(**base, status="failed", exit_code=2, reason=f"{type(exc).__name__}: {exc}", verdict="not audited",
                              duration_s=round(time.monotonic() - start, 3))
    finally:
        torch.set_num_threads(previous_threads)
    return summary.model_dump()
