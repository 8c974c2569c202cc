"""SSIM against scikit-image, Hungarian matching, and calibrated scoring of reconstructions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from auditor.data.sets import AuditData, LabeledImages
from auditor.scoring import (
    ScoringConfig,
    ensure_min_size,
    hungarian_match,
    psnr,
    score_reconstructions,
    ssim,
    ssim_matrix,
)

FAST = ScoringConfig(replicates=200)


def sk_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """The reference: scikit-image with the Wang et al. settings, channels last for colour."""
    a64, b64 = a.double().numpy(), b.double().numpy()
    kwargs = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if a64.shape[0] == 1:
        return float(structural_similarity(a64[0], b64[0], **kwargs))
    return float(structural_similarity(np.moveaxis(a64, 0, -1), np.moveaxis(b64, 0, -1), channel_axis=-1, **kwargs))


def smooth(n: int, c: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Real-ish images: low-resolution noise upsampled bicubically."""
    low = torch.rand(n, c, max(2, h // 4), max(2, w // 4), generator=gen)
    return F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False).clamp(0.0, 1.0)


SIZES = [(11, 11), (28, 28), (32, 32), (13, 24)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_ssim_matches_skimage_on_random_pairs(channels: int, size: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(size[0] * 10 + channels)
    x = torch.rand(4, channels, *size, generator=gen)
    y = torch.cat([torch.rand(2, channels, *size, generator=gen),
                   (x[2:] + 0.1 * torch.randn(2, channels, *size, generator=gen)).clamp(0, 1)])
    expected = np.array([sk_ssim(x[i], y[i]) for i in range(4)])
    np.testing.assert_allclose(ssim(x, y).numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_ssim_matches_skimage_on_real_ish_pairs(channels: int, size: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(size[1] * 10 + channels)
    x = smooth(5, channels, *size, gen)
    y = torch.cat([
        smooth(1, channels, *size, gen),                       # unrelated smooth image
        torch.roll(x[1:2], shifts=(1, 2), dims=(2, 3)),        # shifted copy
        x[2:3] * 0.8 + 0.1,                                     # contrast/brightness change
        (x[3:4] + 0.05 * torch.randn(1, channels, *size, generator=gen)).clamp(0, 1),  # noisy copy
        torch.flip(x[4:5], dims=(3,)),                          # mirrored
    ])
    expected = np.array([sk_ssim(x[i], y[i]) for i in range(5)])
    np.testing.assert_allclose(ssim(x, y).numpy(), expected, atol=1e-4)


def test_identical_images_score_one() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([smooth(3, 1, 28, 28, gen), torch.rand(2, 1, 28, 28, generator=gen), torch.zeros(1, 1, 28, 28)])
    np.testing.assert_allclose(ssim(x, x).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(ssim_matrix(x, x).diagonal().numpy(), 1.0, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_ssim_matrix_matches_skimage_loop(channels: int, chunk: int | None) -> None:
    gen = torch.Generator().manual_seed(channels)
    x = torch.cat([smooth(2, channels, 16, 17, gen), torch.rand(1, channels, 16, 17, generator=gen)])
    y = torch.cat([x[:1], smooth(3, channels, 16, 17, gen), torch.rand(1, channels, 16, 17, generator=gen)])
    expected = np.array([[sk_ssim(x[i], y[j]) for j in range(len(y))] for i in range(len(x))])
    got = ssim_matrix(x, y, chunk=chunk)
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def test_ssim_matrix_diagonal_equals_pairwise() -> None:
    gen = torch.Generator().manual_seed(3)
    x, y = smooth(6, 3, 20, 20, gen), smooth(6, 3, 20, 20, gen)
    np.testing.assert_allclose(ssim_matrix(x, y).diagonal().numpy(), ssim(x, y).numpy(), atol=1e-5)
    assert ssim_matrix(x, y[:0]).shape == (6, 0)


def test_small_images_are_rejected_with_expected_and_got() -> None:
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"at least 11x11 px, got 8x8"):
        ssim(x, x)
    with pytest.raises(ValueError, match=r"at least 11x11 px, got 8x8"):
        ssim_matrix(x, x)
    with pytest.raises(ValueError, match=r"expected y images \[1, 12, 12\] like x, got \[1, 12, 13\]"):
        ssim(torch.rand(2, 1, 12, 12), torch.rand(2, 1, 12, 13))
    with pytest.raises(ValueError, match="expected as many y images"):
        ssim(torch.rand(2, 1, 12, 12), torch.rand(3, 1, 12, 12))


def test_ensure_min_size() -> None:
    x = torch.rand(2, 1, 8, 8)
    up = ensure_min_size(x, 11)
    assert up.shape == (2, 1, 11, 11) and 0.0 <= float(up.min()) and float(up.max()) <= 1.0
    assert ensure_min_size(torch.rand(1, 3, 8, 16), 11).shape == (1, 3, 11, 22)
    big = torch.rand(1, 1, 28, 28)
    assert ensure_min_size(big, 11) is big
    assert ssim(up, up).shape == (2,)


def test_psnr_matches_skimage() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 9, 9, generator=gen)
    y = (x + 0.1 * torch.randn(3, 1, 9, 9, generator=gen)).clamp(0, 1)
    expected = [peak_signal_noise_ratio(x[i].double().numpy(), y[i].double().numpy(), data_range=1.0) for i in range(3)]
    np.testing.assert_allclose(psnr(x, y).numpy(), expected, rtol=1e-5)
    assert torch.isinf(psnr(x, x)).all()


def _brute_force(sim: np.ndarray) -> float:
    rows, cols = sim.shape
    if rows <= cols:
        return max(sum(sim[i, p[i]] for i in range(rows)) for p in itertools.permutations(range(cols), rows))
    return _brute_force(sim.T)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_hungarian_matches_brute_force(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        sim = rng.random(shape)
        rows, cols = hungarian_match(torch.from_numpy(sim))
        assert len(rows) == min(shape) and len(set(cols.tolist())) == len(cols)
        assert sim[rows, cols].sum() == pytest.approx(_brute_force(sim))


# --------------------------------------------------------------------------- score_reconstructions


def make_data(members: int = 30, reference: int | None = 25, classes: int = 3, size: int = 16,
              channels: int = 1, seed: int = 0) -> AuditData:
    gen = torch.Generator().manual_seed(seed)
    mem = LabeledImages(smooth(members * classes, channels, size, size, gen),
                        torch.arange(classes).repeat_interleave(members), "members")
    ref = None
    if reference is not None:
        ref = LabeledImages(smooth(reference * classes, channels, size, size, gen),
                            torch.arange(classes).repeat_interleave(reference), "reference")
    return AuditData(mem, ref, classes, tuple("abcdefgh"[:classes]))


def _copies_and_noise(data: AuditData) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Reconstructions: exact copies of members 0, 1 (class 0) and 65 (class 2), then noise (class 1)."""
    gen = torch.Generator().manual_seed(7)
    copies = [0, 1, 65]
    noise = torch.rand(3, *data.image_shape, generator=gen)
    recon = torch.cat([data.members.images[copies], noise])
    labels = torch.cat([data.members.labels[copies], torch.ones(3, dtype=torch.long)])
    return recon, labels, copies


@pytest.mark.parametrize("channels", [1, 3])
def test_copies_are_likely_copies_and_noise_is_not(channels: int) -> None:
    data = make_data(channels=channels)
    recon, labels, copies = _copies_and_noise(data)
    scores = score_reconstructions(recon, labels, data, config=FAST)
    assert scores.calibrated and "conformal threshold" in scores.calibration_note
    assert [s.index for s in scores.samples] == list(range(6))
    for sample, member in zip(scores.samples[:3], copies):
        assert sample.likely_copy
        assert sample.nearest_member == member and sample.matched_member == member
        assert sample.nearest_member_ssim == pytest.approx(1.0, abs=1e-5)
        assert sample.nearest_reference is not None and sample.nearest_reference_ssim < 0.999
    assert not any(s.likely_copy for s in scores.samples[3:])
    assert scores.likely_copy_share == pytest.approx(0.5)
    assert scores.best_ssim_max == pytest.approx(1.0, abs=1e-5)
    by_label = {c.label: c for c in scores.per_class}
    assert set(by_label) == {0, 1, 2} and by_label[1].name == "b" and by_label[0].count == 2
    assert by_label[0].likely_copy_share == 1.0 and by_label[1].likely_copy_share == 0.0
    assert all(c.copy_threshold is not None and c.copy_threshold < 1.0 for c in scores.per_class)
    assert "no LPIPS scorer" in scores.lpips_note and scores.lpips_best_mean is None


def test_gap_ci_contains_gap_and_is_deterministic() -> None:
    data = make_data()
    recon, labels, _ = _copies_and_noise(data)
    first = score_reconstructions(recon, labels, data, config=FAST, seed=3)
    assert first.gap is not None and first.gap_ci_low <= first.gap <= first.gap_ci_high
    assert first.gap_ci_low < first.gap_ci_high
    assert first.model_dump() == score_reconstructions(recon, labels, data, config=FAST, seed=3).model_dump()


def test_gap_compares_equal_size_pools() -> None:
    """Fresh images of the data's distribution leak nothing: the gap is ~0 though members outnumber references 8:1."""
    data = make_data(members=160, reference=20, seed=1)
    gen = torch.Generator().manual_seed(11)
    fresh = smooth(60, 1, 16, 16, gen)
    labels = torch.arange(3).repeat_interleave(20)
    scores = score_reconstructions(fresh, labels, data, config=FAST)
    naive = scores.best_ssim_mean - scores.reference_best_ssim_mean  # nearest of 160 vs nearest of 20
    assert scores.gap_ci_low <= 0.0 <= scores.gap_ci_high
    assert abs(scores.gap) < naive / 3
    assert scores.likely_copy_share <= 0.2  # 99th percentile of 20 baseline values ~ their max


def test_without_reference_the_scores_are_uncalibrated() -> None:
    data = make_data(reference=None)
    recon, labels, copies = _copies_and_noise(data)
    scores = score_reconstructions(recon, labels, data, config=FAST)
    assert not scores.calibrated and "uncalibrated" in scores.calibration_note.lower()
    assert scores.gap is None and scores.gap_ci_low is None and scores.gap_ci_high is None
    assert scores.likely_copy_share is None and not any(s.likely_copy for s in scores.samples)
    assert scores.samples[0].nearest_member == copies[0] and scores.samples[0].nearest_reference is None
    assert all(c.copy_threshold is None and c.gap is None for c in scores.per_class)


def test_tiny_reference_runs_uncalibrated_at_alpha_and_says_so() -> None:
    """5 reference images per class: 3 calibrate each class, 9 in all, far below the 99 that alpha = 0.01 needs.
    The rule then runs at the finest level the data supports, 1/(9+1), pooled, and the note says so."""
    data = make_data(reference=5)
    recon, labels, _ = _copies_and_noise(data)
    scores = score_reconstructions(recon, labels, data, config=FAST)
    assert scores.calibrated and not scores.copy_rule_calibrated
    assert "uncalibrated at alpha = 0.01" in scores.calibration_note and "at least 99" in scores.calibration_note
    assert scores.alpha == pytest.approx(0.1) and scores.pooled_classes == [0, 1, 2]
    assert len({c.copy_threshold for c in scores.per_class}) == 1
    assert all(s.likely_copy for s in scores.samples[:3])


def test_class_without_members_is_noted() -> None:
    data = make_data()
    keep = data.members.labels != 2
    data = AuditData(data.members.subset(torch.nonzero(keep).squeeze(1)), data.reference, 3, data.class_names)
    recon = torch.cat([data.members.images[:1], data.reference.images[-1:]])
    scores = score_reconstructions(recon, torch.tensor([0, 2]), data, config=FAST)
    assert "c have reconstructions but no member images" in scores.calibration_note
    orphan = scores.samples[1]
    assert orphan.nearest_member is None and orphan.matched_member is None and not orphan.likely_copy
    assert orphan.nearest_reference is not None and int(data.reference.labels[orphan.nearest_reference]) == 2
    assert scores.samples[0].likely_copy


def test_small_images_are_upsampled_and_noted() -> None:
    data = make_data(size=8)
    recon, labels, copies = _copies_and_noise(data)
    scores = score_reconstructions(recon, labels, data, config=FAST)
    assert "8x8 px were upsampled bilinearly to 11x11" in scores.calibration_note
    assert [s.nearest_member for s in scores.samples[:3]] == copies
    assert all(s.likely_copy for s in scores.samples[:3])


def test_bad_inputs_raise_expected_and_got() -> None:
    data = make_data()
    with pytest.raises(ValueError, match=r"expected \[N, 1, 16, 16\], got \[2, 1, 16, 17\]"):
        score_reconstructions(torch.rand(2, 1, 16, 17), torch.zeros(2, dtype=torch.long), data)
    with pytest.raises(ValueError, match="expected one label per reconstruction"):
        score_reconstructions(torch.rand(2, 1, 16, 16), torch.zeros(3, dtype=torch.long), data)
    with pytest.raises(ValueError, match=r"labels must lie in 0..2, got 0..5"):
        score_reconstructions(torch.rand(2, 1, 16, 16), torch.tensor([0, 5]), data)


def test_config_forbids_unknown_fields() -> None:
    with pytest.raises(ValueError):
        ScoringConfig(percentle=95.0)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- affine-fit comparison


def _fitted_skimage(x: torch.Tensor, y: torch.Tensor) -> float:
    """Reference: fit a·x + b to y by least squares (numpy), a >= 0, then scikit-image SSIM of the fitted image."""
    xf, yf = x.double().numpy().ravel(), y.double().numpy().ravel()
    (a, b), *_ = np.linalg.lstsq(np.stack([xf, np.ones_like(xf)], 1), yf, rcond=None)
    if a < 0:
        a, b = 0.0, yf.mean()
    return sk_ssim(torch.from_numpy(a * x.double().numpy() + b), y)


@pytest.mark.parametrize("channels", [1, 3])
def test_affine_ssim_matches_skimage_on_fitted_images(channels: int) -> None:
    from auditor.scoring import affine_ssim, affine_ssim_matrix

    gen = torch.Generator().manual_seed(20 + channels)
    x = smooth(4, channels, 16, 19, gen)
    y = torch.cat([x[:1] * 0.4 + 0.5, smooth(2, channels, 16, 19, gen), 1.0 - x[3:4], x[1:2]])  # rescaled, unrelated, inverted, same
    expected = np.array([[_fitted_skimage(x[i], y[j]) for j in range(len(y))] for i in range(len(x))])
    np.testing.assert_allclose(affine_ssim_matrix(x, y, chunk=3).numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(affine_ssim(x, y[:4]).numpy(), np.diag(expected[:, :4]), atol=1e-4)
    assert expected[0, 0] == pytest.approx(1.0, abs=1e-6) and sk_ssim(x[0], y[0]) < 0.9  # the fit undoes the contrast change


def test_affine_comparison_finds_a_contrast_changed_copy() -> None:
    data = make_data(members=30, reference=120)
    recon = data.members.images[[3, 40]] * 0.5 + 0.3
    cfg = ScoringConfig(replicates=0, alpha=0.05)
    plain = score_reconstructions(recon, torch.tensor([0, 1]), data, config=cfg.model_copy(update={"comparison": "ssim"}))
    fitted = score_reconstructions(recon, torch.tensor([0, 1]), data, config=cfg)
    assert fitted.comparison == "affine" and "affine intensity fit" in fitted.calibration_note
    assert [s.nearest_member for s in fitted.samples] == [3, 40] and fitted.distinct_members_recovered == 2
    assert all(s.nearest_member_ssim == pytest.approx(1.0, abs=1e-4) for s in fitted.samples)
    assert max(s.nearest_member_ssim for s in plain.samples) < 0.95


# --------------------------------------------------------------------------- real MNIST digits as the null


def _mnist_null(datasets, comparison: str, seed: int = 0):
    from auditor.data.sets import balanced_subset, load_images

    root = datasets / "mnist"
    if not root.exists():
        pytest.skip(f"MNIST not found under {datasets}")
    train, test = load_images(f"{root}:train"), load_images(f"{root}:test")
    members = train.subset(balanced_subset(train.labels.numpy(), 100, seed))
    order = np.random.default_rng(seed).permutation(len(test))
    fresh = np.concatenate([order[test.labels.numpy()[order] == c][:50] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(test)), fresh)
    reference = test.subset(rest[balanced_subset(test.labels.numpy()[rest], 3000, seed)])
    data = AuditData(members, reference, 10, tuple(str(i) for i in range(10)))
    recon = test.subset(fresh)
    return score_reconstructions(recon.images, recon.labels, data, config=ScoringConfig(comparison=comparison, replicates=100),
                                 seed=seed)


@pytest.mark.parametrize("comparison", ["affine", "ssim"])
def test_held_out_mnist_digits_give_no_finding_above_info(datasets, comparison: str) -> None:
    """500 real test digits, none a member, scored as reconstructions against 100 training digits."""
    from scipy.stats import binom

    from auditor.core.results import AttackResult
    from auditor.core.severity import reconstruction_findings

    scores = _mnist_null(datasets, comparison)
    assert scores.copy_rule_calibrated and scores.comparison == comparison
    assert scores.likely_copies <= binom.ppf(0.999, 500, 0.01)  # real non-members stay within the stated rate
    assert scores.null_copy_rate <= binom.ppf(0.999, scores.null_count, 0.01) / scores.null_count
    findings = reconstruction_findings("null", AttackResult(attack="null", status="completed", scores=scores))
    assert max(f.severity.rank for f in findings) == 0, [f.detail for f in findings]
