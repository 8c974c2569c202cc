"""The lab: demo, model zoo, dataset presets, studies and test fixtures, built on the host and never imported by it.

This module is the public API for plugins that offer studies (``auditor_register_studies``): the :class:`Study`
contract, the study report, the model zoo (``zoo.build``/``zoo.train``), the dataset presets, the cell runner
that studies share with ``audit batch``, and the comparison page.
"""
from __future__ import annotations

from auditor.batch.engine import Cell, Outcome, run_cells
from auditor.engine.config import build_config
from auditor.engine.plugins import get_plugin_manager
from auditor.engine.runner import run_audit
from auditor.lab import zoo
from auditor.lab.presets import PRESETS, DatasetPreset, preset
from auditor.lab.study import Study, StudyReport, bar_chart_png, write_study_report
from auditor.report.compare import write_comparison
from auditor.report.html import load_report, write_report

__all__ = ["PRESETS", "Cell", "DatasetPreset", "Outcome", "Study", "StudyReport", "bar_chart_png", "build_config",
           "get_plugin_manager", "load_report", "preset", "run_audit", "run_cells", "write_comparison", "write_report",
           "write_study_report", "zoo"]
