"""Augmented queries for online LiRA (``query_augmentations``): each image under a few fixed, label-preserving shifts.

LiRA (Carlini et al. 2022, "multiple queries") queries the target and every shadow model on the same fixed
augmentations of each image and fits the IN/OUT Gaussians per augmentation. A memorised image is usually still
memorised one pixel to the left; an unseen one's score moves differently, so the extra queries average out part of
the noise of a single scaled logit. ``"shifts"``: the image itself and its eight translations by ``query_shift`` pixels
(``(dx, dy)`` in ``{-s, 0, s}²``), with zero padding (the background of digit-like data; images are in [0, 1]). No
flips: they do not preserve the label of a digit. ``"none"``: the image itself only (the default).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from auditor_membership.signals import log_odds

if TYPE_CHECKING:
    from torch import nn

    from auditor import Classifier


def offsets(kind: str, shift: int = 1) -> list[tuple[int, int]]:
    """The ``(dx, dy)`` of every query, the identity first."""
    if kind == "none":
        return [(0, 0)]
    if kind != "shifts":
        raise ValueError(f"query_augmentations must be 'none' or 'shifts', got {kind!r}")
    if shift < 1:
        raise ValueError(f"query_shift must be at least 1 pixel, got {shift}")
    return [(dx, dy) for dy in (0, -shift, shift) for dx in (0, -shift, shift)]   # (0, 0) first


def translate(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``images`` [N, C, H, W] moved ``dx`` pixels right and ``dy`` down; what enters at the border is zero."""
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {list(images.shape)}")
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise ValueError(f"a shift of ({dx}, {dy}) pixels leaves nothing of a {h}x{w} image")
    out = torch.zeros_like(images)
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = images[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


@torch.no_grad()
def target_scaled_logits(model: Classifier, images: torch.Tensor, labels: torch.Tensor, shifts: list[tuple[int, int]],
                         batch_size: int) -> np.ndarray:
    """The target's ``φ = log(p_y / (1 - p_y))`` of every image under every query, [len(images), len(shifts)], float64,
    through the query interface only."""
    out = np.empty((len(images), len(shifts)))
    y = labels.numpy()
    for a, (dx, dy) in enumerate(shifts):
        moved = translate(images, dx, dy)
        logits = torch.cat([model.logits(moved[i:i + batch_size]).detach().cpu().double()
                            for i in range(0, len(moved), batch_size)]).numpy()
        out[:, a] = log_odds(logits, y)
    return out


def shadow_scaled_logits(nets: list[nn.Module], images: torch.Tensor, labels: torch.Tensor, shifts: list[tuple[int, int]],
                         batch_size: int) -> np.ndarray:
    """Every shadow model's ``φ`` of every image under every query, [len(images), len(nets), len(shifts)]."""
    from auditor_membership.reference import reference_scaled_logits

    return np.stack([reference_scaled_logits(nets, translate(images, dx, dy), labels, batch_size) for dx, dy in shifts], axis=2)
