"""Augmented queries for online LiRA (``query_augmentations = "shifts"``), against independent computations.

The shifts against ``numpy.pad`` and slicing; the summed likelihood ratio against ``scipy.stats.norm`` per query on
constructed numbers, summed by hand; the whole online path with shifted queries against shadow models retrained here
with the same seeds and queried on numpy-shifted images.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.stats import norm

from auditor.core.attack import RunContext
from auditor.data.sets import LabeledImages
from auditor.models.model import from_module
from auditor_membership import MembershipConfig, augment, lira
from auditor_membership.signals import all_scores

CTX = RunContext(device=torch.device("cpu"), seed=0, show_progress=False)


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


def _pairs_mask(n: int, pairs: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((n, 2 * pairs), dtype=bool)
    for p in range(pairs):
        side = rng.random(n) < 0.5
        mask[:, 2 * p], mask[:, 2 * p + 1] = side, ~side
    return mask


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


def _noise_set(n: int, seed: int) -> LabeledImages:
    g = torch.Generator().manual_seed(seed)
    return LabeledImages(torch.rand((n, 1, 10, 10), generator=g), torch.randint(0, 3, (n,), generator=g), f"noise:{seed}")


def test_online_path_with_shifted_queries_matches_an_independent_computation():
    from auditor_membership.online import add_online_scores
    from auditor_membership.reference import clone_factory, train_reference_models

    members, reference = _noise_set(30, 20), _noise_set(40, 21)
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

    def phi_of(f, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logp = torch.log_softmax(f(torch.from_numpy(np.ascontiguousarray(x))).double(), 1)[torch.arange(len(pool_y)), pool_y].numpy()
        return logp - np.log1p(-np.exp(logp))

    want = np.zeros(len(pool_y))
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            moved = _np_shift(pool_x.numpy(), dx, dy)
            phi_t, phi = phi_of(model.logits, moved), np.stack([phi_of(n, moved) for n in nets], 1)
            sd = {}
            for side, m in (("in", mask), ("out", ~mask)):
                dev = [phi[i, m[i]] - phi[i, m[i]].mean() for i in range(len(phi))]
                sd[side] = np.sqrt(sum(float(np.square(d).sum()) for d in dev) / sum(len(d) - 1 for d in dev))
            want += [norm.logpdf(phi_t[i], phi[i, mask[i]].mean(), sd["in"]) - norm.logpdf(phi_t[i], phi[i, ~mask[i]].mean(), sd["out"])
                     for i in range(len(phi))]
    np.testing.assert_allclose(np.concatenate([scores[s]["lira"] for s in images]), want, rtol=1e-6, atol=1e-6)
