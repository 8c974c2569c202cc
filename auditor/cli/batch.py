"""``audit batch``: audit many models, each as an independent Ray task, and rank them on one page.

    audit batch batch.toml                                   # a manifest (see auditor/batch_manifest.py)
    audit batch --models 'ckpt/*.onnx' --members train.npz --reference test.npz --workers 4
    audit batch batch.toml --ray-address auto                # join a running cluster (docs/scale.md)

Writes ``OUT/<model>-<key>/report.{json,html}`` per model, ``OUT/compare.html`` / ``compare.json`` (the
ranking of ``audit compare``), ``OUT/batch.json``, and ``--junit`` / ``--sarif`` over all models. A re-run
skips models whose complete report for the same key exists (``--force`` re-audits them). Exit code: the
most severe over the models, 2 before 1 before 3 before 0.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.core.errors import UsageError

if TYPE_CHECKING:  # the heavy imports wait for the command itself (``audit --help`` stays fast)
    from auditor.batch.engine import Outcome
    from auditor.batch.manifest import BatchItem
    from auditor.batch.outputs import BatchEntry

log = logging.getLogger(__name__)


def add_batch_parser(sub: argparse._SubParsersAction) -> None:
    from auditor.cli.args import _floats, _ints

    p = sub.add_parser("batch", help="audit many models (a manifest or a glob) as parallel Ray tasks, ranked on one page",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", nargs="?", type=Path, help="batch.toml: shared [data]/[run]/[attacks.*] and [[models]]")
    p.add_argument("--models", action="append", default=[], metavar="GLOB", help="model files to audit (repeatable)")
    p.add_argument("--members", help="member data shared by the models (see audit run)")
    p.add_argument("--reference", help="non-member data shared by the models")
    p.add_argument("--members-limit", type=int)
    p.add_argument("--reference-limit", type=int)
    p.add_argument("--input-shape", type=_ints, help="C,H,W for every model")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-range", type=_floats)
    p.add_argument("--plugins", help="comma-separated attacks (default: all installed)")
    p.add_argument("--set", action="append", default=[], metavar="NAME.key=value", help="override an attack option (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cpu", "cuda"], help="cuda: every task also asks Ray for --gpus-per-task GPUs")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--time-budget", type=float, help="seconds for each model's whole audit")
    p.add_argument("--attack-budget", type=float)
    p.add_argument("--fail-on", choices=["info", "low", "medium", "high", "never"])
    p.add_argument("--no-member-images", action="store_true")
    p.add_argument("--disable-plugin", action="append", default=[])
    p.add_argument("--out", type=Path, help="batch folder (default audit-batch)")
    p.add_argument("--workers", type=int, help="audits at a time; 1 runs them one after another in this process")
    p.add_argument("--cpus-per-task", type=float, help="CPUs each audit declares (torch threads per audit); default 1")
    p.add_argument("--gpus-per-task", type=float)
    p.add_argument("--ray-address", help="join this Ray cluster ('auto', 'HEAD:6379'); default: a local instance")
    p.add_argument("--retries", type=int, help="re-runs of an audit whose worker died (default 1)")
    p.add_argument("--force", action="store_true", help="re-audit models whose report is up to date")
    p.add_argument("--junit", type=Path, help="JUnit XML over all models")
    p.add_argument("--sarif", type=Path, help="SARIF over all models")
    p.add_argument("--title")
    p.set_defaults(func=cmd_batch)


def _raw_manifest(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    from auditor.batch.manifest import _resolve
    from auditor.engine.config import load_toml, parse_set

    raw: dict[str, Any] = load_toml(args.manifest) if args.manifest else {}
    base = args.manifest.resolve().parent if args.manifest else Path.cwd()
    cwd = Path.cwd()
    data = dict(raw.get("data") or {})
    for key, value in (("members", args.members), ("reference", args.reference)):
        if value is not None:
            data[key] = _resolve(value, cwd)
    for key, value in (("members_limit", args.members_limit), ("reference_limit", args.reference_limit)):
        if value is not None:
            data[key] = value
    if data:
        raw["data"] = data
    model = dict(raw.get("model") or {})
    for key, value in (("input_shape", args.input_shape), ("num_classes", args.num_classes), ("input_range", args.input_range)):
        if value is not None:
            model[key] = value
    raw["model"] = model
    run = dict(raw.get("run") or {})
    if args.plugins:
        run["plugins"] = [p.strip() for p in args.plugins.split(",") if p.strip()]
    for key, value in (("seed", args.seed), ("device", args.device), ("time_budget_s", args.time_budget), ("attack_budget_s", args.attack_budget)):
        if value is not None:
            run[key] = value
    if args.smoke:
        run["smoke"] = True
    run["show_progress"] = False
    raw["run"] = run
    report = dict(raw.get("report") or {})
    if args.fail_on is not None:
        report["fail_on"] = None if args.fail_on == "never" else args.fail_on
    if args.no_member_images:
        report["member_images"] = False
    raw["report"] = report
    attacks = dict(raw.get("attacks") or {})
    for name, values in parse_set(args.set).items():
        attacks[name] = {**attacks.get(name, {}), **values}
    raw["attacks"] = attacks
    raw["models"] = list(raw.get("models") or []) + [{"glob": str(cwd / g) if not Path(g).is_absolute() else g} for g in args.models]
    batch = dict(raw.get("batch") or {})
    if batch.get("out") is not None:
        batch["out"] = str(base / batch["out"])
    for key in ("out", "workers", "cpus_per_task", "gpus_per_task", "ray_address", "retries", "title", "junit", "sarif"):
        if getattr(args, key) is not None:
            batch[key] = getattr(args, key)
    raw["batch"] = batch
    return raw, base


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One batch at a time per folder: a second one would race on the same report folders."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".batch.lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise UsageError(f"another audit batch is writing into {out}; wait for it or choose another --out") from exc
        yield


class _Progress:
    """One line per finished model on stdout; an overall bar on stderr when it is a terminal."""

    def __init__(self, total: int, names: dict[str, str]) -> None:
        from tqdm import tqdm

        self.total, self.done, self.names = total, 0, names
        self.bar = tqdm(total=total, unit="model", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)

    def line(self, name: str, status: str, code: int, seconds: float, reason: str | None = None) -> None:
        from auditor.cli.args import one_line

        self.done += 1
        text = f"[{self.done}/{self.total}] {status:<10} exit {code}  {seconds:7.1f}s  {one_line(name)}"
        if reason:
            text += f"  ({one_line(reason)[:160]})"
        self.bar.write(text, file=sys.stdout)
        sys.stdout.flush()
        self.bar.update(1)

    def __call__(self, outcome: Outcome) -> None:
        value = outcome.value or {}
        if outcome.ok:
            self.line(self.names[outcome.key], value["status"], value["exit_code"], outcome.seconds, value.get("reason"))
        else:
            self.line(self.names[outcome.key], "failed", 3, outcome.seconds, outcome.error)

    def close(self) -> None:
        self.bar.close()


def _prepare(item: BatchItem, out: Path, force: bool) -> BatchEntry | None:
    """An entry for a model that needs no task (up to date, or a configuration that does not validate)."""
    from auditor.batch.outputs import BatchEntry
    from auditor.batch.worker import is_complete
    from auditor.engine.config import build_config
    from auditor.report.html import load_report

    entry = BatchEntry(name=item.name, source=item.source, key=item.key, folder=item.folder, status="failed", exit_code=2)
    try:
        build_config(item.config)
    except UsageError as exc:
        return entry.model_copy(update={"reason": str(exc), "verdict": "not audited"})
    if not force and is_complete(out / item.folder):
        report = load_report(out / item.folder / "report.json")
        return entry.model_copy(update={"status": "up to date", "exit_code": report.exit_code, "verdict": report.verdict,
                                        "report_json": f"{item.folder}/report.json", "audit_seconds": report.duration_s})
    return None


def _fault_for(spec: str | None, item: BatchItem) -> str | None:
    """``AUDITOR_BATCH_INJECT_FAULT=NAME[:once]`` (see auditor/batch_worker.py): the fault this model's worker injects."""
    if not spec:
        return None
    name, _, mode = spec.partition(":")
    return ("once" if mode == "once" else "always") if name in (item.name, Path(item.source).name) else None


def cmd_batch(args: argparse.Namespace) -> int:
    from auditor.batch.engine import Cell, run_cells
    from auditor.batch.manifest import expand, parse_manifest
    from auditor.batch.outputs import (
        BatchEntry,
        BatchSummary,
        most_severe,
        write_outputs,
    )
    from auditor.batch.worker import (
        FAULT_ENV,
        PARTIAL_PREFIX,
        AuditCell,
        audit_cell,
        fault_marker,
        plugin_fingerprint,
    )
    from auditor.engine.plugins import get_plugin_manager

    start = time.monotonic()
    raw, base = _raw_manifest(args)
    manifest = parse_manifest(raw, where=str(args.manifest) if args.manifest else "batch arguments")
    settings = manifest.batch
    plugins = plugin_fingerprint(get_plugin_manager(blocked=args.disable_plugin))
    items = expand(manifest, base, plugins)
    out = settings.out.resolve()
    fault = os.environ.get(FAULT_ENV)
    threads = max(1, int(settings.cpus_per_task))
    with _locked(out):
        entries: dict[str, BatchEntry] = {}
        cells = []
        progress = _Progress(len(items), {i.folder: i.name for i in items})
        for item in items:
            config = {**item.config, "report": {**item.config["report"], "out": item.folder}}
            ready = _prepare(item.model_copy(update={"config": config}), out, args.force)
            if ready is not None:
                entries[item.folder] = ready
                progress.line(item.name, ready.status, ready.exit_code, 0.0, ready.reason)
                continue
            cell = AuditCell(name=item.name, config=config, out_dir=str(out), folder=item.folder, plugins=plugins,
                             disabled_plugins=args.disable_plugin, threads=threads,
                             fault=_fault_for(fault, item))
            fault_marker(out, item.folder).unlink(missing_ok=True)
            gpus = settings.gpus_per_task if config["run"].get("device") == "cuda" else 0.0
            cells.append(Cell(key=item.folder, fn=audit_cell, payload=cell.model_dump(), num_cpus=settings.cpus_per_task, num_gpus=gpus))
        try:
            outcomes = run_cells(cells, settings.workers, settings.ray_address, retries=settings.retries, on_done=progress)
        finally:
            progress.close()
            for cell in cells:  # temporary folders of workers that died mid-write
                for stale in out.glob(f"{PARTIAL_PREFIX}{cell.key}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
        by_key = {i.folder: i for i in items}
        for outcome in outcomes:
            item = by_key[outcome.key]
            entry = BatchEntry(name=item.name, source=item.source, key=item.key, folder=item.folder, status="failed", exit_code=3,
                               seconds=outcome.seconds, reason=outcome.error, verdict="not audited")
            if outcome.ok:
                v = outcome.value
                entry = entry.model_copy(update={"status": v["status"], "exit_code": v["exit_code"], "verdict": v["verdict"],
                                                 "reason": v["reason"], "audit_seconds": v["duration_s"], "host": v["host"],
                                                 "report_json": f"{item.folder}/report.json" if v["status"] == "completed" else None})
            entries[item.folder] = entry
        ordered = [entries[i.folder] for i in items]
        summary = BatchSummary(exit_code=most_severe([e.exit_code for e in ordered]), entries=ordered, plugins=plugins,
                               engine={"workers": settings.workers, "cpus_per_task": settings.cpus_per_task, "ray_address": settings.ray_address,
                                       "in_process": settings.workers == 1 and settings.ray_address is None, "retries": settings.retries},
                               counts={s: sum(1 for e in ordered if e.status == s) for s in ("completed", "up to date", "failed")},
                               seconds=round(time.monotonic() - start, 3))
        path = write_outputs(summary, out, title=settings.title, junit=settings.junit, sarif=settings.sarif)
    sys.stdout.write(f"{summary.counts['completed']} audited, {summary.counts['up to date']} up to date, {summary.counts['failed']} failed "
                     f"in {summary.seconds:.1f} s; batch: {path}" + (f"; ranking: {out / 'compare.html'}" if summary.ranking else "")
                     + f"\nexit {summary.exit_code}\n")
    return summary.exit_code
