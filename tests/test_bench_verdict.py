"""The verdict ladder's score and bars (bench/verdict_*.py) on constructed entries, against direct computations."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from verdict_audit import attack_score, leakage_score, refresh_scores
from verdict_checks import checks

from auditor.core.results import SampleScore, Scores


def _entry(row: str, arch: str, n: int, score: float, kind: str = "ladder", alarms: tuple[str, ...] = (), highest: str = "info") -> dict:
    return {"row": row, "arch": arch, "n_train": n, "kind": kind, "score": score, "membership_tpr_at_1pct_fpr": None,
            "medium_or_above": list(alarms), "highest": highest, "score_attack": "tldr",
            "attacks": {"tldr": {"distinct_members": 1, "copy_p_value": 0.02, "reconstructions": 20, "highest": highest},
                        "shortcut": {"highest": "high" if kind == "known_leak" else "info"}}}


def test_score_is_distinct_members_plus_clipped_gap() -> None:
    samples = [SampleScore(index=i, label=0) for i in range(4)]
    assert attack_score(Scores(calibrated=True, samples=samples, distinct_members_recovered=3, gap=0.02)) == pytest.approx(3.02)
    assert attack_score(Scores(calibrated=True, samples=samples, distinct_members_recovered=0, gap=-0.9)) == pytest.approx(-0.49)
    assert attack_score(Scores(calibrated=True, samples=samples, distinct_members_recovered=None, gap=None)) == 0.0
    assert attack_score(Scores(calibrated=True)) is None  # nothing scored: no score, not zero


def test_leakage_score_is_recovered_members_then_membership_advantage() -> None:
    """score = max distinct members over the scored attacks + clip(2 AUC - 1, 0, 0.99), by hand on constructed rows."""
    def row(recovered: dict[str, int | None], auc: float | None) -> dict:
        attacks = {a: {"reconstructions": 10, "distinct_members": d, "score": (d or 0) + 0.01} for a, d in recovered.items()}
        return {"attacks": attacks | {"shortcut": {"highest": "low"}}, "membership_auc": auc}

    assert leakage_score(row({"tldr": 0, "kkt": 3}, 0.75)) == pytest.approx(3.5)
    assert leakage_score(row({"tldr": None}, 0.40)) == 0.0          # below chance is no leakage, not negative leakage
    assert leakage_score(row({}, 1.0)) == pytest.approx(0.99)        # capped: one recovered member outranks any advantage
    assert leakage_score(row({"kkt": 1}, 1.0)) > leakage_score(row({}, 1.0))
    assert leakage_score(row({"tldr": 2}, None)) == 2.0              # membership did not run: recovered members only
    assert leakage_score(row({}, None)) is None                      # nothing measured: no score, not zero
    refreshed = refresh_scores(row({"tldr": 0, "kkt": 3}, 0.75))
    assert refreshed["score_attack"] == "kkt" and refreshed["reconstruction_score"] == pytest.approx(3.01)
    assert refreshed["distinct_members"] == 3 and refreshed["score"] == pytest.approx(3.5)


def test_spearman_against_the_rank_formula_and_bars() -> None:
    sizes, scores = [50, 100, 500, 2000, 10000], [0.30, 0.05, 0.10, -0.02, 0.01]
    entries = [_entry(f"mlp-{n}", "mlp", n, s) for n, s in zip(sizes, scores)]
    entries += [_entry("dp", "tinycnn-dp", 5000, 0.0, kind="control", alarms=("membership: medium: x",)),
                _entry("leak", "kkt-mlp", 100, 0.5, kind="known_leak", highest="medium")]
    # no ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1)) between the ranks of the score and of -log n
    def rank(xs):
        return [sorted(xs).index(x) + 1 for x in xs]
    d2 = sum((a - b) ** 2 for a, b in zip(rank(scores), rank([-math.log(n) for n in sizes])))
    expected = 1 - 6 * d2 / (5 * (25 - 1))
    by = {c["check"]: c for c in checks(entries)}
    mono = by["Spearman(score, -log n) for mlp >= 0.9"]
    assert mono["value"] == pytest.approx(expected) and not mono["passed"] and mono["miss"] == pytest.approx(0.9 - expected)
    alarms = by["findings at MEDIUM or above on models of >= 10,000 images and the DP model"]
    assert alarms["value"] == 1 and not alarms["passed"] and "dp" in alarms["covers"] and "mlp-10000" in alarms["covers"]
    leak = by["leak gets a HIGH finding from a leakage attack"]  # shortcut's HIGH is not a leak found
    assert not leak["passed"] and "highest medium" in leak["miss"]


def test_spearman_exactly_at_the_bar_passes() -> None:
    """One adjacent swap among five sizes: rho = 1 - 6*2/(5*24) = 0.9 exactly, which scipy returns as 0.8999999999999998."""
    sizes, scores = [50, 100, 500, 2000, 10000], [0.036, 0.023, 0.016, 0.006, 0.009]
    aucs = [0.95, 0.9, 0.7, 0.6, 0.5]  # the second axis, strictly falling with n: rho 1
    entries = [{**_entry(f"mlp-{n}", "mlp", n, s), "membership_auc": a} for n, s, a in zip(sizes, scores, aucs)]
    by = {c["check"]: c for c in checks(entries)}
    mono = by["Spearman(score, -log n) for mlp >= 0.9"]
    assert mono["value"] == 0.9 and mono["passed"] and mono["miss"] == 0.0
    assert "membership AUC: 1.00" in mono["aside"]


def test_scaled_logit_is_log_odds_of_the_label() -> None:
    """LiRA's statistic log p_y - log sum_{j != y} p_j equals log(p_y / (1 - p_y)) from the softmax directly."""
    from verdict_audit import scaled_logits

    from auditor import from_module

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    model = from_module(net.eval(), num_classes=4, input_shape=(1, 4, 4), mean=(0.0,), std=(1.0,))
    x, y = torch.rand(9, 1, 4, 4), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0])
    p = torch.softmax(net(x).double(), 1).gather(1, y[:, None])[:, 0].detach()
    torch.testing.assert_close(scaled_logits(model, x, y), torch.log(p / (1 - p)))


def test_reference_set_is_unused_training_images_balanced(datasets) -> None:
    """The ladder's non-members: class-balanced MNIST training images, none equal to a member; the test set when too few are left."""
    from verdict_ladder import REFERENCE_SIZE, reference_set

    from auditor.data.sets import LabeledImages, balanced_subset, load_images
    from auditor.lab.presets import preset

    train = load_images(preset("mnist").train)
    members = train.subset(balanced_subset(train.labels.numpy(), 2000, 0))
    reference, source = reference_set(members)
    assert source.startswith("mnist-train-unused") and len(reference) == REFERENCE_SIZE
    assert torch.bincount(reference.labels, minlength=10).tolist() == [REFERENCE_SIZE // 10] * 10
    flat_ref, flat_mem = reference.images.flatten(1), members.images.flatten(1)
    for chunk in flat_ref.split(2000):   # no reference image equals any member (direct pixel comparison)
        assert not (torch.cdist(chunk, flat_mem) == 0).any()
    everything = LabeledImages(train.images, train.labels, "all")
    test_set, source = reference_set(everything)
    assert source.startswith("mnist-test") and len(test_set) == len(load_images(preset("mnist").test))


def test_section_names_reference_sources_and_ladder_options() -> None:
    from verdict_checks import _ladder_options, _sources

    a = {"row": "mlp-50", "reference_source": "mnist-train-unused", "options": {"membership": {"reference_models": 2}, "kkt": {}}}
    b = {"row": "mlp-60000", "reference_source": "mnist-test", "options": {"membership": {"reference_models": 2}}}
    c = {"row": "old", "options": {}}
    assert _sources([a]) == "mnist-train-unused"
    assert _sources([a, b, {**a, "row": "mlp-100"}]) == "mnist-train-unused (mlp-50, mlp-100); mnist-test (mlp-60000)"
    assert _sources([c]) == "the 10,000 MNIST test images"
    assert _ladder_options([a, b]) == " membership: reference_models = 2."
    assert _ladder_options([a, c]) == ""


def test_each_dataset_is_its_own_ladder() -> None:
    """MNIST and Fashion-MNIST rows of one architecture are ranked separately: each ladder needs its own order."""
    mnist = [_entry(f"mlp-{n}", "mlp", n, s) for n, s in ((50, 3.0), (500, 2.0), (10000, 1.0))]
    fashion = [{**_entry(f"fashion-mlp-{n}", "mlp", n, s), "dataset": "fashion-mnist"} for n, s in ((50, 1.0), (500, 2.0), (10000, 3.0))]
    found = {c["check"]: c for c in checks(mnist + fashion)}
    assert found["Spearman(score, -log n) for mlp >= 0.9"]["value"] == 1.0
    assert found["Spearman(score, -log n) for fashion-mnist mlp >= 0.9"]["value"] == -1.0


def test_reference_shift_section_counts_alarms_per_reference_set() -> None:
    from bench_reference_shift import render

    base = {"reference_source": "x", "rule": "auc", "seconds": 9.0, "auc": 0.56, "auc_ci_low": 0.55, "tpr_at_1pct_fpr": 0.02,
            "tpr_at_1pct_fpr_ci_low": 0.015, "members_above_heldout": 9.0, "exposure_p_value": 0.002, "members_scored": 5000.0,
            "heldout_scored": 5000.0}
    rows = [{**base, "row": "mlp-10000", "reference": "test", "severity": "medium"},
            {**base, "row": "mlp-10000", "reference": "unused-train", "severity": "low"},
            {**base, "row": "canary-mlp", "reference": "unused-train", "severity": "high"}]
    rows.append({**base, "row": "mlp-10000", "reference": "test", "severity": "low", "threads": 2})   # another thread count
    text = render({"rows": rows})
    assert text.startswith("<!-- bench_reference_shift:start -->") and text.rstrip().endswith("<!-- bench_reference_shift:end -->")
    assert "1 thread(s): 1 against the test set (mlp-10000), 0 against unused training images (none)" in text
    assert "2 thread(s): 0 against the test set (none), 0 against unused training images (none)" in text
    assert "| canary-mlp | unused-train | 1 | 0.560 [0.550] | 2.0% (≥ 1.5%) | not supported | 9 of 5,000 (0.002) | **high** (auc) | 9 |" in text
