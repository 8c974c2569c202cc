"""The reports in a real browser: headless Chromium (Debian's ``chromium``) driven over the DevTools protocol.

No Playwright and no browser download: the test starts the system Chromium with
``--remote-debugging-pipe`` and speaks the protocol (JSON messages separated by NUL bytes on file
descriptors 3 and 4) with the standard library. It opens each page from disk and checks what a person
would see: no console errors or exceptions, no JavaScript dialog (escaped hostile text), every
``<img>`` decoded, every SVG chart laid out, no request leaving the page (self-contained), and it saves
a full-page screenshot into the test's temporary folder. Set ``AUDITOR_CHROMIUM`` to use another
binary. Skipped, with the reason, where no Chromium is installed (``apt-get install chromium``).
"""
from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from auditor.core.results import AttackResult, AuditReport, ClassScore, DataInfo, Figure, Finding, ModelInfo, SampleScore, Scores, Severity

ROOT = Path(__file__).resolve().parents[1]


def chromium_binary() -> str | None:
    for candidate in (os.environ.get("AUDITOR_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


# Run in a fresh interpreter: put the pipe ends on fds 3 and 4, then become the browser (no preexec_fn, no shell).
_EXEC_WITH_PIPE = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
                   "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")


class Chromium:
    """A headless Chromium and one page, driven over ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: Path, width: int = 1280, height: int = 900) -> None:
        import fcntl

        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # The browser reads fd 3 and writes fd 4; move its ends above 9 first so the renumbering cannot collide.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        flags = ["--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}", "--disable-gpu", "--no-first-run",
                 "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                 "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--no-pings", "--metrics-recording-only",
                 "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
                 "--password-store=basic", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--font-render-hinting=none",
                 f"--window-size={width},{height}", "about:blank"]
        if os.geteuid() == 0:
            flags.insert(0, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.stderr_path = profile / "chromium.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-c", _EXEC_WITH_PIPE, str(child_r), str(child_w), binary, *flags],
                                     pass_fds=(child_r, child_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(child_r)
        os.close(child_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._messages: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.width = width

    def _read(self) -> None:
        buffer = b""
        while chunk := self._in.read(65536):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        self._messages.put(None)

    def _receive(self, deadline: float) -> dict:
        try:
            message = self._messages.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("Chromium did not answer in time") from None
        if message is None:
            raise RuntimeError(f"Chromium closed the pipe: {self.stderr_path.read_text(errors='replace')[-2000:]}")
        if "id" not in message:
            self.events.append(message)
            if message.get("method") == "Page.javascriptDialogOpening":  # record it, then dismiss so the page goes on
                self._send("Page.handleJavaScriptDialog", {"accept": False}, message.get("sessionId"))
        return message

    def _send(self, method: str, params: dict | None, session: str | None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        return self._next_id

    def call(self, method: str, params: dict | None = None, *, session: bool = False, timeout: float = 60.0) -> dict:
        wanted = self._send(method, params, self.session if session else None)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            self._receive(deadline)

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                  session=True)
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")

    def screenshot(self, path: Path) -> Path:
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": min(height, 16000), "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True, timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries, dialogs and requests that leave the page."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog: {params.get('message')}")
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"request leaves the page: {url[:200]}")
        return found

    def close(self) -> None:
        try:
            self._send("Browser.close", None, None)
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a browser that will not close is killed
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            self._out.close()
            self._stderr.close()


IMAGES = """Array.from(document.images).map(i => i.decode().then(() => null, () => null)
  .then(() => ({alt: i.alt, width: i.naturalWidth, height: i.naturalHeight, complete: i.complete})))"""
CHARTS = "Array.from(document.querySelectorAll('svg.chart')).map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; })"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("headless Chromium not found: install Debian's chromium package (apt-get install chromium; .ci/run does) "
                    "or set AUDITOR_CHROMIUM to a Chromium binary")
    chromium = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


def _check_page(browser: Chromium, page: Path, shot: Path) -> dict:
    browser.open(page)
    images = browser.evaluate(f"Promise.all({IMAGES})")
    charts = browser.evaluate(CHARTS)
    title = browser.evaluate("document.title")
    browser.screenshot(shot)
    assert shot.stat().st_size > 10_000
    assert browser.problems() == []
    broken = [i for i in images if not i["complete"] or i["width"] == 0]
    assert not broken, f"images that did not decode: {broken}"
    assert all(w > 100 and h > 40 for w, h in charts), charts
    return {"images": images, "charts": charts, "title": title}


@pytest.fixture(scope="module")
def audited(tiny_onnx_path, audit_data, tmp_path_factory) -> Path:
    """A real audit of the tiny ONNX model: inversion (smoke) and the example loss-threshold membership plugin, member images shown."""
    sys.path.insert(0, str(ROOT / "examples" / "example_plugin" / "src"))
    try:
        import auditor_loss_threshold
    finally:
        sys.path.remove(str(ROOT / "examples" / "example_plugin" / "src"))
    from auditor.engine.config import build_config
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit
    from auditor.report.html import write_report

    out = tmp_path_factory.mktemp("browser-report")
    np.savez(out / "members.npz", x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(out / "reference.npz", x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())
    pm = get_plugin_manager(autoload=False)
    pm.register(auditor_loss_threshold, name="loss_threshold")
    pm.register(__import__("auditor_inversion"), name="inversion")
    config = build_config({"model": {"source": str(tiny_onnx_path)},
                           "data": {"members": str(out / "members.npz"), "reference": str(out / "reference.npz"), "class_names": ["left", "middle", "right"]},
                           "run": {"plugins": ["inversion", "loss_threshold"], "smoke": True, "show_progress": False},
                           "report": {"out": str(out / "report"), "fail_on": "high"}})
    report = run_audit(config, pm)
    write_report(report, out / "report")
    return out / "report"


def test_report_in_headless_chromium(browser, audited, tmp_path):
    seen = _check_page(browser, audited / "report.html", tmp_path / "report.png")
    assert seen["title"].startswith("Privacy audit")
    alts = [i["alt"] for i in seen["images"]]
    assert any("closest reconstructions" in a for a in alts) and "Membership inference ROC" in alts
    assert len(seen["charts"]) >= 3  # severity summary, histogram, per-class bars
    print(f"screenshot: {tmp_path / 'report.png'}")


def test_compare_page_in_headless_chromium(browser, audited, tmp_path):
    from auditor.cli.main import main

    report = AuditReport.model_validate_json((audited / "report.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.json").write_text(report.model_copy(update={"model": report.model.model_copy(update={"source": "other.onnx"})})
                                       .model_dump_json())
    assert main(["-q", "compare", str(audited / "report.json"), str(other), "--out", str(tmp_path / "cmp")]) == 0
    seen = _check_page(browser, tmp_path / "cmp" / "compare.html", tmp_path / "compare.png")
    assert len(seen["charts"]) >= 3


XSS = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


def test_hostile_text_runs_no_script(browser, tmp_path):
    from auditor.report.html import write_report

    report = AuditReport(
        tool_version="0.1.0", created="2026-11-28T00:00:00Z", seed=0, fail_on=Severity.HIGH,
        model=ModelInfo(source=f"evil{IMG}.onnx", format="onnx", metadata={"author": XSS}, producer=IMG),
        data=DataInfo(members_source=XSS, members_sha256="0" * 64, members_count=2, members_per_class=[1, 1], class_names=[XSS, IMG]),
        results=[AttackResult(attack=f"inv{XSS}", status="completed", summary=XSS, notes=[IMG],
                              scores=Scores(calibrated=True, per_class=[ClassScore(label=0, name=XSS, count=1, matched_ssim_mean=0.4,
                                                                                   reference_best_ssim_mean=0.3, copy_threshold=0.6)]),
                              findings=[Finding(attack=XSS, title=XSS, severity=Severity.HIGH, detail=IMG)],
                              figures=[Figure(title=XSS, png_base64=_png_base64(), caption=IMG)])])
    write_report(report, tmp_path)
    _check_page(browser, tmp_path / "report.html", tmp_path / "hostile.png")
    assert browser.evaluate("document.querySelectorAll('script').length") == 0


def _png_base64() -> str:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 251).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _synthetic_report() -> AuditReport:
    """Every severity, a failed and a skipped attack, ten classes and 200 scored reconstructions (no model needed)."""
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    samples = [SampleScore(index=i, label=i % 10, nearest_member=i, nearest_member_ssim=float(rng.beta(6, 4)),
                           nearest_reference=i, nearest_reference_ssim=float(rng.beta(4, 6)), likely_copy=bool(i % 9 == 0))
               for i in range(200)]
    per_class = [ClassScore(label=k, name=n, count=20, matched_ssim_mean=0.45 + 0.03 * k, reference_best_ssim_mean=0.35 + 0.01 * k,
                            copy_threshold=0.7 + 0.01 * k, likely_copy_share=0.1) for k, n in enumerate(names)]
    scores = Scores(calibrated=True, matched_ssim_mean=0.6, best_ssim_mean=0.6, reference_best_ssim_mean=0.4, gap=0.2, gap_ci_low=0.15,
                    gap_ci_high=0.25, likely_copy_share=0.11, per_class=per_class, samples=samples)
    findings = [Finding(attack="inversion", title="Reconstructions copy training images", severity=Severity.HIGH, metric="likely_copy_share",
                        value=0.11, threshold=0.05),
                Finding(attack="inversion", title="Reconstructions resemble members more than non-members", severity=Severity.MEDIUM,
                        metric="gap", value=0.2, threshold=0.02)]
    return AuditReport(
        tool_version="0.1.0", created="2026-11-28T00:00:00Z", seed=0, fail_on=Severity.MEDIUM, member_images=False, exit_code=1,
        verdict="fails the gate: highest finding is high (gate: medium)", model=ModelInfo(source="cifar-cnn.onnx", format="onnx"),
        results=[AttackResult(attack="inversion", status="completed", scores=scores, findings=findings, duration_s=12.5),
                 AttackResult(attack="membership", status="completed", duration_s=1.2, metrics={"auc": 0.58},
                              findings=[Finding(attack="membership", title="Membership can be inferred", severity=Severity.LOW),
                                        Finding(attack="membership", title="Accuracy gap", severity=Severity.INFO)]),
                 AttackResult(attack="bnn_sat", status="skipped", reason="needs ['parameters']; onnx provides ['query']"),
                 AttackResult(attack="tldr", status="failed", reason="stopped: time budget of 60 s exhausted")])


def test_synthetic_report_with_every_severity(browser, tmp_path):
    from auditor.report.html import write_report

    write_report(_synthetic_report(), tmp_path)
    seen = _check_page(browser, tmp_path / "report.html", tmp_path / "synthetic.png")
    assert len(seen["charts"]) == 3
    text = browser.evaluate("document.body.innerText")
    assert "fails the gate" in text and "airplane" in browser.evaluate("document.querySelector('svg.chart text') && "
                                                                       "Array.from(document.querySelectorAll('svg.chart text')).map(t => t.textContent).join(' ')")
