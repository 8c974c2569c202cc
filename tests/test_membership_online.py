"""Online LiRA in the ``membership`` plugin (``reference_mode = "online"``), against independent computations.

The likelihood ratio against ``scipy.stats.norm`` on constructed numbers; the whole online path (pool, halves,
shadow scaled logits, split back into the three sets) against shadow models retrained here with the same seeds and
scored with a plain forward pass, ``scipy.stats.norm`` and scikit-learn's AUC; then tiny models where members are
separable (memorised noise) and where they are not (AUC about 0.5). Augmented queries (``query_augmentations =
"shifts"``): the shifts against ``numpy.pad`` and slicing, the summed likelihood ratio against ``scipy.stats.norm``
per query, summed by hand, and the online path with shifted queries against shadow models retrained here and
queried on numpy-shifted images.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from auditor.core.attack import RunContext
from auditor.core.results import AttackResult, Severity
from auditor.data.sets import AuditData, LabeledImages
from auditor.models.model import from_module
from auditor_membership import MembershipConfig, MembershipInference, augment, lira
from auditor_membership.metrics import auc
from auditor_membership.signals import all_scores

CTX = RunContext(device=torch.device("cpu"), seed=0, show_progress=False)
SHADOW = {"reference_mode": "online", "reference_models": 8, "reference_factory": "clone", "reference_epochs": 60,
          "reference_lr": 3e-3, "reference_batch_size": 32}


def _pairs_mask(n: int, pairs: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((n, 2 * pairs), dtype=bool)
    for p in range(pairs):
        side = rng.random(n) < 0.5
        mask[:, 2 * p], mask[:, 2 * p + 1] = side, ~side
    return mask


def _noise_set(n: int, seed: int, side: int = 12, classes: int = 3) -> LabeledImages:
    g = torch.Generator().manual_seed(seed)
    return LabeledImages(torch.rand((n, 1, side, side), generator=g), torch.randint(0, classes, (n,), generator=g), f"noise:{seed}")


def _log_p(f, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """log p_y of ``f``'s softmax, by a plain forward pass."""
    with torch.no_grad():
        return torch.log_softmax(f(x).double(), 1)[torch.arange(len(y)), y].numpy()


def _phi(log_p: np.ndarray) -> np.ndarray:
    return log_p - np.log1p(-np.exp(log_p))


def _lira_global_by_hand(phi_t: np.ndarray, phi: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log N(φ_t; μ_in, σ_in²) - log N(φ_t; μ_out, σ_out²), one σ per side pooled from each example's own deviations."""
    dev = {side: [phi[i, m[i]] - phi[i, m[i]].mean() for i in range(len(phi))] for side, m in (("in", mask), ("out", ~mask))}
    sd = {side: np.sqrt(sum(float(np.square(d).sum()) for d in dev[side]) / sum(len(d) - 1 for d in dev[side])) for side in dev}
    return np.array([norm.logpdf(phi_t[i], phi[i, mask[i]].mean(), sd["in"]) - norm.logpdf(phi_t[i], phi[i, ~mask[i]].mean(), sd["out"])
                     for i in range(len(phi))])


def test_online_lira_matches_the_gaussian_likelihood_ratio():
    rng = np.random.default_rng(3)
    n, pairs = 6, 3
    mask = _pairs_mask(n, pairs, rng)
    phi = rng.normal(0, 2, (n, 2 * pairs)) + 4.0 * mask
    target = rng.normal(1, 3, n)
    got, mode = lira.online_scores(target, phi, mask, "per_example")
    assert mode == "per_example"
    for i in range(n):
        a, b = phi[i, mask[i]], phi[i, ~mask[i]]
        want = norm.logpdf(target[i], a.mean(), a.std(ddof=1)) - norm.logpdf(target[i], b.mean(), b.std(ddof=1))
        assert got[i] == pytest.approx(want, rel=1e-10)
    # global: one spread per side, pooled from each example's deviations from its own mean
    dev_in = [x - phi[i, mask[i]].mean() for i in range(n) for x in phi[i, mask[i]]]
    dev_out = [x - phi[i, ~mask[i]].mean() for i in range(n) for x in phi[i, ~mask[i]]]
    s_in, s_out = np.sqrt(np.sum(np.square(dev_in)) / (len(dev_in) - n)), np.sqrt(np.sum(np.square(dev_out)) / (len(dev_out) - n))
    got, mode = lira.online_scores(target, phi, mask)          # auto: 3 IN models per example, far below 32
    assert mode == "global"
    for i in range(n):
        want = norm.logpdf(target[i], phi[i, mask[i]].mean(), s_in) - norm.logpdf(target[i], phi[i, ~mask[i]].mean(), s_out)
        assert got[i] == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="lack a model"):
        lira.online_scores(target, phi, np.ones_like(mask))
    with pytest.raises(ValueError, match="at least two"):
        lira.online_scores(target, phi[:, :2], mask[:, :2], "per_example")


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 96), torch.nn.ReLU(), torch.nn.Linear(96, 3))


@pytest.fixture(scope="module")
def memorised():
    """A small MLP that memorised 40 random-labelled noise images (only memorisation can fit them)."""
    members = _noise_set(40, 10)
    torch.manual_seed(0)
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(net(members.images), members.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return members, from_module(net.eval(), num_classes=3, input_shape=(1, 12, 12), source="python:mlp")


def _run(model, members: LabeledImages, reference: LabeledImages, **options):
    attack = MembershipInference(MembershipConfig(bootstrap_rounds=200, **SHADOW | options))
    out = attack.run(model, AuditData(members, reference, 3, ("a", "b", "c")), CTX)
    (found,) = attack.assess(AttackResult(attack="membership", status="completed", metrics=out.metrics))
    return out, found


def test_online_path_matches_shadow_models_retrained_and_scored_independently(memorised):
    from auditor_membership.online import add_online_scores
    from auditor_membership.reference import clone_factory, train_reference_models

    members, model = memorised
    reference = _noise_set(60, 11)
    images = {"members": members.images, "calibration": reference.images[:30], "held_out": reference.images[30:]}
    labels = {"members": members.labels, "calibration": reference.labels[:30], "held_out": reference.labels[30:]}
    sets = list(images)
    with torch.no_grad():
        scores = {s: all_scores(model.logits(images[s]).double().numpy(), labels[s].numpy()) for s in sets}
    cfg = MembershipConfig(**SHADOW | {"reference_models": 4, "reference_epochs": 5})
    notes, count, log_marginal = add_online_scores(model, images, labels, scores, cfg, CTX)
    assert count == 4 and "every image is IN for 2 of them" in notes[0]
    # the same shadow models again (same seeds), then everything by hand
    pool_x, pool_y = torch.cat(list(images.values())), torch.cat(list(labels.values()))
    target_loss = float(torch.nn.functional.cross_entropy(model.logits(members.images).double(), members.labels))
    rng_state = torch.get_rng_state()
    nets, mask, _ = train_reference_models(model, clone_factory(model), pool_x, pool_y, 4, epochs=5, lr=3e-3, batch_size=32,
                                           budget_s=60, ctx=CTX, target_loss=target_loss, whole_halves=True)
    assert torch.equal(torch.get_rng_state(), rng_state)  # seeded inside, without moving the host's random state
    assert (mask.sum(axis=1) == 2).all() and (mask[:, 0] ^ mask[:, 1]).all()       # IN for exactly one model of each pair
    logp = np.stack([_log_p(net, pool_x, pool_y) for net in nets], 1)
    want = _lira_global_by_hand(_phi(_log_p(model.logits, pool_x, pool_y)), _phi(logp), mask)
    got = np.concatenate([scores[s]["lira"] for s in sets])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([log_marginal[s] for s in sets]), np.log(np.exp(logp).mean(axis=1)), rtol=1e-9)
    members_vs_held = np.r_[np.ones(40), np.zeros(30)], np.r_[want[:40], want[70:]]
    assert auc(scores["members"]["lira"], scores["held_out"]["lira"]) == pytest.approx(roc_auc_score(*members_vs_held), abs=1e-12)


def test_online_lira_separates_members_a_model_memorised(memorised):
    members, model = memorised
    out, found = _run(model, members, _noise_set(80, 12))
    assert out.metrics["members_accuracy"] == 1.0 and out.metrics["reference_models"] == 8
    assert "lira (primary)" in [r[0] for r in out.tables[0].rows] and any("Online LiRA" in n for n in out.notes)
    assert out.metrics["lira_auc"] > 0.95 and out.metrics["auc_ci_low"] > 0.9 and out.metrics["auc"] == out.metrics["lira_auc"]
    assert found.severity is Severity.HIGH


def test_online_lira_finds_nothing_where_members_were_never_trained_on(memorised):
    _, model = memorised      # the "members" below were never seen: the same distribution as the non-members
    # "match" would stop the shadows after one epoch (the target's loss on these is high); all epochs: shadows that memorise
    out, found = _run(model, _noise_set(60, 13), _noise_set(120, 14), reference_fit="epochs")
    assert "60 ep / " in out.notes[1]
    assert abs(out.metrics["lira_auc"] - 0.5) < 0.1 and out.metrics["auc_ci_low"] < 0.5 < out.metrics["auc_ci_high"]
    assert found.severity in (Severity.INFO, Severity.LOW)


def test_online_mode_is_validated():
    with pytest.raises(ValidationError, match="needs shadow models"):
        MembershipConfig(reference_mode="online")
    with pytest.raises(ValidationError, match="reference_train_size must be unset"):
        MembershipConfig(reference_mode="online", reference_models=4, reference_train_size=100)
    assert MembershipConfig().reference_mode == "offline" and MembershipConfig().reference_models == 0


def _np_shift(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Move right by dx and down by dy with zeros entering: crop a zero-padded copy."""
    s = max(abs(dx), abs(dy))
    h, w = images.shape[-2:]
    padded = np.pad(images, ((0, 0), (0, 0), (s, s), (s, s)))
    return padded[..., s - dy:s - dy + h, s - dx:s - dx + w]


def test_shifts_are_the_identity_and_eight_zero_padded_translations():
    assert augment.offsets("none") == [(0, 0)]
    shifts = augment.offsets("shifts", 2)
    assert shifts[0] == (0, 0) and len(set(shifts)) == 9 and {abs(v) for s in shifts for v in s} == {0, 2}
    images = torch.rand((3, 2, 7, 9), generator=torch.Generator().manual_seed(1))
    for dx, dy in shifts:
        np.testing.assert_array_equal(augment.translate(images, dx, dy).numpy(), _np_shift(images.numpy(), dx, dy))
    moved = augment.translate(images, 1, 0).numpy()
    assert (moved[..., 0] == 0).all() and np.array_equal(moved[..., 1:], images.numpy()[..., :-1])   # one column right
    with pytest.raises(ValueError, match="'none' or 'shifts'"):
        augment.offsets("flips")
    with pytest.raises(ValueError, match="leaves nothing"):
        augment.translate(images, 9, 0)


def test_augmented_lira_is_the_sum_of_per_query_gaussian_ratios():
    rng = np.random.default_rng(5)
    n, pairs, queries = 5, 3, 3
    mask = _pairs_mask(n, pairs, rng)
    phi = rng.normal(0, 1.5, (n, 2 * pairs, queries)) + 3.0 * mask[:, :, None] + np.arange(queries)   # each query its own level
    target = rng.normal(1, 2, (n, queries))
    for variance in ("global", "per_example"):
        got, mode = lira.online_scores_augmented(target, phi, mask, variance)
        assert mode == variance
        for i in range(n):
            want = 0.0
            for a in range(queries):
                if variance == "per_example":
                    sd_in, sd_out = phi[i, mask[i], a].std(ddof=1), phi[i, ~mask[i], a].std(ddof=1)
                else:   # one spread per side and query, pooled over examples from each example's own mean
                    sd_in = np.sqrt(sum(np.square(phi[j, mask[j], a] - phi[j, mask[j], a].mean()).sum() for j in range(n))
                                    / sum(mask[j].sum() - 1 for j in range(n)))
                    sd_out = np.sqrt(sum(np.square(phi[j, ~mask[j], a] - phi[j, ~mask[j], a].mean()).sum() for j in range(n))
                                     / sum((~mask[j]).sum() - 1 for j in range(n)))
                want += (norm.logpdf(target[i, a], phi[i, mask[i], a].mean(), sd_in)
                         - norm.logpdf(target[i, a], phi[i, ~mask[i], a].mean(), sd_out))
            assert got[i] == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="examples, queries"):
        lira.online_scores_augmented(target[:, :2], phi, mask)


def test_query_augmentations_are_online_only_and_off_by_default():
    assert MembershipConfig().query_augmentations == "none"
    with pytest.raises(ValidationError, match="online LiRA only"):
        MembershipConfig(query_augmentations="shifts", reference_models=2)
    cfg = MembershipConfig(reference_mode="online", reference_models=2, query_augmentations="shifts")
    assert augment.offsets(cfg.query_augmentations, cfg.query_shift)[1:] and cfg.query_shift == 1


def test_online_path_with_shifted_queries_matches_an_independent_computation():
    from auditor_membership.online import add_online_scores
    from auditor_membership.reference import clone_factory, train_reference_models

    members, reference = _noise_set(30, 20, side=10), _noise_set(40, 21, side=10)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(400, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(net(members.images), members.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = from_module(net.eval(), num_classes=3, input_shape=(1, 10, 10), source="python:cnn")
    images = {"members": members.images, "calibration": reference.images[:20], "held_out": reference.images[20:]}
    labels = {"members": members.labels, "calibration": reference.labels[:20], "held_out": reference.labels[20:]}
    with torch.no_grad():
        scores = {s: all_scores(model.logits(images[s]).double().numpy(), labels[s].numpy()) for s in images}
    options = {"reference_mode": "online", "reference_models": 4, "reference_factory": "clone", "reference_epochs": 5,
               "reference_lr": 3e-3, "reference_batch_size": 16, "query_augmentations": "shifts"}
    notes, count, _ = add_online_scores(model, images, labels, scores, MembershipConfig(**options), CTX)
    assert count == 4 and "summed over 9 queries" in notes[0]
    pool_x, pool_y = torch.cat(list(images.values())), torch.cat(list(labels.values()))
    target_loss = float(torch.nn.functional.cross_entropy(model.logits(members.images).double(), members.labels))
    nets, mask, _ = train_reference_models(model, clone_factory(model), pool_x, pool_y, 4, epochs=5, lr=3e-3, batch_size=16,
                                           budget_s=60, ctx=CTX, target_loss=target_loss, whole_halves=True)

    want = np.zeros(len(pool_y))
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            moved = torch.from_numpy(np.ascontiguousarray(_np_shift(pool_x.numpy(), dx, dy)))
            phi = np.stack([_phi(_log_p(n, moved, pool_y)) for n in nets], 1)
            want += _lira_global_by_hand(_phi(_log_p(model.logits, moved, pool_y)), phi, mask)
    np.testing.assert_allclose(np.concatenate([scores[s]["lira"] for s in images]), want, rtol=1e-6, atol=1e-6)
