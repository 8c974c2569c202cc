"""The CI gate examples (examples/ci): valid workflow files, a release that waits for the audit, and their command line run for real."""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import typing
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from auditor.engine.config import build_config, load_toml

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "examples" / "ci"
GITHUB, GITLAB = CI / "github-release.yml", CI / "gitlab-ci.yml"


def _github() -> dict:
    return yaml.safe_load(GITHUB.read_text())


def _gitlab() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def _audit_lines() -> tuple[list[str], list[str]]:
    github = [step["run"].strip() for job in _github()["jobs"].values() for step in job["steps"]
              if step.get("run", "").lstrip().startswith("audit ")]
    gitlab = [line.strip() for job in _gitlab().values() if isinstance(job, dict) for line in job.get("script", [])
              if line.startswith("audit ")]
    return github, gitlab


@pytest.mark.parametrize(("path", "schema"), [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")])
def test_workflow_files_match_the_official_schemas(path, schema):
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]'): it carries the GitHub and GitLab schemas offline")
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_release_waits_for_the_audit_and_the_report_is_kept():
    jobs = _github()["jobs"]
    assert jobs["release"]["needs"] == "privacy-audit"
    keep = next(s for s in jobs["privacy-audit"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert keep["if"] == "always()" and "audit-report/report.html" in keep["with"]["path"]
    gitlab = _gitlab()
    assert gitlab["stages"] == ["audit", "release"]
    audit, release = gitlab["privacy-audit"], gitlab["release-weights"]
    assert audit["stage"] == "audit" and release["stage"] == "release"
    assert [n["job"] if isinstance(n, dict) else n for n in release["needs"]] == ["privacy-audit"]
    assert audit["artifacts"]["when"] == "always" and "audit-report/report.html" in audit["artifacts"]["paths"]
    assert audit["artifacts"]["reports"]["junit"] == "audit-junit.xml"


def test_both_examples_run_one_gated_command_without_member_images():
    github, gitlab = _audit_lines()
    assert len(github) == 1 and github == gitlab
    argv = shlex.split(github[0])
    assert argv[:3] == ["audit", "run", "audit.toml"]
    assert "--no-member-images" in argv and argv[argv.index("--fail-on") + 1] == "high"
    assert argv[argv.index("--junit") + 1] == "audit-junit.xml" and argv[argv.index("--sarif") + 1] == "audit.sarif"


def test_example_configs_are_valid():
    for path in (CI / "audit.toml", ROOT / "examples" / "audit.toml"):
        config = build_config(load_toml(path))
        assert config.model.source
    assert build_config(load_toml(CI / "audit.toml")).report.member_images is False


def test_every_configuration_key_is_documented_in_the_example():
    """examples/audit.toml documents audit.toml end to end: every section and key appears (set or commented)."""
    from auditor.engine.config import AuditConfig

    text = (ROOT / "examples" / "audit.toml").read_text()
    missing = []
    for section, field in AuditConfig.model_fields.items():
        model = next((a for a in (*typing.get_args(field.annotation), field.annotation) if hasattr(a, "model_fields")), None)
        if model is None:  # [attacks.NAME]: each attack's own schema (`audit schema NAME`)
            assert re.search(r"^\[attacks\.\w+\]", text, re.M)
            continue
        missing += [f"[{section}]"] if f"[{section}]" not in text else []
        missing += [f"{section}.{key}" for key in model.model_fields if not re.search(rf"^#?\s*{key}\s*=", text, re.M)]
    assert not missing, f"examples/audit.toml does not document {missing}"


def test_the_ci_command_line_audits_a_model(tiny_onnx_path, audit_data, tmp_path):
    """The exact command of both examples, in a checkout laid out as examples/ci/audit.toml expects (smoke budgets)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    shutil.copy(tiny_onnx_path, tmp_path / "models" / "model.onnx")
    np.savez(tmp_path / "data" / "members.npz", x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(tmp_path / "data" / "reference.npz", x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())
    toml = (CI / "audit.toml").read_text()
    assert "smoke = false" in toml and "# plugins = " in toml
    toml = toml.replace("smoke = false", "smoke = true").replace("# plugins = ", 'plugins = ["inversion"]  # was: ')
    (tmp_path / "audit.toml").write_text(toml)
    argv = shlex.split(_audit_lines()[0][0])
    done = subprocess.run([sys.executable, "-m", "auditor", *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stdout + done.stderr   # 0 pass, 1 the gate stops the release; never 2 or 3 here
    report = json.loads((tmp_path / "audit-report" / "report.json").read_text())
    assert report["member_images"] is False and report["fail_on"] == "high"
    assert report["exit_code"] == done.returncode
    assert all(not f["private"] for r in report["results"] for f in r["figures"])
    html = (tmp_path / "audit-report" / "report.html").read_text()
    assert "Member images are withheld" in html and "contains private data" not in html
    suite = ET.parse(tmp_path / "audit-junit.xml").getroot()
    assert suite.tag == "testsuite" and any(c.get("classname") == "auditor.inversion" for c in suite.iter("testcase"))
    sarif = json.loads((tmp_path / "audit.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["tool"]["driver"]["name"] == "auditor"
