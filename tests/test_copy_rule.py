"""The copy rule's statistics against direct computations: conformal coverage, pooling, the binomial
decision, the null-centred gap, and the null's exceedance rate through the whole scoring path."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import binom

from auditor.core.results import AttackResult, SampleScore, Scores, Severity
from auditor.core.severity import copy_severity, reconstruction_findings
from auditor.data.sets import AuditData, LabeledImages
from auditor.engine.config import SeverityThresholds
from auditor.scoring import ScoringConfig, score_reconstructions
from auditor.scoring.calibration import calibration_need, conformal_threshold, copy_p_value, fit_copy_rule, tpr_at_null_fpr


def _brute_threshold(values: np.ndarray, alpha: float) -> float | None:
    """Smallest value v with #{values <= v} >= (n+1)(1-alpha); None if none."""
    n = len(values)
    for v in sorted(values):
        if (values <= v).sum() >= (n + 1) * (1 - alpha) - 1e-9:
            return float(v)
    return None


@pytest.mark.parametrize(("n", "alpha"), [(9, 0.1), (99, 0.01), (150, 0.05), (37, 0.05), (5, 0.1)])
def test_conformal_threshold_is_the_order_statistic(n: int, alpha: float) -> None:
    values = np.random.default_rng(n).normal(size=n)
    assert conformal_threshold(values, alpha) == _brute_threshold(values, alpha)
    assert (conformal_threshold(values, alpha) is None) == (n < calibration_need(alpha))


def test_calibration_need() -> None:
    assert [calibration_need(a) for a in (0.01, 0.05, 0.1, 0.001, 0.03)] == [99, 19, 9, 999, 33]


@pytest.mark.parametrize(("n", "alpha"), [(99, 0.01), (40, 0.05), (19, 0.05), (200, 0.1)])
def test_conformal_coverage_over_many_draws(n: int, alpha: float) -> None:
    """A fresh exchangeable value exceeds the threshold with probability (n+1-k)/(n+1) <= alpha, k = ceil((n+1)(1-alpha))."""
    draws = 4000
    rng = np.random.default_rng(n + int(1000 * alpha))
    sample = rng.gamma(2.0, size=(draws, n + 1))  # any continuous distribution
    thresholds = np.array([conformal_threshold(row[:n], alpha) for row in sample])
    exceed = int((sample[:, n] > thresholds).sum())
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    exact = (n + 1 - k) / (n + 1)
    assert exact <= alpha + 1e-12
    low, high = binom.ppf(0.0005, draws, exact), binom.ppf(0.9995, draws, exact)
    assert low <= exceed <= high, (exceed, low, high)


def test_pooling_of_small_classes() -> None:
    rng = np.random.default_rng(0)
    cal = {0: rng.normal(size=150), 1: rng.normal(1.0, size=20), 2: rng.normal(size=99)}
    rule = fit_copy_rule(cal, 0.01)
    assert rule.calibrated_at_requested and rule.pooled == [1]
    pooled = np.concatenate(list(cal.values()))
    assert rule.thresholds[1] == _brute_threshold(pooled, 0.01)
    assert rule.thresholds[0] == _brute_threshold(cal[0], 0.01) and rule.thresholds[2] == cal[2].max()
    assert "fewer than 99 calibration images" in rule.describe({0: "a", 1: "b", 2: "c"}) and "b (20)" in rule.describe({1: "b"})


def test_too_few_overall_is_uncalibrated_at_alpha() -> None:
    cal = {0: np.arange(30.0), 1: np.arange(20.0)}
    rule = fit_copy_rule(cal, 0.01)
    assert not rule.calibrated_at_requested and rule.alpha == pytest.approx(1 / 51)
    assert rule.thresholds == {0: 29.0, 1: 29.0} and rule.pooled == [0, 1]
    assert "uncalibrated at alpha = 0.01" in rule.describe({}) and "50 in all" in rule.describe({})
    assert fit_copy_rule({}, 0.01).alpha is None


@pytest.mark.parametrize(("copies", "n", "rate"), [(0, 100, 0.01), (1, 100, 0.01), (3, 100, 0.01), (5, 100, 0.01),
                                                   (10, 200, 0.012), (12, 12, 0.05)])
def test_binomial_p_value_against_direct_sum(copies: int, n: int, rate: float) -> None:
    direct = sum(math.comb(n, x) * rate ** x * (1 - rate) ** (n - x) for x in range(copies, n + 1))
    assert copy_p_value(copies, n, rate) == pytest.approx(direct, rel=1e-9, abs=1e-15)


def _scores(copies: int, n: int, null_rate: float, distinct: int) -> Scores:
    samples = [SampleScore(index=i, label=0, nearest_member=i % max(distinct, 1), nearest_member_ssim=0.9, likely_copy=i < copies)
               for i in range(n)]
    return Scores(calibrated=True, samples=samples, likely_copies=copies, distinct_members_recovered=distinct,
                  null_copy_rate=null_rate, copy_null_rate=null_rate, alpha=0.01, alpha_requested=0.01, copy_rule_calibrated=True,
                  copy_expected_by_null=null_rate * n, copy_p_value=copy_p_value(copies, n, null_rate))


@pytest.mark.parametrize(("copies", "n", "distinct", "expected"), [
    (3, 100, 3, None),               # p = 0.079 at rate 0.01: within the null
    (5, 100, 1, Severity.MEDIUM),    # p = 0.0034 but one member
    (5, 100, 5, Severity.MEDIUM),    # p = 0.0034 > 0.001
    (6, 100, 2, Severity.MEDIUM),    # p = 0.0005 but 2 < 3 distinct
    (6, 100, 3, Severity.HIGH),
    (10, 200, 10, Severity.HIGH),
    (0, 100, 0, None),
])
def test_severity_from_the_binomial_decision(copies: int, n: int, distinct: int, expected: Severity | None) -> None:
    s = _scores(copies, n, 0.01, distinct)
    assert copy_severity(s, SeverityThresholds()) == expected
    top = max(f.severity.rank for f in reconstruction_findings("x", AttackResult(attack="x", status="completed", scores=s)))
    assert top == (expected.rank if expected else 0)


def test_old_severity_and_scoring_keys_are_accepted_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="copy_share_high"):
        t = SeverityThresholds.model_validate({"copy_share_high": 0.05, "copy_share_medium": 0.01, "gap_medium": 0.03})
    assert t.gap_medium == 0.03 and t.copy_test_level == 0.01
    with pytest.warns(DeprecationWarning, match="bootstrap"):
        assert ScoringConfig.model_validate({"bootstrap": 50}).replicates == 50
    with pytest.warns(DeprecationWarning, match="percentile"):
        ScoringConfig.model_validate({"percentile": 95.0})


def test_tpr_at_null_fpr_needs_enough_null() -> None:
    rng = np.random.default_rng(1)
    null = {0: rng.normal(size=150), 1: rng.normal(size=150)}
    scores = {0: np.array([10.0, -10.0]), 1: np.array([10.0, 10.0, -10.0, 0.0])}
    assert tpr_at_null_fpr(scores, null, 0.01) == pytest.approx(3 / 6)
    assert tpr_at_null_fpr(scores, null, 0.001) is None  # 300 null values cannot support 0.1%


# --------------------------------------------------------------------------- through score_reconstructions


def smooth(n: int, gen: torch.Generator, size: int = 16, shift: float = 0.0) -> torch.Tensor:
    low = torch.rand(n, 1, size // 4, size // 4, generator=gen)
    return (F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False) * (1 - shift) + shift).clamp(0.0, 1.0)


def _data(members: int, reference: int, classes: int, seed: int, ref_shift: float = 0.0) -> AuditData:
    gen = torch.Generator().manual_seed(seed)
    mem = LabeledImages(smooth(members * classes, gen), torch.arange(classes).repeat_interleave(members), "members")
    ref = LabeledImages(smooth(reference * classes, gen, shift=ref_shift), torch.arange(classes).repeat_interleave(reference), "ref")
    return AuditData(mem, ref, classes, tuple("abc"[:classes]))


@pytest.mark.parametrize("comparison", ["affine", "ssim"])
def test_fresh_non_members_exceed_the_threshold_at_no_more_than_alpha(comparison: str) -> None:
    """Fresh images of the reference distribution, scored as reconstructions, are false positives by construction."""
    data = _data(members=30, reference=300, classes=3, seed=5)
    fresh = smooth(600, torch.Generator().manual_seed(55))
    cfg = ScoringConfig(comparison=comparison, alpha=0.05, replicates=0, baseline_per_class=None)
    s = score_reconstructions(fresh, torch.arange(3).repeat_interleave(200), data, config=cfg)
    assert s.copy_rule_calibrated and s.alpha == 0.05 and s.comparison == comparison
    assert s.likely_copies <= binom.ppf(0.999, 600, 0.05), s.likely_copies
    assert s.null_count == 450 and s.null_likely_copies <= binom.ppf(0.999, 450, 0.05)
    level = copy_severity(s, SeverityThresholds())
    assert level is None or s.copy_p_value > 0.001


@pytest.mark.parametrize("shift", [0.0, 0.25])
def test_null_centred_gap_is_centred_on_zero(shift: float) -> None:
    """Reconstructions drawn like the references: the raw gap carries any member/reference shift, the centred one does not."""
    gaps, covered, raw = [], 0, []
    for seed in range(6):
        data = _data(members=20, reference=60, classes=2, seed=seed, ref_shift=shift)
        fresh = smooth(40, torch.Generator().manual_seed(100 + seed), shift=shift)
        s = score_reconstructions(fresh, torch.arange(2).repeat_interleave(20), data,
                                  config=ScoringConfig(replicates=200, comparison="ssim"), seed=seed)
        assert s.gap_kind == "null_centred" and s.gap == pytest.approx(s.raw_gap - s.null_gap)
        gaps.append(s.gap)
        raw.append(s.raw_gap)
        covered += s.gap_ci_low <= 0.0 <= s.gap_ci_high
    assert covered >= 5, gaps
    assert abs(np.mean(gaps)) < 0.25 * np.std(gaps) + 0.01
    if shift:
        assert np.mean(raw) < -0.02  # the shift alone would read as negative leakage
        assert abs(np.mean(gaps)) < abs(np.mean(raw)) / 3


@pytest.mark.parametrize("k", [1, 2, 4, 7, 8])
def test_expected_max_against_all_subsets(k: int) -> None:
    import itertools

    from auditor.scoring.gap import expected_max

    s = np.random.default_rng(k).random((3, 8))
    brute = [np.mean([row[list(c)].max() for c in itertools.combinations(range(8), k)]) for row in s]
    np.testing.assert_allclose(expected_max(s, k), brute, atol=1e-12)
