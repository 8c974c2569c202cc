"""The ``audit`` command: exit codes, dry run, schema, render, plugins."""
from __future__ import annotations

import json

import numpy as np
import pytest

from auditor.cli.main import main


@pytest.fixture
def npz_data(audit_data, tmp_path):
    members, reference = tmp_path / "members.npz", tmp_path / "reference.npz"
    np.savez(members, x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(reference, x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())
    return str(members), str(reference)


def test_dry_run_validates_and_runs_nothing(tiny_onnx_path, npz_data, tmp_path, capsys):
    code = main(["-q", "run", str(tiny_onnx_path), "--members", npz_data[0], "--reference", npz_data[1], "--dry-run",
                 "--out", str(tmp_path / "r")])
    assert code == 0 and "dry run" in capsys.readouterr().out
    assert not (tmp_path / "r").exists()


def test_bad_model_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    assert main(["-q", "run", str(bad), "--members", "digits"]) == 2
    err = capsys.readouterr().err
    assert "not a valid ONNX" in err and "Traceback" not in err


def test_bad_data_exits_2(tiny_onnx_path, capsys):
    assert main(["-q", "run", str(tiny_onnx_path), "--members", "digits:train"]) == 2
    assert "the model expects [1, 16, 16]" in capsys.readouterr().err


def test_unknown_plugin_exits_2(tiny_onnx_path, npz_data, capsys):
    assert main(["-q", "run", str(tiny_onnx_path), "--members", npz_data[0], "--plugins", "nope"]) == 2
    assert "installed:" in capsys.readouterr().err


def test_bad_option_exits_2(tiny_onnx_path, npz_data, capsys):
    assert main(["-q", "run", str(tiny_onnx_path), "--members", npz_data[0], "--plugins", "inversion",
                 "--set", "inversion.latent_dim=-3"]) == 2
    assert "attacks.inversion.latent_dim" in capsys.readouterr().err


def test_run_smoke_writes_reports_and_render_rebuilds(tiny_onnx_path, npz_data, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["-q", "run", str(tiny_onnx_path), "--members", npz_data[0], "--reference", npz_data[1], "--plugins", "inversion",
                 "--smoke", "--out", str(out), "--fail-on", "never", "--junit", str(tmp_path / "j.xml"), "--sarif", str(tmp_path / "s.sarif")])
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["results"][0]["status"] == "completed"
    assert report["results"][0]["scores"]["samples"]
    (out / "report.html").unlink()
    assert main(["-q", "render", str(out / "report.json")]) == 0
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    import xml.etree.ElementTree as ET

    assert ET.parse(tmp_path / "j.xml").getroot().tag == "testsuite"
    assert json.loads((tmp_path / "s.sarif").read_text())["version"] == "2.1.0"


def test_schema_and_plugins(capsys):
    assert main(["schema", "inversion"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "kl" in schema["properties"] and "cosine" in schema["properties"]
    assert main(["plugins"]) == 0
    assert "inversion" in capsys.readouterr().out
    assert main(["schema", "nope"]) == 2
