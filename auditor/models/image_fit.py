"""Fitting the auditor's images to a model's input when their size or channels differ.

Grey images become RGB by repetition and RGB becomes grey by averaging; a different size is
either resized (bilinear) or centre-padded / centre-cropped. The preflight tries each fit and keeps
the one the model classifies best; every fit keeps pixels in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from auditor.core.errors import DataError

SPATIAL_FITS = ("resized", "padded")


def fits_for(data_shape: tuple[int, ...], model_shape: tuple[int, int, int]) -> list[str | None]:
    """The fits to try: ``[None]`` when the shapes agree."""
    if tuple(data_shape) == tuple(model_shape):
        return [None]
    (dc, dh, dw), (mc, mh, mw) = data_shape, model_shape
    if dc != mc and {dc, mc} != {1, 3}:
        raise DataError(f"the data's images have {dc} channels and the model takes {mc}; only grey <-> RGB can be fitted")
    channel = None if dc == mc else ("grey to RGB" if mc == 3 else "RGB to grey")
    if (dh, dw) == (mh, mw):
        return [channel]
    return [f"{channel}, {s}" if channel else s for s in SPATIAL_FITS]


def fit_images(images: torch.Tensor, shape: tuple[int, int, int], fit: str) -> torch.Tensor:
    """``images`` [N, C, H, W] in [0, 1] fitted to ``shape`` (C, H, W) as ``fit`` says."""
    c, h, w = shape
    if images.shape[1] != c:
        images = images.repeat(1, c, 1, 1) if c == 3 else images.mean(1, keepdim=True)
    if tuple(images.shape[2:]) == (h, w):
        return images.contiguous()
    if fit.endswith("resized"):
        return F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    dh, dw = h - images.shape[2], w - images.shape[3]
    top, left = dh // 2, dw // 2
    # F.pad with negative amounts crops
    return F.pad(images, (left, dw - left, top, dh - top)).contiguous()
