"""Progress suits its place: a live bar on a terminal, a plain line every 10 % (never a carriage return) elsewhere."""
from __future__ import annotations

import io
import logging

from auditor.core import progress as progress_module
from auditor.core.attack import RunContext


def _collect(monkeypatch, caplog, tty: bool, n: int = 250, **kwargs) -> tuple[list, str, list[str]]:
    stream = io.StringIO()
    stream.isatty = lambda: tty  # type: ignore[method-assign]
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    with caplog.at_level(logging.INFO, logger="auditor.progress"):
        items = list(progress_module.progress(range(n), "steps", **kwargs))
    return items, stream.getvalue(), [r.getMessage() for r in caplog.records if r.name == "auditor.progress"]


def test_not_a_terminal_logs_a_line_every_ten_percent(monkeypatch, caplog):
    items, written, lines = _collect(monkeypatch, caplog, tty=False)
    assert items == list(range(250))
    assert "\r" not in written and written == ""
    assert len(lines) == 10 and lines[0] == "steps: 25/250 (10%)" and lines[-1] == "steps: 250/250 (100%)"


def test_unknown_total_off_a_terminal_stays_silent(monkeypatch, caplog):
    stream = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    with caplog.at_level(logging.INFO, logger="auditor.progress"):
        assert list(progress_module.progress(iter(range(40)), "gen")) == list(range(40))
    assert stream.getvalue() == "" and not [r for r in caplog.records if r.name == "auditor.progress"]


def test_terminal_gets_a_live_bar(monkeypatch, caplog):
    items, written, lines = _collect(monkeypatch, caplog, tty=True, n=50)
    assert items == list(range(50)) and lines == []
    assert "steps" in written and "\r" in written  # tqdm redraws in place on a terminal


def test_run_context_progress_uses_it_and_can_be_off(monkeypatch, caplog):
    ctx = RunContext(device="cpu", seed=0, show_progress=False)  # type: ignore[arg-type]
    stream = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    assert list(ctx.progress(range(30), "x")) == list(range(30)) and stream.getvalue() == ""
