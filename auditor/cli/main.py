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
import logging
import signal
import sys
import threading
from pathlib import Path

from auditor.cli.args import add_run_arguments, one_line
from auditor.cli.commands import (
    cmd_compare,
    cmd_demo,
    cmd_lpips,
    cmd_plugins,
    cmd_render,
    cmd_run,
    cmd_schema,
    cmd_study,
)
from auditor.core.errors import AuditorError

log = logging.getLogger("auditor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit", description="Audit an image classifier for training-data leakage.",
                                     epilog="Exit codes: 0 pass, 1 findings at or above --fail-on, 2 usage/config/model/data error, "
                                            "3 an attack failed or none completed (precedence 2 > 1 > 3).")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="audit a model")
    add_run_arguments(run)
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
    from auditor.cli.batch import (
        add_batch_parser,  # audit batch: parser and handler live in auditor/batch_cli.py
    )

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


def _on_sigterm(signum, frame):
    raise _Terminated()


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
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        sys.stderr.write(f"audit: error: {type(exc).__name__}: {one_line(str(exc))} (run with -vv for the traceback)\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
