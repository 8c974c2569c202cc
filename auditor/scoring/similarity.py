"""Image similarity: SSIM (plain or after an affine intensity fit), PSNR, Hungarian matching.

SSIM is the project's own batched torch implementation: the Gaussian filter
(sigma 1.5, truncate 3.5, an 11-tap window) is applied as separable banded-matrix products
over the valid region only, which is exactly what scikit-image averages after cropping
``(win - 1) // 2`` pixels on each side, so the boundary mode never matters. scikit-image
is the reference in the tests, not the implementation.

The *affine* comparison first maps each image ``x`` onto its target ``y`` by the intensity map
``a·x + b`` with ``a >= 0`` that minimises ``||a·x + b - y||²`` over all pixels (ordinary least
squares; a negative slope is clamped to 0, the limit of the ``a > 0`` problem), then takes SSIM of
the fitted image and ``y``. Reconstructions often differ from their member only in background level
and contrast; plain SSIM punishes that, the fitted one does not. The fitted image is not clipped.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

Comparison = Literal["ssim", "affine"]
COMPARISONS: tuple[str, ...] = ("ssim", "affine")

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


def _blocks(x: torch.Tensor, chunk: int | None, temporaries: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """The Gaussian band matrices for x's H and W, and a block of ``rb`` x images by ``mb`` y images whose
    ``temporaries`` per-pair maps fit the cache-sized budget (or ``chunk`` pairs)."""
    gh, gw = _band(x.shape[2], str(x.device)), _band(x.shape[3], str(x.device))
    pairs = max(1, chunk if chunk is not None else _BLOCK_ELEMENTS // (temporaries * gh.shape[0] * gw.shape[0]))
    rb = max(1, min(x.shape[0], math.isqrt(pairs)))
    return gh, gw, rb, max(1, pairs // rb)


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
    gh, gw, rb, mb = _blocks(x, chunk, temporaries=1)
    ho, wo = gh.shape[0], gw.shape[0]
    c1_half = torch.tensor(C1 / 2, device=x.device)
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


def affine_fit(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares intensity map of every ``x`` image onto every ``y`` image: ``a, b`` [N, M].

    ``a = max(0, cov(x, y) / var(x))`` and ``b = mean(y) - a·mean(x)`` over all pixels and channels;
    a constant ``x`` gets ``a = 0`` (the fit is then the constant ``mean(y)``).
    """
    xf, yf = x.reshape(x.shape[0], -1).double(), y.reshape(y.shape[0], -1).double()
    mx, my = xf.mean(1), yf.mean(1)
    xc, yc = xf - mx[:, None], yf - my[:, None]
    var = (xc * xc).mean(1)
    cov = xc @ yc.T / xf.shape[1]
    a = torch.where(var[:, None] > 1e-12, cov / var.clamp_min(1e-12)[:, None], torch.zeros_like(cov)).clamp_(min=0.0)
    b = my[None, :] - a * mx[:, None]
    return a.float(), b.float()


def affine_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pair SSIM of ``a·x + b`` (fitted to ``y``) and ``y`` -> [N]."""
    _check(x, y, paired=True)
    a, b = (v.diagonal() for v in affine_fit(x, y)) if x.shape[0] else (torch.zeros(0), torch.zeros(0))
    return ssim(x.float() * a.view(-1, 1, 1, 1) + b.view(-1, 1, 1, 1), y) if x.shape[0] else torch.zeros(0)


def affine_ssim_matrix(x: torch.Tensor, y: torch.Tensor, *, chunk: int | None = None) -> torch.Tensor:
    """All-pairs affine-fit SSIM [N, M]: SSIM of ``a_ij·x_i + b_ij`` and ``y_j``.

    The fit only rescales local statistics (mean ``a·mu + b``, variance ``a²·var``, covariance
    ``a·cov``), so it reuses the per-image moments and the one per-pair cross term of
    :func:`ssim_matrix`.
    """
    _check(x, y, paired=False)
    n, channels, h, w = x.shape
    m = y.shape[0]
    out = torch.zeros(n, m, dtype=torch.float32, device=x.device)
    if n == 0 or m == 0:
        return out
    a_all, b_all = (v.to(x.device) for v in affine_fit(x, y))
    gh, gw, rb, mb = _blocks(x, chunk, temporaries=2)
    ho, wo = gh.shape[0], gw.shape[0]
    for c in range(channels):
        xs, ys = x[:, c].float(), y[:, c].float()
        mux, vx = _moments(xs, gh, gw)
        muy, vy = _moments(ys, gh, gw)
        y_cols = (ys - _CENTRE).permute(2, 1, 0).contiguous()  # [W, H, M]
        my = muy.permute(2, 1, 0).contiguous()[:, None]  # [Wo, 1, Ho, M]
        my2 = (muy * muy + C1).permute(2, 1, 0).contiguous()[:, None]
        vyc = (vy + C2).permute(2, 1, 0).contiguous()[:, None]
        for r0 in range(0, n, rb):
            xr = xs[r0:r0 + rb] - _CENTRE
            k = xr.shape[0]
            weights = (gh[None, None] * xr.permute(2, 0, 1)[:, :, None, :]).reshape(w, k * ho, h)
            mx = mux[r0:r0 + rb].permute(2, 0, 1)[..., None]  # [Wo, k, Ho, 1]
            vxb = vx[r0:r0 + rb].permute(2, 0, 1)[..., None]
            for s0 in range(0, m, mb):
                yb = y_cols[:, :, s0:s0 + mb]
                q = yb.shape[2]
                a = a_all[r0:r0 + k, s0:s0 + q][None, :, None, :]
                b = b_all[r0:r0 + k, s0:s0 + q][None, :, None, :]
                myb = my[..., s0:s0 + mb]
                cov = (gw @ torch.bmm(weights, yb).view(w, -1)).view(wo, k, ho, q)
                cov.addcmul_(mx - _CENTRE, myb - _CENTRE, value=-1.0)  # local covariance of x and y
                mxa = (a * mx).add_(b)
                num = (mxa * myb).mul_(2).add_(C1).mul_(cov.mul_(a).mul_(2).add_(C2))
                den = mxa.square_().add_(my2[..., s0:s0 + mb]).mul_((a * a * vxb).add_(vyc[..., s0:s0 + mb]))
                out[r0:r0 + k, s0:s0 + q] += num.div_(den).sum(dim=(0, 2))
    return out.mul_(1.0 / (channels * ho * wo)).clamp_(-1.0, 1.0)


def similarity_matrix(x: torch.Tensor, y: torch.Tensor, comparison: Comparison = "ssim") -> torch.Tensor:
    """All-pairs similarity [N, M] by the named comparison (``x`` is fitted to ``y`` for ``affine``)."""
    if comparison == "ssim":
        return ssim_matrix(x, y)
    if comparison == "affine":
        return affine_ssim_matrix(x, y)
    raise ValueError(f"unknown comparison {comparison!r}: expected one of {COMPARISONS}")
