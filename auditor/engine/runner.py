"""Run an audit: load, validate, dispatch attacks, score, assess, and decide the exit code."""
from __future__ import annotations

import contextlib
import inspect
import logging
import platform
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import version

import pluggy
import torch
from pydantic import ValidationError

from auditor.core.attack import Attack, AttackConfig, AttackOutput, RunContext
from auditor.core.capabilities import Capability
from auditor.core.errors import AttackTimeout, CapabilityError, UsageError
from auditor.core.results import (
    AttackResult,
    AuditReport,
    DataInfo,
    Finding,
    Severity,
)
from auditor.core.version import __version__
from auditor.data.sets import AuditData
from auditor.engine.audit_setup import preflight_result, prepare
from auditor.engine.config import AuditConfig, format_validation_error
from auditor.engine.context import AuditRun
from auditor.models.model import Classifier
from auditor.models.zeroth_order import ZerothOrderClassifier
from auditor.report.score_figures import score_figures
from auditor.scoring.reconstructions import score_reconstructions

log = logging.getLogger(__name__)

EXIT_PASS, EXIT_FINDINGS, EXIT_ERROR, EXIT_PLUGIN_FAILED = 0, 1, 2, 3


@contextlib.contextmanager
def hard_deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`AttackTimeout` in the main thread after ``seconds`` (SIGALRM), even inside long Python loops."""
    if seconds is None or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _expire(signum: int, frame: object) -> None:
        raise AttackTimeout(f"time budget of {seconds:.0f} s exhausted")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def select_attacks(available: dict[str, type[Attack]], wanted: list[str] | None) -> list[type[Attack]]:
    if wanted is None:
        return list(available.values())
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise UsageError(f"unknown plugin(s) {unknown}; installed: {sorted(available) or 'none'}")
    return [available[w] for w in dict.fromkeys(wanted)]


def validate_attack_configs(config: AuditConfig, selected: list[type[Attack]],
                            available: dict[str, type[Attack]]) -> dict[str, AttackConfig]:
    unknown = sorted(set(config.attacks) - set(available))
    if unknown:
        raise UsageError(f"[attacks] names unknown attack(s) {unknown}; installed: {sorted(available)}")
    configs = {}
    for cls in selected:
        table = dict(config.attacks.get(cls.name, {}))
        if config.run.attack_budget_s is not None and "time_budget_s" in cls.Config.model_fields:
            table.setdefault("time_budget_s", config.run.attack_budget_s)
        try:
            configs[cls.name] = cls.Config.model_validate(table)
        except ValidationError as exc:
            raise UsageError(format_validation_error(exc, prefix=f"attacks.{cls.name}.")) from exc
    return configs


def data_info(data: AuditData) -> DataInfo:
    ref = data.reference
    return DataInfo(members_source=data.members.source, members_sha256=data.members.sha256(), members_count=len(data.members),
                    members_per_class=data.members.counts(data.num_classes), reference_source=ref.source if ref else None,
                    reference_sha256=ref.sha256() if ref else None, reference_count=len(ref) if ref else 0,
                    reference_per_class=ref.counts(data.num_classes) if ref else [], class_names=list(data.class_names),
                    image_shape=list(data.image_shape))


def _attack_deadline(attack_config: AttackConfig, run: AuditRun) -> float | None:
    budget = getattr(attack_config, "time_budget_s", None)
    limits = [x for x in (budget and time.monotonic() + budget, run.deadline) if x]
    return min(limits) if limits else None


def _target(cls: type[Attack], model: Classifier, result: AttackResult) -> tuple[Classifier | None, str | None]:
    """The model the attack runs on (a zeroth-order wrapper when it may estimate gradients), or None with the reason set."""
    missing = set(cls.requires) - set(model.capabilities)
    mode = "autograd" if Capability.GRADIENTS in cls.requires else None
    if missing == {Capability.GRADIENTS} and cls.zeroth_order:
        result.notes.append("gradients estimated from queries (zeroth-order, antithetic Gaussian differences): slower and noisier; "
                            f"reason: {model.info.gradients_unavailable_reason or 'query-only model'}")
        return ZerothOrderClassifier(model), "zeroth_order"
    if missing:
        reason = f"needs {sorted(c.value for c in missing)}; {model.info.source} provides {sorted(c.value for c in model.capabilities)}"
        if model.info.gradients_unavailable_reason:
            reason += f": {model.info.gradients_unavailable_reason}"
        result.reason = reason
        return None, None
    return model, mode


def run_attack(cls: type[Attack], attack_config: AttackConfig, model: Classifier, data: AuditData | None,
               run: AuditRun) -> tuple[AttackResult, AttackOutput | None]:
    """Run one attack, score and assess its output; a plugin's failure is recorded in the result, never raised."""
    result = AttackResult(attack=cls.name, plugin=run.registry.owners.get(cls.name), summary=cls.summary, status="skipped",
                          config=attack_config.model_dump(mode="json"), declared_metrics=list(cls.metrics))
    target, mode = _target(cls, model, result)
    if target is None:
        return result, None
    if data is None:
        result.reason = "no data given (--members); attacks and scoring need the auditor's data"
        return result, None
    deadline = _attack_deadline(attack_config, run)
    ctx = RunContext(device=torch.device(run.settings.device), seed=run.seed, smoke=run.settings.smoke, gradient_mode=mode,
                     deadline=deadline, show_progress=run.settings.show_progress, logger=logging.getLogger(f"auditor.attack.{cls.name}"))
    result.gradient_mode = mode
    start = time.monotonic()
    output = None
    torch.manual_seed(run.seed)
    try:
        with hard_deadline(None if deadline is None else deadline - time.monotonic() + 5.0):
            attack = cls(attack_config)
            output = attack.run(target, data, ctx)
        result.status = "completed"
    except CapabilityError as exc:
        result.status, result.reason = "skipped", str(exc)
    except AttackTimeout as exc:
        result.status, result.reason = "failed", f"stopped: {exc}"
    except (MemoryError, torch.OutOfMemoryError) as exc:
        result.status, result.reason = "failed", f"out of memory: {exc}"
    except (Exception, SystemExit) as exc:  # a plugin that raises (or calls sys.exit) is recorded, the audit goes on
        log.debug("attack %s raised", cls.name, exc_info=True)
        result.status = "failed"
        result.reason = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)[-3:])
    result.duration_s = round(time.monotonic() - start, 3)
    if output is None or result.status != "completed":
        return result, None
    try:
        _collect_output(attack, output, result, target, data, run)
    except Exception as exc:  # output the core cannot score (wrong shapes, NaN, ...) is the plugin's failure
        log.debug("output of attack %s could not be scored", cls.name, exc_info=True)
        failed = result.model_copy(update={
            "status": "failed", "metrics": {}, "scores": None, "findings": [], "figures": [], "tables": [],
            "reason": f"its output could not be scored: {type(exc).__name__}: {str(exc)[:500]}"})
        return failed, None
    return result, output


def assess(attack: Attack, result: AttackResult, run: AuditRun) -> list:
    """``attack.assess(result, run)``, or ``attack.assess(result)`` for overrides written before the run was passed."""
    try:
        params = inspect.signature(attack.assess).parameters
    except (TypeError, ValueError):  # a builtin or C callable: assume the current form
        return attack.assess(result, run)
    takes_run = "run" in params or len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params.values())
    return attack.assess(result, run) if takes_run else attack.assess(result)


def _collect_output(attack: Attack, output: AttackOutput, result: AttackResult, target: Classifier, data: AuditData,
                    run: AuditRun) -> None:
    result.metrics.update(output.metrics)
    result.tables.extend(output.tables)
    result.figures.extend(output.figures)
    result.notes.extend(output.notes)
    if isinstance(target, ZerothOrderClassifier):
        result.metrics["zeroth_order_queries"] = float(target.queries)
    if output.reconstructions is not None and output.score:
        recon = output.reconstructions.detach().float().cpu()
        labels = output.labels if output.labels is not None else torch.zeros(len(recon), dtype=torch.long)
        result.scores = score_reconstructions(recon, labels.cpu(), data, config=run.scoring, lpips=run.lpips, seed=run.seed,
                                              cache=run.scoring_cache)
        result.figures[:0] = score_figures(attack.name, output.reconstructions, data.members.images, result,
                                           run.report_settings.member_images)
    result.findings = list(output.findings) + assess(attack, result, run)
    result.model_dump_json()  # metrics, tables and findings must be writable to report.json


def exit_code_for(report: AuditReport, fail_on: Severity | None) -> int:
    """2 (error) before 1 (findings at or above the gate) before 3 (a plugin failed or nothing completed)."""
    statuses = [r.status for r in report.results]
    if fail_on is not None and any(f.severity.rank >= fail_on.rank for f in report.findings):
        return EXIT_FINDINGS
    if "failed" in statuses or "completed" not in statuses:
        return EXIT_PLUGIN_FAILED
    return EXIT_PASS


def run_audit(config: AuditConfig, pm: pluggy.PluginManager, *, dry_run: bool = False, model: Classifier | None = None,
              data: AuditData | None = None) -> AuditReport:
    """Run every selected attack and return the report (not yet written).

    ``model`` and ``data`` may be given directly (studies, the Python API); otherwise they are loaded
    from ``config.model`` and ``config.data``.
    """
    run = AuditRun.start(config, pm)
    torch.manual_seed(config.run.seed)
    available = run.registry.attacks
    selected = select_attacks(available, config.run.plugins)
    attack_configs = validate_attack_configs(config, selected, available)
    if config.run.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but torch sees no CUDA device here")
    prepared = prepare(config, pm, model=model, data=data)
    model, data, behaviour = prepared.model, prepared.data, prepared.behaviour
    report = AuditReport(tool_version=__version__, created=datetime.now(UTC), seed=config.run.seed,
                         fail_on=config.report.fail_on, member_images=config.report.member_images,
                         model=model.info.model_copy(update={"warnings": model.info.warnings + behaviour}),
                         data=data_info(data) if data else None, preflight=prepared.preflight, config=config.model_dump(mode="json"),
                         plugins=run.registry.plugins, environment=environment())
    if dry_run:
        report.verdict = "dry run: model, data and configuration are valid; nothing was run"
        return report
    overridden = preflight_result(prepared.preflight) if prepared.preflight else None
    if overridden is not None:
        report.results.append(overridden)
    if behaviour:
        finding = Finding(attack="core", title="The model misbehaves on real inputs", severity=Severity.HIGH,
                          detail="; ".join(behaviour) + ". Scores from such a model are not trustworthy; attacks were not run.")
        report.results.append(AttackResult(attack="model-check", status="failed", reason=finding.detail, findings=[finding]))
    else:
        for cls in selected:
            log.info("running %s", cls.name)
            result, _ = run_attack(cls, attack_configs[cls.name], model, data, run)
            log.info("%s: %s%s (%.1f s)", cls.name, result.status, f" ({result.reason.splitlines()[0]})" if result.reason else "", result.duration_s)
            report.results.append(result)
    report.duration_s = round(time.monotonic() - run.started, 3)
    report.exit_code = exit_code_for(report, config.report.fail_on)
    report.verdict = verdict(report)
    pm.hook.auditor_audit_finished(report=report)
    return report


def verdict(report: AuditReport) -> str:
    top = report.highest_severity()
    completed = [r.attack for r in report.results if r.status == "completed"]
    if not completed:
        return "no attack completed: the audit does not pass"
    if report.exit_code == EXIT_FINDINGS:
        return f"fails the gate: highest finding is {top.value if top else 'none'} (gate: {report.fail_on.value if report.fail_on else 'off'})"
    if report.exit_code == EXIT_PLUGIN_FAILED:
        return "an attack failed: the audit is incomplete"
    return f"passes the gate (highest finding: {top.value if top else 'none'}); this is not a proof of privacy"


def environment() -> dict[str, str]:
    """Versions of the host's own dependencies (plugins are listed with their versions in ``report.plugins``)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "onnx", "onnxruntime", "onnx2pytorch", "timm", "scikit-image", "lpips", "pluggy", "pydantic", "jinja2"):
        try:
            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - any failure to read a version (missing, broken metadata) is reported, not raised
            versions[name] = "not installed"
    return versions
