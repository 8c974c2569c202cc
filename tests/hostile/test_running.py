"""Running: failing plugins are recorded and the rest finish; reports survive kills; HTML escapes; seeds repeat.

Stub attacks are installed the way real plugins are: a module plus a small ``*.dist-info`` with an
``auditor`` entry point, on ``sys.path`` (in-process) or ``PYTHONPATH`` (subprocesses).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import onnx
import pytest

STUBS = '''
import os
import sys
import time

import torch

from auditor.core.attack import Attack, AttackOutput, Capability
from auditor.core.hookspecs import hookimpl


class _Stub(Attack):
    summary = "hostile-input test stub"
    requires = frozenset({Capability.QUERY})


class Raises(_Stub):
    name = "stub_raises"

    def run(self, model, data, ctx):
        raise RuntimeError("stub plugin exploded")


class OutOfMemory(_Stub):
    name = "stub_memory"

    def run(self, model, data, ctx):
        raise MemoryError("cannot allocate 64 GiB for a batch")


class CudaOutOfMemory(_Stub):
    name = "stub_cuda_oom"

    def run(self, model, data, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class Cooperative(_Stub):
    name = "stub_slow"

    def run(self, model, data, ctx):
        while True:
            ctx.check_deadline()
            time.sleep(0.01)


class Stubborn(_Stub):
    """Ignores its deadline; the runner's SIGALRM hard deadline (budget + 5 s) stops it."""

    name = "stub_stubborn"

    def run(self, model, data, ctx):
        end = time.monotonic() + 120
        while time.monotonic() < end:
            sum(range(1000))


class Exits(_Stub):
    name = "stub_exits"

    def run(self, model, data, ctx):
        sys.exit(7)


class BadOutput(_Stub):
    name = "stub_bad_output"

    def run(self, model, data, ctx):
        return AttackOutput(reconstructions=torch.rand(4, 3, 5, 5), labels=torch.zeros(4, dtype=torch.long))


class Good(_Stub):
    name = "stub_good"

    def run(self, model, data, ctx):
        if os.environ.get("HOSTILE_MARKER"):
            open(os.environ["HOSTILE_MARKER"], "w").close()
        deadline = time.monotonic() + float(os.environ.get("HOSTILE_SLEEP", "0"))
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return AttackOutput(metrics={"ok": 1.0}, score=False)


@hookimpl
def auditor_register_attacks():
    return [Raises, OutOfMemory, CudaOutOfMemory, Cooperative, Stubborn, Exits, BadOutput, Good]
'''

SLOW_WRITE = '''
import os
import sys
import time

import auditor.report.templates

_fdopen = os.fdopen


class _SlowFile:
    """Writes half of the text, says so, then stalls: the process is killed mid-write."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)

    def write(self, text):
        self.fh.write(text[: len(text) // 2])
        self.fh.flush()
        open(os.environ["HOSTILE_WRITE_MARKER"], "w").close()
        time.sleep(120)
        self.fh.write(text[len(text) // 2:])

    def flush(self):
        self.fh.flush()

    def fileno(self):
        return self.fh.fileno()


class _Os:
    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fdopen(fd, *args, **kwargs):
        return _SlowFile(_fdopen(fd, *args, **kwargs))


auditor.report.templates.os = _Os()  # atomic_write lives in auditor/report/templates.py
from auditor.cli.main import main

raise SystemExit(main(sys.argv[1:]))
'''

XSS = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


@pytest.fixture(scope="module")
def stub_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    (site / "hostile_stub_plugins.py").write_text(STUBS)
    dist = site / "hostile_stubs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-stubs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[auditor]\nhostile_stubs = hostile_stub_plugins\n")
    (site / "slow_write.py").write_text(SLOW_WRITE)
    return site


@pytest.fixture
def stubs(stub_site, monkeypatch):
    monkeypatch.syspath_prepend(str(stub_site))
    return stub_site


# --------------------------------------------------------------------------- failing plugins

EXPECTED = {
    "stub_raises": r"^RuntimeError: stub plugin exploded",
    "stub_memory": r"^out of memory: cannot allocate 64 GiB",
    "stub_cuda_oom": r"^out of memory: CUDA out of memory",
    "stub_slow": r"^stopped: time budget exhausted",
    "stub_stubborn": r"^stopped: time budget of \d+ s exhausted",
    "stub_exits": r"^SystemExit: 7",
    "stub_bad_output": r"^its output could not be scored: ValueError",
}


def test_failing_plugins_are_recorded_and_the_rest_finish(stubs, linear_onnx, members_npz, tmp_path, cli, corpus):
    out = tmp_path / "report"
    start = time.monotonic()
    code, stdout, err = cli("run", linear_onnx, "--members", members_npz, "--plugins", ",".join([*EXPECTED, "stub_good"]),
                            "--set", "stub_slow.time_budget_s=0.3", "--set", "stub_stubborn.time_budget_s=0.3",
                            "--out", out, "--junit", tmp_path / "junit.xml")
    elapsed = time.monotonic() - start
    report = json.loads((out / "report.json").read_text())
    results = {r["attack"]: r for r in report["results"]}
    for name, pattern in EXPECTED.items():
        corpus("running", f"plugin {name}", code, f"{results[name]['status']}: {results[name]['reason'].splitlines()[0]}", report_ok=True)
    corpus("running", "plugin stub_good (after seven failures)", code, results["stub_good"]["status"], report_ok=True)
    assert code == 3, (stdout, err)
    for name, pattern in EXPECTED.items():
        assert results[name]["status"] == "failed", results[name]
        assert re.search(pattern, results[name]["reason"]), results[name]["reason"]
    assert results["stub_good"]["status"] == "completed" and results["stub_good"]["metrics"] == {"ok": 1.0}
    assert list(results) == [*EXPECTED, "stub_good"]
    assert report["verdict"] == "an attack failed: the audit is incomplete"
    assert (out / "report.html").read_text().count("stub plugin exploded") >= 1
    assert ET.parse(tmp_path / "junit.xml").getroot().get("errors") == "7"
    assert results["stub_stubborn"]["duration_s"] < 15 and elapsed < 60


# --------------------------------------------------------------------------- killed runs


def _popen(args: list, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=log.parent)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) before {path.name}: {path.with_suffix('.log').read_text()[-2000:]}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {path.name}")
        time.sleep(0.05)


def _good_report(cli, linear_onnx: Path, members_npz: Path, out: Path) -> tuple[bytes, bytes]:
    code, _, _ = cli("run", linear_onnx, "--members", members_npz, "--plugins", "stub_good", "--out", out)
    assert code == 0
    return (out / "report.json").read_bytes(), (out / "report.html").read_bytes()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in ("report.json", "report.html"))


def test_killed_runs_never_replace_a_good_report(stubs, linear_onnx, members_npz, tmp_path, cli, corpus):
    """``audit run`` subprocesses stalled half-way through writing report.json, then sent SIGINT, SIGTERM or SIGKILL."""
    good_json, good_html = _good_report(cli, linear_onnx, members_npz, tmp_path / "good")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), *sys.path]), "OMP_NUM_THREADS": "1"}
    blocked = [arg for name in ("inversion", "bnn_sat", "tldr", "shortcut") for arg in ("--disable-plugin", name)]
    runs = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        work = tmp_path / sig.name
        shutil.copytree(tmp_path / "good", work / "report")
        marker = work / "marker"
        argv = [sys.executable, str(stubs / "slow_write.py"), "-q", "run", "factory:auditor.lab.testing:TinyNet", "--input-shape", "1,16,16",
                "--members", str(members_npz), "--plugins", "stub_good", "--out", str(work / "report"), *blocked,
                "--accept-low-accuracy"]  # an untrained TinyNet: past the preflight only by the documented override
        runs.append((sig, work, marker, _popen(argv, {**env, "HOSTILE_WRITE_MARKER": str(marker)}, work / "marker.log")))
    try:
        for sig, work, marker, proc in runs:
            _wait_for(marker, proc)
            partial = [p for p in (work / "report").iterdir() if p.name.startswith(".report.json.")]
            assert len(partial) == 1 and 0 < len(partial[0].read_bytes()) < len(good_json) * 2, "not killed mid-write"
            proc.send_signal(sig)
        for *_, proc in runs:
            proc.wait(timeout=60)
    finally:
        for *_, proc in runs:
            if proc.poll() is None:
                proc.kill()
    for sig, work, marker, proc in runs:
        log = (work / "marker.log").read_text()
        leftovers = _leftovers(work / "report")
        intact = (work / "report" / "report.json").read_bytes() == good_json and (work / "report" / "report.html").read_bytes() == good_html
        expected = {signal.SIGINT: "audit: interrupted; no report was replaced", signal.SIGTERM: "audit: terminated; no report was replaced"}
        corpus("running", f"{sig.name} while report.json is half-written (subprocess)", proc.returncode,
               expected.get(sig, f"killed; old report intact; half-written temporary file left: {leftovers}"),
               traceback="Traceback" in log, report_ok=intact)
        assert intact, (sig, leftovers, log)
        assert "Traceback" not in log, log
        if sig is signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
            assert len(leftovers) == 1 and leftovers[0].startswith(".report.json.") and leftovers[0].endswith(".tmp"), leftovers
        else:
            assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], log
            assert expected[sig] in log and not leftovers, (log, leftovers)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_mid_attack_leaves_the_good_report(sig, stubs, linear_onnx, members_npz, tmp_path, cli, corpus, monkeypatch):
    """The same signals while an attack runs (delivered to this process: SIGINT -> 130, SIGTERM -> 143)."""
    import threading

    out = tmp_path / "report"
    good_json, good_html = _good_report(cli, linear_onnx, members_npz, out)
    marker = tmp_path / "marker"
    monkeypatch.setenv("HOSTILE_MARKER", str(marker))
    monkeypatch.setenv("HOSTILE_SLEEP", "60")

    def fire() -> None:
        end = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < end:
            time.sleep(0.02)
        os.kill(os.getpid(), sig)

    threading.Thread(target=fire, daemon=True).start()
    previous = signal.getsignal(signal.SIGTERM)
    code, stdout, err = cli("run", linear_onnx, "--members", members_npz, "--plugins", "stub_good", "--out", out)
    assert signal.getsignal(signal.SIGTERM) == previous
    intact = (out / "report.json").read_bytes() == good_json and (out / "report.html").read_bytes() == good_html
    corpus("running", f"{sig.name} while an attack runs", code, err.strip(), report_ok=intact)
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
    assert intact and not _leftovers(out)


# --------------------------------------------------------------------------- hostile text in the HTML


def _hostile_onnx(tiny_onnx_path: Path, folder: Path) -> Path:
    proto = onnx.load(str(tiny_onnx_path))
    proto.producer_name, proto.producer_version = IMG, XSS
    for key, value in ((XSS, IMG), ("author", XSS), ("note", "line\x1b[31m\nbreak")):
        proto.metadata_props.add(key=key, value=value)
    path = folder / 'evil"><img src=x onerror=alert(3)>.onnx'
    onnx.save(proto, str(path))
    return path


def _assert_escaped(html: str) -> None:
    assert html.count("<script") == 0 and "<img src=x" not in html and "onerror=alert(2)>" not in html
    assert "&lt;script&gt;alert(1)" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html


@pytest.mark.parametrize("names_from", ["class folders", "--class-names"])
def test_hostile_text_is_escaped_in_the_html(names_from, tiny_onnx_path, audit_data, tmp_path, cli, corpus):
    model = _hostile_onnx(tiny_onnx_path, tmp_path)
    out = tmp_path / "report"
    if names_from == "class folders":
        from PIL import Image

        names = ['"><img src=x onerror=alert(2)>', "<script>alert(1)", "a&b'c"]  # sorted: labels 0, 1, 2
        members = tmp_path / "members"
        for label, name in enumerate(names):
            (members / name).mkdir(parents=True)
            for i, image in enumerate(audit_data.members.of_class(label)):
                Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8), mode="L").save(members / name / f"{i}.png")
        extra = []
    else:
        names = [XSS, IMG, "ok"]
        members = tmp_path / "members.npz"
        np.savez(members, x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
        extra = ["--class-names", ",".join(names)]
    code, stdout, err = cli("run", model, "--members", members, *extra, "--plugins", "inversion", "--smoke", "--fail-on", "never",
                            "--out", out, "--junit", tmp_path / "j.xml", "--sarif", tmp_path / "s.sarif")
    html = (out / "report.html").read_text()
    report = json.loads((out / "report.json").read_text())
    corpus("HTML escaping", f"payloads in {names_from}, ONNX producer/metadata and file name", code,
           "escaped in report.html; kept verbatim in report.json", report_ok=True)
    assert code == 0, (stdout, err)
    assert report["data"]["class_names"] == names
    assert report["model"]["producer"] == f"{IMG} {XSS}" and report["model"]["metadata"]["author"] == XSS
    _assert_escaped(html)
    assert "onerror=alert(3)&gt;.onnx" in html and "a&amp;b&#39;c" in html or names_from == "--class-names"
    assert "metadata: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    ET.parse(tmp_path / "j.xml")
    json.loads((tmp_path / "s.sarif").read_text())


# --------------------------------------------------------------------------- determinism


def _strip_volatile(value):
    """Drop dates and timings (``created``, ``duration_s``, ``*_seconds``, and "(N s)" in texts such as
    inversion's "after 5 steps (1 s)"); every other number and text must repeat."""
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in ("created", "duration_s") and not k.endswith("_seconds")}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"\b\d+(\.\d+)? s\b", "<elapsed> s", value)
    return value


def test_same_seed_gives_the_same_report_numbers(tiny_onnx_path, members_npz, reference_npz, tmp_path, cli, corpus):
    reports = []
    for run in ("a", "b"):
        code, stdout, err = cli("run", tiny_onnx_path, "--members", members_npz, "--reference", reference_npz, "--plugins", "inversion",
                                "--smoke", "--seed", "3", "--fail-on", "never", "--out", tmp_path / run)
        assert code == 0, (stdout, err)
        report = json.loads((tmp_path / run / "report.json").read_text())
        assert report["config"]["report"].pop("out").endswith(run)
        assert report.pop("command").endswith(run)  # the reproduce command names the --out folder too
        reports.append(_strip_volatile(report))
    same = reports[0] == reports[1]
    corpus("determinism", "two smoke runs, seed 3", 0, "identical report.json apart from dates and durations" if same else "DIFFERENT",
           report_ok=same)
    assert reports[0]["results"][0]["scores"]["samples"], "nothing was scored"
    assert same


def test_report_folder_that_is_a_file(stubs, linear_onnx, members_npz, tmp_path, cli, corpus):
    """The report cannot be written: exit 2, one line, and the file in the way is untouched."""
    blocker = tmp_path / "report"
    blocker.write_text("not a folder")
    code, out, err = cli("run", linear_onnx, "--members", members_npz, "--plugins", "stub_good", "--out", blocker)
    message = err.strip().splitlines()[-1]
    corpus("running", "--out names an existing file", code, message)
    assert code == 2 and "FileExistsError" in message and blocker.read_text() == "not a folder"
