"""The ``audit`` command.

Exit codes (documented in the README):
  0  the audit passed the gate
  1  a finding reached ``--fail-on``
  2  usage, configuration, model or data error (nothing was run or the report could not be written)
  3  an attack failed, or no selected attack completed
When several apply: 2 before 1 before 3.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from auditor.errors import AuditorError, UsageError

log = logging.getLogger("auditor")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="model source (model.onnx, model.pt2, timm:ARCH, factory:mod:fn, pickle:PATH) or an audit.toml")
    p.add_argument("--config", type=Path, help="audit.toml with [model], [data], [attacks.NAME], ...")
    p.add_argument("--plugins", help="comma-separated attacks to run (default: all installed)")
    p.add_argument("--set", action="append", default=[], metavar="NAME.key=value", help="override an attack option (repeatable)")
    p.add_argument("--members", help="member (training) data: IDX folder[:train|test], .npz, image folder, or digits[:train]")
    p.add_argument("--reference", help="non-member data from the same distribution (calibrates the scores)")
    p.add_argument("--members-limit", type=int, help="class-balanced subset of the members (the exact training subset)")
    p.add_argument("--reference-limit", type=int)
    p.add_argument("--subset-seed", type=int, help="seed of the class-balanced subset selection")
    p.add_argument("--class-names", help="comma-separated class names")
    p.add_argument("--weights", type=Path, help="state dict or .safetensors for timm:/factory: sources")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-shape", type=_ints, help="C,H,W")
    p.add_argument("--layout", choices=["auto", "NCHW", "NHWC"])
    p.add_argument("--input-range", type=_floats, help="lo,hi pixel range the model expects (e.g. 0,255)")
    p.add_argument("--mean", type=_floats)
    p.add_argument("--std", type=_floats)
    p.add_argument("--outputs", choices=["auto", "logits", "probabilities", "log-probabilities"])
    p.add_argument("--output-name", help="the graph output that holds the class scores, when an ONNX file has several")
    p.add_argument("--preflight-floor", type=float, help="lowest member accuracy for a meaningful audit (default max(0.3, chance+0.2))")
    p.add_argument("--accept-low-accuracy", action="store_true",
                   help="run the attacks although the model does not classify the members (the report says the audit is not meaningful)")
    p.add_argument("--accept-class-permutation", action="store_true",
                   help="use the class order the preflight found when it fits the data much better")
    p.add_argument("--trust-model", action="store_true", help="allow full-module pickles (runs code from the file)")
    p.add_argument("--out", type=Path, help="report folder (default audit-report)")
    p.add_argument("--fail-on", choices=["info", "low", "medium", "high", "never"], help="gate level (default high)")
    p.add_argument("--no-member-images", action="store_true", help="keep training images out of the report")
    p.add_argument("--junit", type=Path, help="also write JUnit XML")
    p.add_argument("--sarif", type=Path, help="also write SARIF")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--smoke", action="store_true", help="minimal iterations (checks the pipeline, not the model)")
    p.add_argument("--time-budget", type=float, help="seconds for the whole audit")
    p.add_argument("--attack-budget", type=float, help="default seconds per attack")
    p.add_argument("--disable-plugin", action="append", default=[], help="block a plugin by name (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="validate model, data and configuration; run nothing")


def _config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from auditor.config import load_toml, parse_set

    raw: dict[str, Any] = {}
    toml_path = args.config
    if args.target.endswith(".toml"):
        toml_path = Path(args.target)
    if toml_path is not None:
        raw = load_toml(toml_path)
    model = dict(raw.get("model", {}))
    if not args.target.endswith(".toml"):
        model["source"] = args.target
    for key, value in (("weights", args.weights), ("num_classes", args.num_classes), ("input_shape", args.input_shape),
                       ("layout", args.layout), ("input_range", args.input_range), ("mean", args.mean), ("std", args.std),
                       ("outputs", args.outputs), ("output_name", args.output_name)):
        if value is not None:
            model[key] = value
    if args.trust_model:
        model["trust_model"] = True
    raw["model"] = model
    data = dict(raw.get("data", {}) or {})
    for key, value in (("members", args.members), ("reference", args.reference), ("members_limit", args.members_limit),
                       ("reference_limit", args.reference_limit), ("subset_seed", args.subset_seed)):
        if value is not None:
            data[key] = value
    if args.class_names:
        data["class_names"] = args.class_names.split(",")
    if data:
        raw["data"] = data
    run = dict(raw.get("run", {}))
    if args.plugins:
        run["plugins"] = [p.strip() for p in args.plugins.split(",") if p.strip()]
    for key, value in (("seed", args.seed), ("device", args.device), ("time_budget_s", args.time_budget),
                       ("attack_budget_s", args.attack_budget)):
        if value is not None:
            run[key] = value
    if args.smoke:
        run["smoke"] = True
    raw["run"] = run
    report = dict(raw.get("report", {}))
    if args.out is not None:
        report["out"] = str(args.out)
    if args.fail_on is not None:
        report["fail_on"] = None if args.fail_on == "never" else args.fail_on
    if args.no_member_images:
        report["member_images"] = False
    for key in ("junit", "sarif"):
        if getattr(args, key) is not None:
            report[key] = str(getattr(args, key))
    raw["report"] = report
    preflight = dict(raw.get("preflight", {}))
    for key, value in (("floor", args.preflight_floor), ("accept_low_accuracy", args.accept_low_accuracy or None),
                       ("accept_class_permutation", args.accept_class_permutation or None)):
        if value is not None:
            preflight[key] = value
    if preflight:
        raw["preflight"] = preflight
    attacks = dict(raw.get("attacks", {}))
    for name, values in parse_set(args.set).items():
        attacks[name] = {**attacks.get(name, {}), **values}
    raw["attacks"] = attacks
    return raw


def cmd_run(args: argparse.Namespace) -> int:
    from auditor.config import build_config
    from auditor.plugins import get_plugin_manager
    from auditor.report import write_report
    from auditor.runner import run_audit

    config = build_config(_config_from_args(args))
    pm = get_plugin_manager(blocked=args.disable_plugin)
    report = run_audit(config, pm, dry_run=args.dry_run)
    if args.dry_run:
        log.info("%s", report.verdict)
        sys.stdout.write((_preflight_lines(report.preflight) if report.preflight else "") + f"{report.verdict}\n")
        return 0
    if getattr(args, "argv", None) is not None:
        report.command = shlex.join(["audit", *args.argv])  # as typed: re-runs unchanged from the same folder
    html = write_report(report, config.report.out)
    from auditor.ci_outputs import write_junit, write_sarif

    if config.report.junit:
        write_junit(report, config.report.junit)
    if config.report.sarif:
        write_sarif(report, config.report.sarif)
    sys.stdout.write(_summary(report) + f"\nreport: {html}\n" + (f"reproduce: {report.command}\n" if report.command else ""))
    return report.exit_code


def _preflight_lines(preflight) -> str:  # noqa: ANN001 - results.Preflight
    lines = [f"preflight: {preflight.sentence()}", f"  {'candidate':<44} {'member accuracy':>15} {'cross-entropy':>13}"]
    lines += [f"  {c.name:<44} {c.member_accuracy:>15.1%} {c.member_cross_entropy:>13.3f}" for c in preflight.candidates]
    lines += [f"  note: {n}" for n in preflight.notes]
    lines += [f"chosen: {preflight.chosen}", f"member accuracy: {preflight.member_accuracy:.4f}"]
    return "\n".join(lines) + "\n"


def _summary(report) -> str:  # noqa: ANN001
    lines = [f"preflight: {report.preflight.sentence()}"] if report.preflight else []
    lines += [f"{r.attack:<12} {r.status:<10} {r.duration_s:7.1f}s  " + (
        f"matched SSIM {r.scores.matched_ssim_mean:.3f}  gap {r.scores.gap if r.scores.gap is not None else float('nan'):+.3f}  "
        f"likely copies {r.scores.likely_copy_share if r.scores.likely_copy_share is not None else float('nan'):.1%}"
        if r.scores and r.scores.matched_ssim_mean is not None else (r.reason or "").splitlines()[0] if r.reason else "")
        for r in report.results]
    for f in report.findings:
        lines.append(f"[{f.severity.value.upper()}] {f.attack}: {f.title}")
    lines.append(f"verdict: {report.verdict} (exit {report.exit_code})")
    return "\n".join(lines)


def cmd_plugins(args: argparse.Namespace) -> int:
    from auditor.plugins import collect_attacks, get_plugin_manager, plugin_infos

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
    from auditor.plugins import collect_attacks, get_plugin_manager

    attacks = collect_attacks(get_plugin_manager())
    if args.name not in attacks:
        raise UsageError(f"unknown attack {args.name!r}; installed: {sorted(attacks)}")
    sys.stdout.write(json.dumps(attacks[args.name].Config.model_json_schema(), indent=2) + "\n")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from auditor.report import load_report, write_report

    report = load_report(args.report)
    out = args.out or args.report.parent
    write_report(report, out)
    sys.stdout.write(f"report: {out / 'report.html'}\n")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from auditor.compare import load_inputs, write_comparison

    reports, paths = load_inputs(args.reports)
    html = write_comparison(reports, args.out, paths=paths)
    sys.stdout.write(f"comparison: {html}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from auditor.demo import run_demo

    return run_demo(out=args.out, quick=args.quick, seed=args.seed)


def cmd_study(args: argparse.Namespace) -> int:
    from auditor.plugins import collect_studies, get_plugin_manager

    studies = collect_studies(get_plugin_manager())
    if args.name not in studies:
        raise UsageError(f"unknown study {args.name!r}; installed: {sorted(studies) or 'none'}")
    return int(studies[args.name].main(args.args))


def cmd_lpips(args: argparse.Namespace) -> int:
    from auditor.lpips_cache import install_backbone

    path = install_backbone(args.file, net=args.net)
    sys.stdout.write(f"installed LPIPS {args.net} backbone at {path}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit", description="Audit an image classifier for training-data leakage.",
                                     epilog="Exit codes: 0 pass, 1 findings at or above --fail-on, 2 usage/config/model/data error, "
                                            "3 an attack failed or none completed (precedence 2 > 1 > 3).")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="audit a model")
    _add_run_arguments(run)
    run.set_defaults(func=cmd_run)
    plugins = sub.add_parser("plugins", help="list installed plugins, their attacks and what they need")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)
    schema = sub.add_parser("schema", help="print an attack's option schema (JSON Schema)")
    schema.add_argument("name")
    schema.set_defaults(func=cmd_schema)
    render = sub.add_parser("render", help="rebuild report.html from report.json")
    render.add_argument("report", type=Path)
    render.add_argument("--out", type=Path)
    render.set_defaults(func=cmd_render)
    compare = sub.add_parser("compare", help="several audits side by side, models ranked by leakage (compare.html)")
    compare.add_argument("reports", type=Path, nargs="+", help="report.json files (or folders holding one)")
    compare.add_argument("--out", type=Path, default=Path("audit-compare"), help="folder for compare.html and compare.json")
    compare.set_defaults(func=cmd_compare)
    demo = sub.add_parser("demo", help="train a small digits classifier, export ONNX, audit it with every builtin plugin")
    demo.add_argument("--out", type=Path, default=Path("audit-report"))
    demo.add_argument("--quick", action="store_true", help="smaller budgets (about a minute)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    from auditor.batch_cli import add_batch_parser  # audit batch: parser and handler live in auditor/batch_cli.py

    add_batch_parser(sub)
    study = sub.add_parser("study", help="run a study (trains several models, writes a comparison report)")
    study.add_argument("name", help="study name (see `audit plugins`)")
    study.add_argument("args", nargs=argparse.REMAINDER, help="the study's own arguments (NAME --help lists them)")
    study.set_defaults(func=cmd_study)
    lp = sub.add_parser("lpips", help="manage the local LPIPS weights cache")
    lp_sub = lp.add_subparsers(dest="lpips_command", required=True)
    install = lp_sub.add_parser("install", help="install a torchvision backbone state dict you bring")
    install.add_argument("file", type=Path)
    install.add_argument("--net", default="alex", choices=["alex", "squeeze", "vgg"])
    install.set_defaults(func=cmd_lpips)
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that temporary report files are removed on the way out."""


def _on_sigterm(signum, frame):  # noqa: ANN001, ARG001
    raise _Terminated()


def one_line(text: str) -> str:
    """Text from models and data on one printable line: no newlines, no terminal escape sequences."""
    text = "".join(c if c.isprintable() or c.isspace() else c.encode("unicode_escape").decode("ascii") for c in text)
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    args.argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx", "torch._dynamo", "torch.export"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose < 2 else logging.DEBUG)
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        return int(args.func(args))
    except AuditorError as exc:
        sys.stderr.write(f"audit: error: {one_line(str(exc))}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("audit: interrupted; no report was replaced\n")
        return 130
    except _Terminated:
        sys.stderr.write("audit: terminated; no report was replaced\n")
        return 143
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for users; -vv shows it
        log.debug("internal error", exc_info=True)
        sys.stderr.write(f"audit: error: {type(exc).__name__}: {one_line(str(exc))} (run with -vv for the traceback)\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
