"""The handlers of the ``audit`` subcommands: each takes the parsed arguments and returns an exit code."""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

from auditor.cli.args import config_from_args
from auditor.core.errors import UsageError
from auditor.report.summary import preflight_lines, summary

log = logging.getLogger("auditor")


def cmd_run(args: argparse.Namespace) -> int:
    from auditor.engine.config import build_config
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit
    from auditor.report.html import write_report

    config = build_config(config_from_args(args))
    pm = get_plugin_manager(blocked=args.disable_plugin)
    report = run_audit(config, pm, dry_run=args.dry_run)
    if args.dry_run:
        log.info("%s", report.verdict)
        sys.stdout.write((preflight_lines(report.preflight) if report.preflight else "") + f"{report.verdict}\n")
        return 0
    if getattr(args, "argv", None) is not None:
        report.command = shlex.join(["audit", *args.argv])  # as typed: re-runs unchanged from the same folder
    html = write_report(report, config.report.out)
    from auditor.report.ci_outputs import write_junit, write_sarif

    if config.report.junit:
        write_junit(report, config.report.junit)
    if config.report.sarif:
        write_sarif(report, config.report.sarif)
    sys.stdout.write(summary(report) + f"\nreport: {html}\n" + (f"reproduce: {report.command}\n" if report.command else ""))
    return report.exit_code


def cmd_plugins(args: argparse.Namespace) -> int:
    from auditor.engine.plugins import collect_attacks, get_plugin_manager, plugin_infos

    pm = get_plugin_manager()
    attacks = collect_attacks(pm)
    infos = plugin_infos(pm)
    if args.json:
        sys.stdout.write(json.dumps([i.model_dump() for i in infos], indent=2) + "\n")
        return 0
    for info in infos:
        sys.stdout.write(f"{info.name}  ({info.distribution or '?'} {info.version or ''})\n")
        for name in info.attacks:
            cls = attacks[name]
            sys.stdout.write(f"  {name}: {cls.summary}\n    needs: {', '.join(sorted(c.value for c in cls.requires))}"
                             f"{' (or zeroth-order gradients)' if cls.zeroth_order else ''}\n")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from auditor.engine.plugins import collect_attacks, get_plugin_manager

    attacks = collect_attacks(get_plugin_manager())
    if args.name not in attacks:
        raise UsageError(f"unknown attack {args.name!r}; installed: {sorted(attacks)}")
    sys.stdout.write(json.dumps(attacks[args.name].Config.model_json_schema(), indent=2) + "\n")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from auditor.report.html import load_report, write_report

    report = load_report(args.report)
    out = args.out or args.report.parent
    write_report(report, out)
    sys.stdout.write(f"report: {out / 'report.html'}\n")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from auditor.report.compare import load_inputs, write_comparison

    reports, paths = load_inputs(args.reports)
    html = write_comparison(reports, args.out, paths=paths)
    sys.stdout.write(f"comparison: {html}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from auditor.lab.demo import run_demo

    return run_demo(out=args.out, quick=args.quick, seed=args.seed)


def cmd_study(args: argparse.Namespace) -> int:
    from auditor.engine.plugins import collect_studies, get_plugin_manager

    studies = collect_studies(get_plugin_manager())
    if args.name not in studies:
        raise UsageError(f"unknown study {args.name!r}; installed: {sorted(studies) or 'none'}")
    return int(studies[args.name].main(args.args))


def cmd_lpips(args: argparse.Namespace) -> int:
    from auditor.scoring.lpips_scorer import install_backbone

    path = install_backbone(args.file, net=args.net)
    sys.stdout.write(f"installed LPIPS {args.net} backbone at {path}\n")
    return 0
