"""Similarity scoring of reconstructions against the data the auditor holds.

SSIM is the project's own batched torch implementation (design G8): the Gaussian filter
(sigma 1.5, truncate 3.5, an 11-tap window) is applied as separable banded-matrix products
over the valid region only, which is exactly what scikit-image averages after cropping
``(win - 1) // 2`` pixels on each side, so the boundary mode never matters. scikit-image
is the reference in the tests, not the implementation.

:func:`score_reconstructions` turns SSIM (and optionally LPIPS) into calibrated scores:
thresholds come from the similarity that real non-member (reference) images reach, never
from a fixed SSIM value.
"""
from __future__ import annotations

import logging
import math
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln

from auditor.data import AuditData
from auditor.results import ClassScore, SampleScore, Scores

if TYPE_CHECKING:
    from auditor.lpips_cache import LpipsScorer

log = logging.getLogger(__name__)

SIGMA = 1.5
TRUNCATE = 3.5
RADIUS = int(TRUNCATE * SIGMA + 0.5)  # 5, as scipy.ndimage computes it
WIN = 2 * RADIUS + 1  # 11: the smallest image side SSIM accepts
C1 = (0.01 * 1.0) ** 2
C2 = (0.03 * 1.0) ** 2
_CENTRE = 0.5  # images are centred before second moments to limit float32 cancellation
_BLOCK_ELEMENTS = 1 << 19  # SSIM-map elements per block in ssim_matrix (2 MiB temporaries: L2-sized)


# --------------------------------------------------------------------------- SSIM


@lru_cache(maxsize=64)
def _band(n: int, device: str) -> torch.Tensor:
    """[n - 2R, n] matrix whose rows are the normalised Gaussian taps at each valid position."""
    taps = np.exp(-0.5 * (np.arange(-RADIUS, RADIUS + 1) / SIGMA) ** 2)
    taps /= taps.sum()
    band = np.zeros((n - 2 * RADIUS, n))
    for i in range(n - 2 * RADIUS):
        band[i, i:i + WIN] = taps
    return torch.tensor(band, dtype=torch.float32, device=device)


def _check(x: torch.Tensor, y: torch.Tensor, *, paired: bool, min_size: int = WIN) -> None:
    for name, t in (("x", x), ("y", y)):
        if t.dim() != 4:
            raise ValueError(f"{name}: expected images shaped [N, C, H, W], got {list(t.shape)}")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"image shapes differ: expected y images {list(x.shape[1:])} like x, got {list(y.shape[1:])}")
    if paired and x.shape[0] != y.shape[0]:
        raise ValueError(f"expected as many y images as x images ({x.shape[0]}), got {y.shape[0]}")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(
            f"SSIM's {WIN}x{WIN} Gaussian window needs images of at least {min_size}x{min_size} px, got {h}x{w}; "
            f"upsample explicitly with ensure_min_size(x, {min_size})"
        )


def _moments(x: torch.Tensor, gh: torch.Tensor, gw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Local Gaussian mean and (population) variance maps over the valid region."""
    mu = gh @ x @ gw.T
    xc = x - _CENTRE
    return mu, gh @ (xc * xc) @ gw.T - (mu - _CENTRE) ** 2


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pair SSIM of ``x`` and ``y`` [N, C, H, W] in [0, 1] -> [N].

    Equals ``skimage.metrics.structural_similarity(a, b, data_range=1.0, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=-1)`` (channels averaged) within 1e-4.

    Raises:
        ValueError: shapes differ or H or W is under 11 px.
    """
    _check(x, y, paired=True)
    n = x.shape[0]
    gh, gw = _band(x.shape[-2], str(x.device)), _band(x.shape[-1], str(x.device))
    xc, yc = x.float() - _CENTRE, y.float() - _CENTRE
    # the five filtered maps in one batched product: E[x], E[y], E[x²], E[y²], E[xy] (centred)
    mx, my, sxx, syy, sxy = (gh @ torch.cat([xc, yc, xc * xc, yc * yc, xc * yc]) @ gw.T).split(n)
    vx, vy, vxy = sxx.sub_(mx * mx), syy.sub_(my * my), sxy.sub_(mx * my)
    mx, my = mx.add_(_CENTRE), my.add_(_CENTRE)
    num = (mx * my).mul_(2).add_(C1).mul_(vxy.mul_(2).add_(C2))
    den = mx.square_().add_(my.square_()).add_(C1).mul_(vx.add_(vy).add_(C2))
    return num.div_(den).mean(dim=(1, 2, 3), dtype=torch.float64).float().clamp_(-1.0, 1.0)


def ssim_matrix(x: torch.Tensor, y: torch.Tensor, *, chunk: int | None = None) -> torch.Tensor:
    """All-pairs SSIM [N, M] between ``x`` [N, C, H, W] and ``y`` [M, C, H, W].

    Means and variances are computed once per image; only the cross term ``filter(x * y)`` is
    per pair. For a block of x images the row filter is folded into a per-column weight
    matrix, so the cross term is two GEMMs with no ``x * y`` product materialised.

    Args:
        x: first image set, float in [0, 1].
        y: second image set, same C, H, W.
        chunk: pairs per block (memory bound: about ``chunk * (H-10) * (W-10)`` floats per
            temporary); default keeps temporaries cache-sized.
    """
    _check(x, y, paired=False)
    n, channels, h, w = x.shape
    m = y.shape[0]
    out = torch.zeros(n, m, dtype=torch.float32, device=x.device)
    if n == 0 or m == 0:
        return out
    gh, gw = _band(h, str(x.device)), _band(w, str(x.device))
    ho, wo = gh.shape[0], gw.shape[0]
    c1_half = torch.tensor(C1 / 2, device=x.device)
    pairs = max(1, chunk if chunk is not None else _BLOCK_ELEMENTS // (ho * wo))
    rb = max(1, min(n, math.isqrt(pairs)))
    mb = max(1, pairs // rb)
    for c in range(channels):
        xs, ys = x[:, c].float(), y[:, c].float()
        mux, vx = _moments(xs, gh, gw)
        muy, vy = _moments(ys, gh, gw)
        y_cols = (ys - _CENTRE).permute(2, 1, 0).contiguous()  # [W, H, M]
        my = muy.permute(2, 1, 0).contiguous()[:, None]  # [Wo, 1, Ho, M]
        my_half = my / 2
        my2 = (muy * muy + C1).permute(2, 1, 0).contiguous()[:, None]
        vyc = vy.permute(2, 1, 0).contiguous()[:, None]
        for r0 in range(0, n, rb):
            xr = xs[r0:r0 + rb] - _CENTRE
            k = xr.shape[0]
            # weights[b, (r, i), a] = gh[i, a] * x_r[a, b]: row filter with x folded in
            weights = (gh[None, None] * xr.permute(2, 0, 1)[:, :, None, :]).reshape(w, k * ho, h)
            mx = mux[r0:r0 + rb].permute(2, 0, 1)[..., None]  # [Wo, k, Ho, 1]
            mx_half = (mx + (C2 - _CENTRE)) / 2
            mx2 = mx * mx
            vxc = vx[r0:r0 + rb].permute(2, 0, 1)[..., None] + C2
            for s0 in range(0, m, mb):
                yb = y_cols[:, :, s0:s0 + mb]
                q = yb.shape[2]
                cross = (gw @ torch.bmm(weights, yb).view(w, -1)).view(wo, k, ho, q)
                myb = my[..., s0:s0 + mb]
                # centred: (2 vxy + C2) / 2 = cross - mx my + (mx + my + C2 - 0.5) / 2; (2 mx my + C1) / 2
                a2 = cross.addcmul_(mx, myb, value=-1.0).add_(mx_half).add_(my_half[..., s0:s0 + mb])
                num = torch.addcmul(c1_half, mx, myb).mul_(a2)
                den = (mx2 + my2[..., s0:s0 + mb]).mul_(vxc + vyc[..., s0:s0 + mb])
                out[r0:r0 + k, s0:s0 + q] += num.div_(den).sum(dim=(0, 2))
    return out.mul_(4.0 / (channels * ho * wo)).clamp_(-1.0, 1.0)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pair PSNR in dB for data range 1 (``inf`` for identical images) -> [N]."""
    _check(x, y, paired=True, min_size=1)
    mse = ((x.double() - y.double()) ** 2).mean(dim=(1, 2, 3))
    return (10.0 * torch.log10(1.0 / mse)).float()


def ensure_min_size(x: torch.Tensor, min_size: int) -> torch.Tensor:
    """Bilinearly upsample [N, C, H, W] images so both sides are at least ``min_size`` px.

    The aspect ratio is kept; images already large enough are returned unchanged.
    """
    if x.dim() != 4:
        raise ValueError(f"expected images shaped [N, C, H, W], got {list(x.shape)}")
    h, w = x.shape[-2:]
    if h >= min_size and w >= min_size:
        return x
    scale = min_size / min(h, w)
    size = (max(min_size, math.ceil(h * scale - 1e-9)), max(min_size, math.ceil(w * scale - 1e-9)))
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)


def hungarian_match(similarity: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching maximising total similarity (rows and columns may differ in number).

    Returns:
        ``(rows, cols)``: row ``rows[i]`` is matched to column ``cols[i]``; ``min(R, C)`` pairs.
    """
    sim = similarity.detach().cpu().numpy() if isinstance(similarity, torch.Tensor) else np.asarray(similarity)
    if sim.ndim != 2:
        raise ValueError(f"expected a 2-D similarity matrix, got shape {list(sim.shape)}")
    if not np.isfinite(sim).all():
        raise ValueError("similarity matrix has NaN or infinite entries")
    rows, cols = linear_sum_assignment(sim.astype(np.float64), maximize=True)
    return rows, cols


# --------------------------------------------------------------------------- scoring


class ScoringConfig(BaseModel):
    """How reconstructions are scored (``[scoring]`` in audit.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    percentile: float = Field(99.0, gt=0.0, le=100.0, description="Calibration percentile of the non-member baseline.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for the gap CI (0: no CI).")
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence level of the gap CI.")
    min_reference_per_class: int = Field(
        20, ge=1, description="Fewer reference images of a class than this: pool the classes for its threshold."
    )
    lpips_pool: int = Field(256, ge=1, description="Members per class searched for the LPIPS nearest (the SSIM-nearest).")
    baseline_per_class: int | None = Field(
        200, ge=1,
        description="Reference images per class used for the calibration baseline (seeded subset; None: all). "
        "The baseline costs (images x members of the class) SSIM pairs.",
    )


@dataclass
class _Class:
    """Per-class working data: indices into recon / members / reference and SSIM matrices."""

    recon: np.ndarray
    members: np.ndarray
    reference: np.ndarray
    to_members: np.ndarray | None = None  # [R_c, M_c]
    to_reference: np.ndarray | None = None  # [R_c, Q_c]
    threshold: float | None = None
    diff: np.ndarray | None = None  # per-reconstruction equal-pool gap


def _expected_max(s: np.ndarray, k: int) -> np.ndarray:
    """Expected row maximum of ``s`` [R, M] over a uniformly random ``k``-subset of its columns."""
    m = s.shape[1]
    if k >= m:
        return s.max(axis=1).astype(np.float64)
    j = np.arange(1, m - k + 2)  # rank of the subset's maximum, 1 = largest
    log_w = gammaln(m - j + 1) - gammaln(k) - gammaln(m - j - k + 2)
    log_w -= gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)
    top = -np.sort(-s, axis=1)[:, : m - k + 1]
    return top.astype(np.float64) @ np.exp(log_w)


def _validate(recon: torch.Tensor, labels: torch.Tensor, data: AuditData) -> tuple[torch.Tensor, np.ndarray]:
    if recon.dim() != 4 or tuple(recon.shape[1:]) != tuple(data.image_shape):
        raise ValueError(f"reconstructions: expected [N, {', '.join(map(str, data.image_shape))}], got {list(recon.shape)}")
    lab = torch.as_tensor(labels).detach().cpu().reshape(-1).numpy()
    if lab.shape[0] != recon.shape[0]:
        raise ValueError(f"expected one label per reconstruction ({recon.shape[0]}), got {lab.shape[0]}")
    if lab.size and (lab.min() < 0 or lab.max() >= data.num_classes):
        raise ValueError(f"labels must lie in 0..{data.num_classes - 1}, got {lab.min()}..{lab.max()}")
    recon = recon.detach().float().cpu()
    if not torch.isfinite(recon).all():
        raise ValueError("reconstructions contain NaN or infinite pixels")
    return recon.clamp(0.0, 1.0), lab.astype(np.int64)


_BASELINES: dict[tuple, tuple[weakref.ref, weakref.ref, np.ndarray]] = {}


def _baseline(data: AuditData, label: int, ref_img: torch.Tensor, mem_img: torch.Tensor, cfg: ScoringConfig,
              seed: int) -> np.ndarray:
    """Nearest-member SSIM that the class's reference images reach.

    Cached while the same member and reference tensors are alive (several attacks scored
    against one data set pay for the baseline once).
    """
    assert data.reference is not None
    held = (data.members.images, data.reference.images)
    key = (id(held[0]), id(held[1]), label, cfg.baseline_per_class, seed, tuple(mem_img.shape[1:]))
    cached = _BASELINES.get(key)
    if cached is not None and cached[0]() is held[0] and cached[1]() is held[1]:
        return cached[2]
    ref_idx = np.flatnonzero(data.reference.labels.numpy() == label)
    mem_idx = np.flatnonzero(data.members.labels.numpy() == label)
    cap = cfg.baseline_per_class
    if cap is not None and len(ref_idx) > cap:
        ref_idx = np.sort(np.random.default_rng([seed, label]).choice(ref_idx, cap, replace=False))
    values = ssim_matrix(ref_img[ref_idx], mem_img[mem_idx]).max(dim=1).values.numpy().astype(np.float64)
    if len(_BASELINES) > 256:
        _BASELINES.clear()
    _BASELINES[key] = (weakref.ref(held[0]), weakref.ref(held[1]), values)
    return values


def _bootstrap_gap(classes: list[_Class], cfg: ScoringConfig, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap distribution of the overall gap: reconstructions and equal-size pools resampled."""
    total = sum(len(c.recon) for c in classes)
    out = np.zeros(cfg.bootstrap)
    for b in range(cfg.bootstrap):
        acc = 0.0
        for c in classes:
            s_m, s_q = c.to_members, c.to_reference
            k = min(s_m.shape[1], s_q.shape[1])
            bm = s_m[:, rng.choice(s_m.shape[1], k, replace=False)].max(1) if k < s_m.shape[1] else s_m.max(1)
            bq = s_q[:, rng.choice(s_q.shape[1], k, replace=False)].max(1) if k < s_q.shape[1] else s_q.max(1)
            pick = rng.integers(0, len(c.recon), len(c.recon))
            acc += float((bm[pick] - bq[pick]).astype(np.float64).sum())
        out[b] = acc / total
    return out


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _names(data: AuditData, labels: list[int]) -> str:
    return ", ".join(data.class_names[c] if c < len(data.class_names) else str(c) for c in labels)


def _calibrate(classes: dict[int, _Class], samples: list[SampleScore], data: AuditData, ref_img: torch.Tensor | None,
               mem_img: torch.Tensor, cfg: ScoringConfig, seed: int, notes: list[str]) -> bool:
    """Set per-class thresholds and ``likely_copy``; returns whether the scores are calibrated."""
    if data.reference is None or ref_img is None:
        notes.append(
            "Uncalibrated: no reference (non-member) images were given, so there is no baseline of the similarity "
            "real non-member images reach; the SSIM values cannot be read as leakage and no sample is marked a likely "
            "copy. Give reference data to calibrate."
        )
        return False
    ref_lab, mem_lab = data.reference.labels.numpy(), data.members.labels.numpy()
    judged = {c: k for c, k in classes.items() if len(k.members)}
    own = {c: _baseline(data, c, ref_img, mem_img, cfg, seed)
           for c, k in judged.items() if len(k.reference) >= cfg.min_reference_per_class}
    notes.append(
        f"Calibrated: a reconstruction is a likely copy when its nearest-member SSIM exceeds the {cfg.percentile:g}th "
        "percentile of the nearest-member SSIM that reference (non-member) images of its class reach, and it is "
        "closer to that member than to any reference image of its class."
    )
    pooled_thr, short = None, sorted(set(judged) - set(own))
    if short:
        eligible = [c for c in range(data.num_classes) if (ref_lab == c).any() and (mem_lab == c).any()]
        pool = np.concatenate([_baseline(data, c, ref_img, mem_img, cfg, seed) for c in eligible]) if eligible else np.zeros(0)
        counts = ", ".join(str(len(judged[c].reference)) for c in short)
        if pool.size:
            pooled_thr = float(np.percentile(pool, cfg.percentile))
            notes.append(f"Classes {_names(data, short)} have fewer than {cfg.min_reference_per_class} reference images "
                         f"({counts}): their threshold pools the baseline of all classes ({pool.size} reference images).")
        else:
            notes.append(f"Classes {_names(data, short)} cannot be calibrated: no reference image shares a class "
                         "with the members.")
    cap = cfg.baseline_per_class
    if cap is not None and any(int((ref_lab == c).sum()) > cap for c in judged):
        notes.append(f"The baseline uses a seeded subset of {cap} reference images per class.")
    for c, k in judged.items():
        k.threshold = float(np.percentile(own[c], cfg.percentile)) if c in own else pooled_thr
    no_ref = [c for c, k in judged.items() if not len(k.reference) and k.threshold is not None]
    if no_ref:
        notes.append(f"Classes {_names(data, no_ref)} have no reference images: their likely copies are judged by the "
                     "pooled threshold alone, without the closer-than-any-non-member test.")
    for k in judged.values():
        for r in k.recon if k.threshold is not None else []:
            s = samples[r]
            s.likely_copy = bool(s.nearest_member_ssim > k.threshold and (
                s.nearest_reference_ssim is None or s.nearest_member_ssim > s.nearest_reference_ssim))
    return any(k.threshold is not None for k in judged.values())


def _lpips_pool(to_members: np.ndarray, size: int) -> np.ndarray:
    """Up to ``size`` member positions, taken round-robin from each reconstruction's SSIM ranking."""
    take = min(size, to_members.shape[1])
    order = np.argsort(-to_members, axis=1, kind="stable")[:, :take]
    flat = order.T.ravel()
    _, first = np.unique(flat, return_index=True)
    return flat[np.sort(first)][:take]


def _lpips_nearest(classes: dict[int, _Class], samples: list[SampleScore], recon: torch.Tensor, data: AuditData,
                   scorer: LpipsScorer | None, cfg: ScoringConfig) -> str:
    if scorer is None:
        return "LPIPS not computed: no LPIPS scorer was given."
    if not scorer.available:
        return f"LPIPS not computed: {scorer.reason}"
    for k in classes.values():
        if k.to_members is None:
            continue
        pool = k.members[_lpips_pool(k.to_members, cfg.lpips_pool)]
        dist = scorer.matrix(recon[k.recon], data.members.images[pool]).numpy()
        for i, r in enumerate(k.recon):
            samples[r].nearest_member_lpips = float(dist[i].min())
    note = (f"LPIPS ({getattr(scorer, 'net', '?')}) nearest member searched among up to {cfg.lpips_pool} members per "
            "class: those nearest by SSIM to the class's reconstructions.")
    c, h, w = recon.shape[1:]
    if min(h, w) < 32:
        note += f" Images of {h}x{w} px were resized to at least 32 px for LPIPS."
    if c == 1:
        note += " Grey images were repeated to 3 channels for LPIPS."
    return note


def score_reconstructions(recon: torch.Tensor, labels: torch.Tensor, data: AuditData, *, config: ScoringConfig | None = None,
                          lpips: LpipsScorer | None = None, seed: int = 0) -> Scores:
    """Score reconstructions [N, C, H, W] (labels [N]) against the members and reference data.

    Per reconstruction: the nearest same-class member by SSIM, a one-to-one Hungarian match
    per class, the nearest same-class reference image, and (with an available ``lpips``)
    the LPIPS nearest among a capped pool. Aggregates include the leakage gap over
    equal-size pools with a bootstrap CI, and calibrated ``likely_copy`` flags.
    Deterministic for a seed.

    Raises:
        ValueError: reconstructions or labels disagree with the data.
    """
    cfg = config or ScoringConfig()
    start = time.perf_counter()
    recon, lab = _validate(recon, labels, data)
    notes: list[str] = []
    ref = data.reference
    mem_lab = data.members.labels.numpy()
    ref_lab = ref.labels.numpy() if ref is not None else np.zeros(0, dtype=np.int64)
    s_recon, s_mem = ensure_min_size(recon, WIN), ensure_min_size(data.members.images, WIN)
    s_ref = ensure_min_size(ref.images, WIN) if ref is not None else None
    if s_recon.shape != recon.shape:
        notes.append(f"Images of {recon.shape[-2]}x{recon.shape[-1]} px were upsampled bilinearly to "
                     f"{s_recon.shape[-2]}x{s_recon.shape[-1]} for SSIM (its Gaussian window needs {WIN} px).")
    samples = [SampleScore(index=i, label=int(c)) for i, c in enumerate(lab)]
    classes: dict[int, _Class] = {}
    for c in np.unique(lab).tolist():
        k = classes[c] = _Class(np.flatnonzero(lab == c), np.flatnonzero(mem_lab == c), np.flatnonzero(ref_lab == c))
        if len(k.members):
            k.to_members = sm = ssim_matrix(s_recon[k.recon], s_mem[k.members]).numpy()
            best = sm.argmax(axis=1)
            for i, r in enumerate(k.recon):
                samples[r].nearest_member, samples[r].nearest_member_ssim = int(k.members[best[i]]), float(sm[i, best[i]])
            for i, j in zip(*hungarian_match(sm)):
                samples[k.recon[i]].matched_member, samples[k.recon[i]].matched_member_ssim = int(k.members[j]), float(sm[i, j])
        if len(k.reference) and s_ref is not None:
            k.to_reference = sq = ssim_matrix(s_recon[k.recon], s_ref[k.reference]).numpy()
            best = sq.argmax(axis=1)
            for i, r in enumerate(k.recon):
                samples[r].nearest_reference, samples[r].nearest_reference_ssim = int(k.reference[best[i]]), float(sq[i, best[i]])
    missing = [c for c, k in classes.items() if not len(k.members)]
    if missing:
        notes.append(f"Classes {_names(data, missing)} have reconstructions but no member images: their samples "
                     "have no member scores.")
    calibrated = _calibrate(classes, samples, data, s_ref, s_mem, cfg, seed, notes) if classes else False
    scores = Scores(calibrated=calibrated, percentile=cfg.percentile)
    gap_classes = [k for k in classes.values() if k.to_members is not None and k.to_reference is not None]
    if calibrated and gap_classes:
        for k in gap_classes:
            pool = min(k.to_members.shape[1], k.to_reference.shape[1])
            k.diff = _expected_max(k.to_members, pool) - _expected_max(k.to_reference, pool)
        scores.gap = float(np.concatenate([k.diff for k in gap_classes]).mean())
        if cfg.bootstrap:
            dist = _bootstrap_gap(gap_classes, cfg, np.random.default_rng(seed))
            alpha = (1.0 - cfg.confidence) / 2.0
            scores.gap_ci_low, scores.gap_ci_high = (float(v) for v in np.quantile(dist, [alpha, 1.0 - alpha]))
        notes.append(f"Gap: best SSIM to an equal-size random subset of the class's members (as many as its reference "
                     f"images) minus best SSIM to its reference images, averaged over reconstructions; {cfg.confidence:.0%} "
                     f"bootstrap CI over reconstructions and member subsets ({cfg.bootstrap} resamples).")
    scores.lpips_note = _lpips_nearest(classes, samples, recon, data, lpips, cfg)
    for c, k in classes.items():
        mine = [samples[r] for r in k.recon]
        best_vals = [s.nearest_member_ssim for s in mine if s.nearest_member_ssim is not None]
        scores.per_class.append(ClassScore(
            label=c, name=data.class_names[c] if c < len(data.class_names) else str(c), count=len(mine),
            matched_ssim_mean=_mean([s.matched_member_ssim for s in mine]), best_ssim_mean=_mean(best_vals),
            best_ssim_max=max(best_vals) if best_vals else None,
            reference_best_ssim_mean=_mean([s.nearest_reference_ssim for s in mine]),
            gap=float(k.diff.mean()) if k.diff is not None else None,
            likely_copy_share=float(np.mean([s.likely_copy for s in mine])) if calibrated else None,
            copy_threshold=k.threshold,
        ))
    best_all = [s.nearest_member_ssim for s in samples if s.nearest_member_ssim is not None]
    scores.matched_ssim_mean = _mean([s.matched_member_ssim for s in samples])
    scores.best_ssim_mean, scores.best_ssim_max = _mean(best_all), (max(best_all) if best_all else None)
    scores.reference_best_ssim_mean = _mean([s.nearest_reference_ssim for s in samples])
    scores.likely_copy_share = float(np.mean([s.likely_copy for s in samples])) if calibrated and samples else None
    scores.lpips_best_mean = _mean([s.nearest_member_lpips for s in samples])
    scores.samples = samples
    scores.calibration_note = " ".join(notes) if samples else "No reconstructions to score."
    log.info("scored %d reconstructions in %.1f s", len(samples), time.perf_counter() - start)
    return scores
