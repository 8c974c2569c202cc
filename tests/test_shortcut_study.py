"""The shortcut study: a tiny end-to-end run on scikit-learn digits, CLI wiring, argument errors."""
from __future__ import annotations

import json

import pytest
import torch

import auditor_shortcut
from auditor.core.errors import UsageError
from auditor_shortcut.study import study_main


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_tiny_study_writes_report(tmp_path, capsys):
    out = tmp_path / "study"
    code = study_main(["--dataset", "digits", "--train-size", "300", "--test-size", "100", "--epochs", "1", "--archs", "mlp,vit_nopos",
                       "--lrs", "1e-3,1e-2", "--inversion-seconds", "1", "--inversion-samples", "2", "--probe-stride", "4",
                       "--probe-search", "2", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "study.json").read_text())
    assert (out / "study.html").is_file()
    assert [(r["arch"], r["lr"]) for r in report["rows"]] == [("mlp", 1e-3), ("mlp", 1e-2), ("vit_nopos", 1e-3), ("vit_nopos", 1e-2)]
    for row in report["rows"]:
        assert row["drop"] == pytest.approx(row["acc_with"] - row["acc_without"])
        assert 0 <= row["probe_found"] <= 10
    titles = [t["title"] for t in report["tables"]]
    assert "Accuracy with and without the shortcut" in titles and "Inversion: does the planted patch appear?" in titles
    figures = [f["title"] for f in report["figures"]]
    assert sum(f.startswith("Inversion of mlp (lr ") for f in figures) == 1  # the lr most accurate with the shortcut
    assert sum(f.startswith("Inversion of vit_nopos (lr ") for f in figures) == 1
    assert any(f.startswith("Mean reliance") for f in report["findings"])
    assert "report:" in capsys.readouterr().out


def test_study_is_registered():
    studies = auditor_shortcut.auditor_register_studies()
    assert [s.name for s in studies] == ["shortcut"] and callable(studies[0].main)
    assert [a.name for a in auditor_shortcut.auditor_register_attacks()] == ["shortcut"]


@pytest.mark.parametrize(("argv", "match"), [(["--archs", "mlp,resnet"], "--archs"), (["--lrs", "fast"], "--lrs"),
                                             (["--dataset", "nowhere.npz"], "test-source")])
def test_bad_arguments_say_what_was_expected(argv, match, tmp_path):
    with pytest.raises(UsageError, match=match):
        study_main([*argv, "--out", str(tmp_path)])
