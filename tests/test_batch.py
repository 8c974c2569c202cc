"""``audit batch`` on a real local Ray instance (2 CPUs): reports, failures, resume, a killed worker, sequential parity.

The models are three tiny ONNX classifiers trained here for a few steps plus one file that is not ONNX;
each audit is the ``inversion`` attack in smoke mode with a step bound (no time bound), so it takes about
a second and gives the same numbers in any process.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="audit batch needs Ray: python3 -m pip install 'auditor[batch]'")

from auditor.batch.manifest import expand, parse_manifest  # noqa: E402 - imported after pytest.importorskip skips the module
from auditor.batch.outputs import most_severe  # noqa: E402 - imported after pytest.importorskip skips the module
from auditor.batch.worker import FAULT_ENV, PARTIAL_PREFIX  # noqa: E402 - imported after pytest.importorskip skips the module
from auditor.cli.main import main  # noqa: E402 - imported after pytest.importorskip skips the module
from auditor.lab.testing import IMAGE_SHAPE, export_tiny_onnx, make_audit_data, train_tiny  # noqa: E402 - imported after pytest.importorskip skips the module

GOOD = ["m0.onnx", "m1.onnx", "m2.onnx"]
TIMING_KEYS = {"created", "duration_s", "train_seconds", "seconds"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch")
    data = make_audit_data()
    np.savez(root / "members.npz", x=data.members.images.numpy(), y=data.members.labels.numpy())
    np.savez(root / "reference.npz", x=data.reference.images.numpy(), y=data.reference.labels.numpy())
    (root / "models").mkdir()
    for seed, name in enumerate(GOOD):
        export_tiny_onnx(train_tiny(data, seed=seed, steps=10), IMAGE_SHAPE, root / "models" / name)
    (root / "models" / "broken.onnx").write_bytes(b"this is not an ONNX protobuf")
    return root


@pytest.fixture(scope="module")
def local_ray():
    """One real local Ray instance with 2 CPUs for the whole module; ``audit batch`` reuses it and leaves it running."""
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 1024 * 1024)
    yield ray
    ray.shutdown()


def _batch(workdir: Path, out: str, *extra: str) -> int:
    return main(["-q", "batch", "--models", str(workdir / "models" / "*.onnx"), "--members", str(workdir / "members.npz"),
                 "--reference", str(workdir / "reference.npz"), "--plugins", "inversion", "--smoke",
                 "--set", "inversion.train_seconds=null", "--out", str(workdir / out), *extra])


def _entries(out: Path) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads((out / "batch.json").read_text())["entries"]}


def _normalised(value):
    """report.json without what measures time: timing fields, and durations quoted in text ('(0 s)')."""
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"\d+(?:\.\d+)? s\b", "<time> s", value)
    return value


@pytest.fixture(scope="module")
def parallel(workdir: Path, local_ray) -> tuple[int, Path]:
    code = _batch(workdir, "parallel", "--workers", "2", "--junit", str(workdir / "parallel.xml"), "--sarif", str(workdir / "parallel.sarif"))
    return code, workdir / "parallel"


def test_exit_code_precedence_is_2_1_3_0():
    assert most_severe([0, 3, 1]) == 1 and most_severe([3, 0, 2, 1]) == 2 and most_severe([0, 3]) == 3 and most_severe([0, 0]) == 0


def test_key_follows_the_model_bytes_the_configuration_and_the_plugins(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"model a")
    (tmp_path / "train.npz").write_bytes(b"members")
    raw = {"data": {"members": "train.npz"}, "attacks": {"inversion": {"steps": 5}}, "models": [{"source": "a.onnx"}]}
    plugins = [{"name": "inversion", "version": "1.0"}]
    (item,) = expand(parse_manifest(raw), tmp_path, plugins)
    assert item.source == str(tmp_path / "a.onnx") and item.config["data"]["members"] == str(tmp_path / "train.npz")
    assert item.folder == f"a-{item.key[:12]}"
    variants = [expand(parse_manifest({**raw, "attacks": {"inversion": {"steps": 6}}}), tmp_path, plugins)[0].key,
                expand(parse_manifest(raw), tmp_path, [{"name": "inversion", "version": "1.1"}])[0].key]
    (tmp_path / "a.onnx").write_bytes(b"model b")
    variants.append(expand(parse_manifest(raw), tmp_path, plugins)[0].key)
    assert len({item.key, *variants}) == 4
    (tmp_path / "a.onnx").write_bytes(b"model a")
    moved = {**raw, "report": {"out": "elsewhere"}, "run": {"show_progress": True}}
    assert expand(parse_manifest(moved), tmp_path, plugins)[0].key == item.key


def test_manifest_per_model_overrides_and_globs(tmp_path):
    (tmp_path / "ckpt").mkdir()
    for name in ("x.onnx", "y.onnx"):
        (tmp_path / "ckpt" / name).write_bytes(name.encode())
    (tmp_path / "toml").mkdir()
    (tmp_path / "toml" / "batch.toml").write_text(
        '[data]\nmembers = "digits"\n[run]\nplugins = ["inversion"]\nseed = 1\n'
        '[[models]]\nglob = "../ckpt/*.onnx"\n'
        '[[models]]\nsource = "../ckpt/x.onnx"\nname = "x-seed2"\nrun = { seed = 2 }\n')
    from auditor.engine.config import load_toml

    items = expand(parse_manifest(load_toml(tmp_path / "toml" / "batch.toml")), tmp_path / "toml", [])
    assert [i.name for i in items] == ["x.onnx", "y.onnx", "x-seed2"]
    assert [i.config["run"]["seed"] for i in items] == [1, 1, 2] and items[2].config["run"]["plugins"] == ["inversion"]
    assert items[0].config["data"]["members"] == "digits"  # not a path: left as it is
    assert len({i.key for i in items}) == 3
    assert main(["-q", "batch", str(tmp_path / "toml" / "batch.toml"), "--models", str(tmp_path / "none" / "*.onnx")]) == 2


def test_sequential_batch_matches_the_parallel_one(workdir, parallel):
    code, out = parallel
    assert _batch(workdir, "sequential", "--workers", "1") == code
    par, seq = _entries(out), _entries(workdir / "sequential")
    assert json.loads((workdir / "sequential" / "batch.json").read_text())["engine"]["in_process"] is True
    for name in GOOD:
        assert par[name]["status"] == seq[name]["status"] == "completed", (par[name], seq[name])
        assert par[name]["folder"] == seq[name]["folder"]
        a = json.loads((out / par[name]["folder"] / "report.json").read_text())
        b = json.loads((workdir / "sequential" / seq[name]["folder"] / "report.json").read_text())
        assert a["results"][0]["status"] == "completed"
        assert _normalised(a) == _normalised(b), name


def test_broken_file_is_recorded_and_the_others_are_reported(parallel):
    code, out = parallel
    entries = _entries(out)
    assert code == 2
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(entries[n]["folder"] for n in GOOD)
    for name in GOOD:
        folder = out / entries[name]["folder"]
        report = json.loads((folder / "report.json").read_text())
        assert entries[name]["status"] == "completed" and (folder / "report.html").is_file()
        assert report["model"]["sha256"] == hashlib.sha256((Path(report["model"]["source"])).read_bytes()).hexdigest()
        assert entries[name]["exit_code"] == report["exit_code"]
    broken = entries["broken.onnx"]
    assert broken["status"] == "failed" and broken["exit_code"] == 2 and "not a valid ONNX" in broken["reason"]
    ranking = json.loads((out / "compare.json").read_text())["entries"]
    assert sorted(e["label"] for e in ranking) == GOOD and (out / "compare.html").is_file()
    junit = ET.parse(out.parent / "parallel.xml").getroot()
    assert junit.tag == "testsuites" and sorted(s.get("name") for s in junit) == sorted([*GOOD, "broken.onnx"])
    assert int(junit.get("errors")) >= 1
    sarif = json.loads((out.parent / "parallel.sarif").read_text())
    assert any(r["ruleId"] == "batch/audit-failed" and "broken.onnx" in r["message"]["text"] for r in sarif["runs"][0]["results"])


def test_rerun_skips_complete_reports_and_force_reaudits(workdir, parallel):
    _, out = parallel
    before = {n: (out / e["folder"] / "report.json").stat().st_mtime_ns for n, e in _entries(out).items() if n in GOOD}
    assert _batch(workdir, "parallel", "--workers", "2") == 2
    entries = _entries(out)
    assert [entries[n]["status"] for n in GOOD] == ["up to date"] * 3 and entries["broken.onnx"]["status"] == "failed"
    assert {n: (out / entries[n]["folder"] / "report.json").stat().st_mtime_ns for n in GOOD} == before
    (out / entries["m0.onnx"]["folder"] / "report.html").unlink()  # incomplete: audited again
    assert _batch(workdir, "parallel", "--workers", "2") == 2
    entries = _entries(out)
    assert entries["m0.onnx"]["status"] == "completed" and entries["m1.onnx"]["status"] == "up to date"


def test_killed_worker_is_recorded_and_leaves_no_partial_report(workdir, local_ray, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "m1.onnx")  # SIGKILL half-way through writing the report, every attempt
    code = _batch(workdir, "killed", "--workers", "2", "--retries", "0")
    out = workdir / "killed"
    entries = _entries(out)
    assert entries["m1.onnx"]["status"] == "failed" and entries["m1.onnx"]["exit_code"] == 3
    assert "worker process died" in entries["m1.onnx"]["reason"] and "1 attempt(s)" in entries["m1.onnx"]["reason"]
    assert entries["m0.onnx"]["status"] == entries["m2.onnx"]["status"] == "completed"
    assert not (out / entries["m1.onnx"]["folder"]).exists()
    assert not list(out.glob(f"{PARTIAL_PREFIX}*"))
    assert code == 2  # the broken file still ranks first


def test_killed_worker_is_retried_once(workdir, local_ray, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "m1.onnx:once")
    assert _batch(workdir, "retried", "--workers", "2", "--retries", "1") == 2
    out = workdir / "retried"
    entries = _entries(out)
    assert (out / f".fault-{entries['m1.onnx']['folder']}").read_text().startswith("killed pid")  # the first attempt died
    assert entries["m1.onnx"]["status"] == "completed" and (out / entries["m1.onnx"]["folder"] / "report.html").is_file()
    assert not list(out.glob(f"{PARTIAL_PREFIX}*"))


def test_privacy_study_runs_its_cells_on_ray(tmp_path, local_ray):
    from auditor_tldr.study import study_main

    code = study_main(["--dataset", "digits", "--archs", "mlp,cnn", "--sizes", "50", "--epochs", "2", "--reference", "100", "--attacks",
                       "inversion", "--inversion-seconds", "1", "--reconstruction-seconds", "1", "--out", str(tmp_path), "--workers", "2"])
    assert code == 0
    study = json.loads((tmp_path / "study.json").read_text())
    assert sorted(r["model"] for r in study["rows"]) == ["digits-cnn-50", "digits-mlp-50"]
    assert all(r["status"] == "completed" for r in study["rows"])
    assert all((tmp_path / r["model"] / "report.json").is_file() for r in study["rows"])
    assert len(json.loads((tmp_path / "compare.json").read_text())["entries"]) == 2


def test_shortcut_study_runs_its_cells_on_ray(tmp_path, local_ray):
    """One cell per architecture on 2 workers; the measured rows equal the in-process run's (same seeds, 1 thread)."""
    from auditor_shortcut.study import study_main

    args = ["--dataset", "digits", "--train-size", "200", "--test-size", "100", "--epochs", "1", "--archs", "mlp,cnn", "--lrs", "1e-2",
            "--inversion-seconds", "0", "--probe-stride", "8", "--probe-search", "1"]
    assert study_main([*args, "--out", str(tmp_path / "ray"), "--workers", "2"]) == 0
    assert study_main([*args, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    keys = ("arch", "lr", "acc_with", "acc_without", "acc_conflict", "probe_found")
    ray_rows, local_rows = ([{k: r[k] for k in keys} for r in json.loads((tmp_path / run / "study.json").read_text())["rows"]]
                            for run in ("ray", "local"))
    assert [r["arch"] for r in ray_rows] == ["mlp", "cnn"] and ray_rows == local_rows


def test_without_ray_the_error_says_how_to_install_it(monkeypatch, workdir):
    import sys

    from auditor.batch.engine import Cell, run_cells
    from auditor.core.errors import UsageError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(UsageError, match=r"auditor\[batch\]"):
        run_cells([Cell("a", str, "payload")], workers=2)
    assert run_cells([Cell("a", str.upper, "payload")], workers=1)[0].value == "PAYLOAD"  # in-process needs no Ray
