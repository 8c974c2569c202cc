"""The ``audit`` command line: argument parsing and the subcommands' handlers (the outermost layer)."""
from __future__ import annotations

from auditor.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
