"""The builtin ``membership`` plugin: every number against an independent computation.

Scores against float64 numpy and 50-digit mpmath, RMIA against the brute-force pairwise likelihood
ratio, thresholds against the exact beta-binomial / binomial bands of their held-out FPR, AUC against
scikit-learn, then RMIA on tiny models where members are and are not separable, and one ``audit run``
through the CLI with the plugin found through its entry point.
"""
from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
import torch
from scipy.stats import beta, betabinom, binomtest

from auditor.core.attack import RunContext
from auditor.core.results import AttackResult, Severity
from auditor.data.sets import AuditData, LabeledImages
from auditor.models.model import from_module
from auditor_membership import MembershipConfig, MembershipInference, rmia
from auditor_membership.calibration import class_pvalues, conformal_rank, set_thresholds, split_reference
from auditor_membership.metrics import auc, best_balanced_accuracy, exact_rate, exposed_members
from auditor_membership.signals import all_scores

CTX = RunContext(device=torch.device("cpu"), seed=0, show_progress=False)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_scores_match_a_direct_computation():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (200, 7))
    y = rng.integers(0, 7, 200)
    p = _softmax(z)
    rows = np.arange(200)
    py, pmax = p[rows, y], p.max(1)
    mentr = -(1 - py) * np.log(py) - np.array([sum(p[i, j] * np.log(1 - p[i, j]) for j in range(7) if j != y[i]) for i in rows])
    got = all_scores(z, y)
    np.testing.assert_allclose(got["loss"], np.log(py), rtol=1e-10)
    np.testing.assert_allclose(got["confidence"], np.log(pmax / (1 - pmax)), rtol=1e-9)
    np.testing.assert_allclose(got["modified_entropy"], -mentr, rtol=1e-9)
    np.testing.assert_allclose(got["scaled_logit"], np.log(py / (1 - py)), rtol=1e-9)


def test_scores_stay_exact_for_confident_predictions():
    """Where p_y rounds to 1 in float64, the scores still match 50-digit arithmetic (no ties, no infinities)."""
    z = np.array([[60.0, 0.0, -3.0], [45.0, 2.0, 1.0], [80.0, 79.0, -10.0], [-5.0, 40.0, 0.5]])
    y = np.array([0, 0, 0, 0])
    got = all_scores(z, y)
    mpmath.mp.dps = 50
    for i, row in enumerate(z):
        e = [mpmath.e ** mpmath.mpf(v) for v in row]
        p = [v / sum(e) for v in e]
        k = int(y[i])
        assert got["loss"][i] == pytest.approx(float(mpmath.log(p[k])), rel=1e-9, abs=1e-30)
        assert got["scaled_logit"][i] == pytest.approx(float(mpmath.log(p[k] / (1 - p[k]))), rel=1e-9)
        top = max(range(3), key=lambda j: p[j])
        assert got["confidence"][i] == pytest.approx(float(mpmath.log(p[top] / (1 - p[top]))), rel=1e-9)
        mentr = -(1 - p[k]) * mpmath.log(p[k]) - sum(p[j] * mpmath.log(1 - p[j]) for j in range(3) if j != k)
        assert got["modified_entropy"][i] == pytest.approx(-float(mentr), rel=1e-9, abs=1e-300)
    assert len(set(got["scaled_logit"][:2])) == 2 and np.isfinite(list(got.values())).all()


def _rmia_bruteforce(p_x, p_out_x, p_z, p_out_z, a, gamma, self_index=None):
    pr_x = ((1 + a) * p_out_x + 1 - a) / 2
    pr_z = ((1 + a) * p_out_z + 1 - a) / 2
    out = []
    for i in range(len(p_x)):
        hits, total = 0, 0
        for j in range(len(p_z)):
            if self_index is not None and self_index[i] == j:
                continue
            total += 1
            hits += (p_x[i] / pr_x[i]) / (p_z[j] / pr_z[j]) > gamma
        out.append(hits / total)
    return np.array(out)


@pytest.mark.parametrize(("a", "gamma"), [(0.3, 1.0), (0.0, 2.0), (0.6, 1.5)])
def test_rmia_matches_the_pairwise_likelihood_ratio(a, gamma):
    rng = np.random.default_rng(1)
    p_x, p_z = rng.uniform(0.01, 0.999, 60), rng.uniform(0.01, 0.999, 80)
    # no reference models: Pr_OUT is the target's own probability
    got = rmia.rmia_scores(rmia.log_ratio(np.log(p_x), np.log(p_x), a), rmia.log_ratio(np.log(p_z), np.log(p_z), a), gamma)
    np.testing.assert_array_equal(got, _rmia_bruteforce(p_x, p_x, p_z, p_z, a, gamma))
    # reference models: Pr_OUT is the mean probability over OUT models; the population compares against the others
    ref_z = rng.uniform(0.01, 0.999, (80, 4))
    out_mask = np.zeros((80, 4), dtype=bool)
    out_mask[:, [0, 2]] = rng.random(80)[:, None] < 0.5
    out_mask[:, [1, 3]] = ~out_mask[:, [0, 2]]
    p_out_z = np.array([ref_z[i, out_mask[i]].mean() for i in range(80)])
    ratio_z = rmia.log_ratio(np.log(p_z), rmia.log_mean_probability(np.log(ref_z), out_mask), a)
    got = rmia.rmia_scores(ratio_z, ratio_z, gamma, np.arange(80))
    np.testing.assert_allclose(got, _rmia_bruteforce(p_z, p_out_z, p_z, p_out_z, a, gamma, np.arange(80)))


def test_offline_lira_matches_a_direct_computation():
    """φ_target minus the mean scaled logit over the OUT reference models, with φ computed from softmax probabilities."""
    from auditor_membership.lira import offline_scores

    rng = np.random.default_rng(5)
    z_target, z_ref = rng.normal(0, 3, (40, 4)), rng.normal(0, 3, (40, 4, 6))   # 40 examples, 4 classes, 6 reference models
    y = rng.integers(0, 4, 40)
    out_mask = rng.random((40, 6)) < 0.5
    out_mask[:, 0] = True                                                          # every example has an OUT model
    def phi(z, i):
        return np.log(_softmax(z[None])[0, y[i]] / (1 - _softmax(z[None])[0, y[i]]))
    expected = [phi(z_target[i], i) - np.mean([phi(z_ref[i, :, k], i) for k in range(6) if out_mask[i, k]]) for i in range(40)]
    phi_ref = np.stack([all_scores(z_ref[:, :, k], y)["scaled_logit"] for k in range(6)], axis=1)
    np.testing.assert_allclose(offline_scores(all_scores(z_target, y)["scaled_logit"], phi_ref, out_mask), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="no reference model"):
        offline_scores(np.zeros(2), np.zeros((2, 2)), np.array([[True, False], [False, False]]))


def test_thresholds_reach_their_fpr_on_held_out_non_members():
    """k-th largest of n calibration scores: the held-out count flagged is BetaBinomial(n_h, k, n + 1 - k) exactly."""
    rng = np.random.default_rng(2)
    alpha, n_cal, n_held = 0.01, 399, 4000           # per class: k = floor(0.01 * 400) = 4
    classes = np.arange(3)
    inside, fprs = 0, []
    for _ in range(40):
        cal_labels, held_labels = np.repeat(classes, n_cal), np.repeat(classes, n_held)
        shift = np.array([0.0, 3.0, -2.0])            # classes on different scales: one global threshold would be wrong
        cal = rng.normal(size=len(cal_labels)) + shift[cal_labels]
        held = rng.normal(size=len(held_labels)) + shift[held_labels]
        t = set_thresholds(cal, cal_labels, alpha, classes, len(held))
        assert t.mode == "per_class"
        flagged = t.flags(held, held_labels)
        k = conformal_rank(n_cal, alpha)
        for c in classes:
            count = int(flagged[held_labels == c].sum())
            lo, hi = betabinom(n_held, k, n_cal + 1 - k).ppf([0.0005, 0.9995])
            inside += lo <= count <= hi
        fprs.append(flagged.mean())
    assert inside >= 118                               # 120 checks at a 99.9% band
    # over repeated calibrations the FPR averages k / (n + 1) = alpha: exact binomial test on the pooled count
    pooled = int(round(np.sum(fprs) * 3 * n_held))
    assert binomtest(pooled, 40 * 3 * n_held, k / (n_cal + 1)).pvalue > 1e-3 or abs(np.mean(fprs) - alpha) < 1.5e-3


def test_unsupported_fprs_say_why_and_small_classes_fall_back_to_one_threshold():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 50)              # 50 per class: per-class 1% FPR needs 99
    scores = rng.normal(size=500)
    t = set_thresholds(scores, labels, 0.01, np.arange(10), n_held_out=500)
    assert t.mode == "global" and "99" in t.reason and t.global_value == np.sort(scores)[::-1][conformal_rank(500, 0.01) - 1]
    t = set_thresholds(scores, labels, 0.001, np.arange(10), n_held_out=500)
    assert t.mode == "unsupported" and "1000" in t.reason
    t = set_thresholds(scores, labels, 0.001, np.arange(10), n_held_out=5000)
    assert t.mode == "unsupported" and "999" in t.reason


def test_metrics_against_scikit_learn_and_the_beta_quantiles():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(4)
    m, n = rng.normal(0.4, 1, 300).round(1), rng.normal(0, 1, 500).round(1)   # rounded: ties
    y, s = np.r_[np.ones(300), np.zeros(500)], np.r_[m, n]
    assert auc(m, n) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert best_balanced_accuracy(m, n) == pytest.approx(((tpr + 1 - fpr) / 2).max(), abs=1e-12)
    est = exact_rate(7, 200, 0.95)
    assert (est.low, est.high) == pytest.approx((beta.ppf(0.025, 7, 194), beta.ppf(0.975, 8, 193)), rel=1e-6)
    cal, cal_labels = np.array([1.0, 2.0, 3.0, 10.0, 20.0]), np.array([0, 0, 0, 1, 1])
    np.testing.assert_allclose(class_pvalues(cal, cal_labels, np.array([2.5, 0.0, 15.0]), np.array([0, 0, 1])), [2 / 4, 4 / 4, 2 / 3])
    cal_idx, held_idx = split_reference(np.repeat(np.arange(4), 10), 0.5, rng)
    assert len(np.intersect1d(cal_idx, held_idx)) == 0 and len(cal_idx) == len(held_idx) == 20


def _noise_set(n: int, seed: int, classes: int = 3) -> LabeledImages:
    g = torch.Generator().manual_seed(seed)
    return LabeledImages(torch.rand((n, 1, 16, 16), generator=g), torch.randint(0, classes, (n,), generator=g), f"noise:{seed}")


def _memorise(images: LabeledImages, steps: int, seed: int = 0) -> torch.nn.Module:
    from auditor.lab.testing import TinyNet

    torch.manual_seed(seed)
    net = TinyNet(1, 3, 16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(net(images.images), images.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _attack(net: torch.nn.Module, members: LabeledImages, reference: LabeledImages, **options):
    model = from_module(net, num_classes=3, input_shape=(1, 16, 16), source="python:TinyNet")
    attack = MembershipInference(MembershipConfig(bootstrap_rounds=200, **options))
    out = attack.run(model, AuditData(members, reference, 3, ("a", "b", "c")), CTX)
    return attack, out


@pytest.fixture(scope="module")
def memorised():
    members = _noise_set(60, 10)  # random labels on noise: only memorisation can fit them
    return members, _memorise(members, 150)


def test_rmia_separates_members_a_model_memorised(memorised):
    members, net = memorised
    attack, out = _attack(net, members, _noise_set(400, 11))
    assert out.metrics["members_accuracy"] > 0.95 and out.metrics["heldout_accuracy"] < 0.6
    assert out.metrics["rmia_auc"] > 0.95 and out.metrics["rmia_auc_ci_low"] > 0.9
    result = AttackResult(attack="membership", status="completed", metrics=out.metrics)
    (found,) = attack.assess(result)
    assert found.severity is Severity.HIGH


@pytest.mark.parametrize(("n", "m", "k"), [(5, 7, 0), (5, 7, 1), (5, 7, 3), (6, 4, 6), (3, 9, 2)])
def test_exposure_chance_matches_enumerating_every_ranking(n, m, k):
    """P(k or more members above every non-member) under exchangeable scores, by enumerating where the members can rank."""
    from itertools import combinations

    from scipy.stats import hypergeom

    members = np.r_[np.arange(k) + 100.0, np.zeros(n - k)]      # k above every non-member, the rest below
    nonmembers = np.ones(m)
    found, p = exposed_members(members, nonmembers)
    # ranks 0..n+m-1 (0 = top); k or more members above every non-member <=> the top k ranks are all members
    placements = list(combinations(range(n + m), n))
    exact = sum(set(range(k)) <= set(c) for c in placements) / len(placements)
    assert found == k and p == pytest.approx(exact, rel=1e-12)
    assert p == pytest.approx(hypergeom.sf(k - 1, n + m, n, k), rel=1e-9)
    ties = exposed_members(np.r_[1.0, 2.0], np.r_[1.0, 0.0])     # a tie with the best non-member is not above it
    assert ties[0] == 1


def test_exposed_members_are_reported_where_a_model_memorised(memorised):
    from auditor_membership.attack import evaluation_split

    members, net = memorised
    reference = _noise_set(400, 11)
    _, out = _attack(net, members, reference)
    k, p = out.metrics["members_above_heldout"], out.metrics["exposure_p_value"]
    # by hand: the primary score (scaled logit, z_y - logsumexp_{j != y} z_j) of the members and of the held-out part
    _, r_idx, _, held_pos = evaluation_split(60, reference.labels.numpy(), 5000, 10000, 0.5, CTX.seed)

    def phi(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z = net(x).double()
        others = z.scatter(1, y[:, None], float("-inf"))
        return z.gather(1, y[:, None])[:, 0] - torch.logsumexp(others, 1)

    held = torch.from_numpy(r_idx[held_pos])
    top = phi(reference.images[held], reference.labels[held]).max()
    above = phi(members.images, members.labels) > top
    assert k == int(above.sum()) >= 10 and p < 1e-6
    assert any(note.startswith(f"Exposed members: {int(k)} of the 60 members") for note in out.notes)
    table = next(t for t in out.tables if t.title == "Most exposed members")
    indices = [row[0] for row in table.rows]
    assert len(indices) == 20 == len(set(indices)) and all(0 <= i < 60 for i in indices)
    assert [row[-1] == "yes" for row in table.rows] == [bool(above[i]) for i in indices]
    _, fresh = _attack(net, _noise_set(300, 12), _noise_set(600, 13))   # never trained on: nothing stands out
    assert fresh.metrics["exposure_p_value"] > 1e-3


def test_rmia_finds_nothing_where_members_were_never_trained_on(memorised):
    _, net = memorised  # the "members" below were never seen: same distribution as the non-members
    attack, out = _attack(net, _noise_set(300, 12), _noise_set(600, 13))
    assert abs(out.metrics["rmia_auc"] - 0.5) < 0.07
    assert out.metrics["rmia_auc_ci_low"] < 0.5 < out.metrics["rmia_auc_ci_high"]
    (found,) = attack.assess(AttackResult(attack="membership", status="completed", metrics=out.metrics))
    assert found.severity in (Severity.INFO, Severity.LOW)


@pytest.mark.parametrize(("tpr_low", "auc_low", "expected", "metric"), [
    (0.002, 0.48, Severity.INFO, "tpr_at_1pct_fpr"),
    (0.012, 0.52, Severity.LOW, "tpr_at_1pct_fpr"),
    (0.005, 0.52, Severity.LOW, "auc"),
    (0.031, 0.55, Severity.MEDIUM, "tpr_at_1pct_fpr"),
    (0.005, 0.66, Severity.MEDIUM, "auc"),
    (0.101, 0.55, Severity.HIGH, "tpr_at_1pct_fpr"),
    (0.099, 0.81, Severity.HIGH, "auc"),
    (None, 0.70, Severity.MEDIUM, "auc"),             # 1% FPR not supported: the AUC rules alone
])
def test_documented_severity_rules(tpr_low, auc_low, expected, metric):
    mx = {"auc": auc_low + 0.02, "auc_ci_low": auc_low, "auc_ci_high": auc_low + 0.04, "members_scored": 1000.0,
          "heldout_scored": 2500.0, "reference_models": 0.0}
    if tpr_low is not None:
        mx |= {"tpr_at_1pct_fpr": tpr_low + 0.01, "tpr_at_1pct_fpr_ci_low": tpr_low, "tpr_at_1pct_fpr_ci_high": tpr_low + 0.02,
               "heldout_fpr_at_1pct": 0.01}
    (found,) = MembershipInference().assess(AttackResult(attack="membership", status="completed", metrics=mx))
    assert (found.severity, found.metric) == (expected, metric)


@pytest.mark.parametrize(("tpr_low_1", "tpr_low_01", "heldout_01", "expected", "metric"), [
    (0.02, 0.015, 0.001, Severity.HIGH, "tpr_at_0.1pct_fpr"),     # 1.5% > 10 x 0.1%: the low-FPR reading decides
    (0.02, 0.015, 0.002, Severity.MEDIUM, "tpr_at_0.1pct_fpr"),   # the held-out FPR reached 0.2%: 1.5% < 10 x 0.2% but > 3 x 0.2%
    (0.02, 0.0045, 0.001, Severity.MEDIUM, "tpr_at_0.1pct_fpr"),  # 4.5 x 0.1% only
    (0.004, 0.0009, 0.001, Severity.INFO, "tpr_at_1pct_fpr"),
])
def test_severity_reads_every_supported_fpr(tpr_low_1, tpr_low_01, heldout_01, expected, metric):
    """A low-FPR reading (LiRA's point: an attack that is right about a few examples) can raise the level, measured against
    the FPR the held-out non-members actually reached when that exceeds the target."""
    mx = {"auc": 0.55, "auc_ci_low": 0.49, "auc_ci_high": 0.58, "members_scored": 1000.0, "heldout_scored": 5000.0,
          "reference_models": 0.0, "tpr_at_1pct_fpr": tpr_low_1 + 0.01, "tpr_at_1pct_fpr_ci_low": tpr_low_1,
          "tpr_at_1pct_fpr_ci_high": tpr_low_1 + 0.02, "heldout_fpr_at_1pct": 0.01, "tpr_at_0.1pct_fpr": tpr_low_01 + 0.005,
          "tpr_at_0.1pct_fpr_ci_low": tpr_low_01, "tpr_at_0.1pct_fpr_ci_high": tpr_low_01 + 0.01, "heldout_fpr_at_0.1pct": heldout_01}
    (found,) = MembershipInference().assess(AttackResult(attack="membership", status="completed", metrics=mx))
    assert (found.severity, found.metric) == (expected, metric)
    assert "0.1% FPR" in found.detail and "1.0% FPR" in found.detail
    (only_1pct,) = MembershipInference(MembershipConfig(severity_fpr=0.01)).assess(   # the pre-0.1% option still reads
        AttackResult(attack="membership", status="completed", metrics=mx))
    assert only_1pct.metric != "tpr_at_0.1pct_fpr"


def test_clone_reference_factory_reinitialises_the_targets_architecture():
    from auditor import UsageError
    from auditor_membership.reference import resolve_factory

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 14 * 14, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)                                              # "trained" weights, easy to recognise
        net[1].running_mean.fill_(0.7)
    target = from_module(net, num_classes=3, input_shape=(1, 16, 16))
    twin = resolve_factory("clone", target)((1, 16, 16), 3)
    assert [type(m) for m in twin.modules()] == [type(m) for m in net.modules()]
    for (name, p), q in zip(twin.named_parameters(), net.parameters()):
        assert p.shape == q.shape and not torch.equal(p, q), name  # same shape, none of the target's values kept
    assert float(twin[1].running_mean.abs().max()) == 0.0          # batch-norm statistics reset too
    assert float(net[0].weight.mean()) == 0.5                      # the target itself untouched

    class Frozen(torch.nn.Module):                                   # a parameter without reset_parameters
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :3] * self.w

    with pytest.raises(UsageError, match="Frozen.*cannot be re-initialised"):
        resolve_factory("clone", from_module(Frozen(), num_classes=3, input_shape=(1, 16, 16)))


def test_config_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="high thresholds"):
        MembershipConfig(medium_ratio=5, high_ratio=4)
    with pytest.raises(ValidationError, match="even"):
        MembershipConfig(reference_models=3, reference_factory="m:f")
    with pytest.raises(ValidationError):
        MembershipConfig(rmia_a=1.0)


def test_reference_models_are_trained_within_budget(memorised):
    from auditor_membership.reference import tinycnn, train_reference_models

    members, net = memorised
    _, out = _attack(net, members, _noise_set(200, 14), reference_models=2,
                     reference_factory="auditor_membership.reference:tinycnn", reference_epochs=2, max_reference=200)
    assert out.metrics["reference_models"] == 2 and 0.0 <= out.metrics["rmia_auc"] <= 1.0 and 0.0 <= out.metrics["lira_auc"] <= 1.0
    assert any("2 reference models" in n for n in out.notes) and "rmia (primary)" in [r[0] for r in out.tables[0].rows]
    pool = _noise_set(60, 15)
    target = from_module(net, num_classes=3, input_shape=(1, 16, 16))
    nets, in_mask, facts = train_reference_models(target, tinycnn, pool.images, pool.labels, 4, epochs=1, lr=1e-3, batch_size=16,
                                                  budget_s=60, ctx=CTX, train_size=20)
    assert [f["epochs"] for f in facts] == [1.0] * 4
    assert len(nets) == 4 and in_mask.shape == (60, 4) and (in_mask.sum(0) == 20).all()
    assert not (in_mask[:, 0] & in_mask[:, 1]).any() and not (in_mask[:, 2] & in_mask[:, 3]).any()   # pairs: disjoint halves
    assert (~in_mask).any(axis=1).all()                                                               # every sample has an OUT model
    nets, in_mask, _ = train_reference_models(target, tinycnn, pool.images, pool.labels, 4, epochs=1, lr=1e-3, batch_size=16,
                                              budget_s=1e-9, ctx=CTX)
    assert nets == [] and in_mask.shape == (60, 0)                                                    # budget spent: none


def test_reference_models_train_until_they_fit_as_tightly_as_the_target():
    """reference_fit = "match": training stops at the first epoch whose mean training loss (checked here with a separate
    cross-entropy over the whole set) is at most the target's member loss."""
    import time

    from auditor_membership.reference import fit, tinycnn

    pool = _noise_set(40, 16)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
    facts = fit(net, pool.images, pool.labels, epochs=300, lr=3e-3, batch_size=8, seed=0, deadline=time.monotonic() + 60,
                target_loss=0.05)
    with torch.no_grad():
        loss = float(torch.nn.functional.cross_entropy(net(pool.images), pool.labels))
    assert 1 < facts["epochs"] < 300 and loss <= 0.05 and facts["train_loss"] == pytest.approx(loss, rel=1e-5)
    capped = fit(tinycnn((1, 16, 16), 3), pool.images, pool.labels, epochs=2, lr=1e-3, batch_size=8, seed=0,
                 deadline=time.monotonic() + 60, target_loss=1e-9)
    assert capped["epochs"] == 2 and capped["train_loss"] > 1e-9     # the epoch cap wins over an unreachable loss
    late = fit(tinycnn((1, 16, 16), 3), pool.images, pool.labels, epochs=5, lr=1e-3, batch_size=8, seed=0,
               deadline=time.monotonic() - 1)
    assert late["epochs"] == 1                                        # past the deadline: one epoch, never an untrained model


def test_every_example_gets_one_out_model_per_pair():
    """Calibration and evaluation scores come from equally many OUT models (exchangeable), never from an IN model."""
    from auditor_membership.reference import matched_out_mask

    rng = np.random.default_rng(6)
    in_mask = np.zeros((500, 6), dtype=bool)
    for pair in range(3):
        side = rng.integers(0, 3, 500)                      # IN for the first, the second, or neither model of the pair
        in_mask[:, 2 * pair], in_mask[:, 2 * pair + 1] = side == 0, side == 1
    out = matched_out_mask(in_mask, rng)
    assert (out[:, 0::2] ^ out[:, 1::2]).all() and not (out & in_mask).any()
    free = ~in_mask[:, 0] & ~in_mask[:, 1]                  # neither trained on it: a fair coin picks the model
    assert 0.4 < out[free, 0].mean() < 0.6
    with pytest.raises(ValueError, match="disjoint"):
        matched_out_mask(np.ones((2, 2), dtype=bool), rng)


def test_audit_run_finds_the_builtin_through_its_entry_point(tiny_onnx_path, audit_data, tmp_path):
    from auditor.cli.main import main
    from auditor.engine.plugins import get_plugin_manager

    pm = get_plugin_manager()
    assert pm.records["membership"].distribution == "auditor"
    np.savez(tmp_path / "m.npz", x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(tmp_path / "r.npz", x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())
    common = ["-q", "run", str(tiny_onnx_path), "--members", str(tmp_path / "m.npz"), "--reference", str(tmp_path / "r.npz"),
              "--plugins", "membership", "--fail-on", "never"]
    assert main([*common, "--out", str(tmp_path / "public"), "--no-member-images"]) == 0
    assert main([*common, "--out", str(tmp_path / "private")]) == 0
    public = json.loads((tmp_path / "public" / "report.json").read_text())
    (result,) = public["results"]
    assert (result["attack"], result["plugin"], result["status"]) == ("membership", "membership", "completed")
    assert {"auc", "auc_ci_low", "tpr_at_1pct_fpr", "rmia_auc", "loss_auc", "modified_entropy_auc"} <= set(result["metrics"]) or \
        "fpr_1pct_supported" in result["metrics"]
    assert len(result["findings"]) == 1 and result["scores"] is None
    titles = [f["title"] for f in result["figures"]]
    assert "Most exposed members" not in titles and any("ROC" in t for t in titles)
    private = json.loads((tmp_path / "private" / "report.json").read_text())
    shown = [f for f in private["results"][0]["figures"] if f["title"] == "Most exposed members"]
    assert len(shown) == 1 and shown[0]["private"]
