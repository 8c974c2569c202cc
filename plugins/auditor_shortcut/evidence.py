"""Inversion evidence: is a class's reconstruction unlike its real images in one small region?

For class k with real-image mean μ_k, the *difference energy* of a set of images is the per-pixel
mean of ‖x − μ_k‖² (summed over channels). Its *concentration* is the largest share of that energy
inside one s×s window, and its *lift* the concentration divided by the window's share of the image
(1 = spread evenly). Real images of class k give the baseline lift; a reconstruction whose lift is
several times the real one carries something small and localised that real images of its class lack:
the signature of a patch shortcut.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class RegionEvidence:
    """Where, and how strongly, one class's reconstructions concentrate their difference from real images."""

    target: int
    row: int
    col: int
    size: int
    share: float       # energy share in the best window
    lift: float        # share / window area share
    real_lift: float   # the same statistic for real images of the class
    excess: float = float("nan")  # mean |reconstruction − μ_k| inside the window
    agrees: bool | None = None    # within one probe-grid cell of the probe's best patch (None: no probe)

    @property
    def ratio(self) -> float:
        return self.lift / max(self.real_lift, 1e-9)


def class_means(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[K, C, H, W] mean image per class (zeros for a class without images)."""
    means = torch.zeros((num_classes, *images.shape[1:]))
    for k in range(num_classes):
        x = images[labels == k]
        if len(x):
            means[k] = x.mean(0)
    return means


def energy_map(images: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """[H, W] per-pixel mean over images of the squared difference from ``mean`` (channels summed)."""
    return ((images - mean[None]) ** 2).sum(1).mean(0)


def concentration(energy: torch.Tensor, size: int) -> tuple[float, int, int]:
    """(share of the total energy in the best size×size window, its top-left row, col)."""
    total = float(energy.sum())
    sums = F.avg_pool2d(energy[None, None], size, stride=1)[0, 0] * size * size
    flat = int(sums.argmax())
    row, col = divmod(flat, sums.shape[1])
    return (float(sums.max()) / total if total > 0 else 0.0), row, col


def inversion_regions(recon: torch.Tensor, recon_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
                      num_classes: int, size: int) -> list[RegionEvidence]:
    """Per class: the most concentrated window of the reconstructions' difference energy, with the real baseline."""
    _, _, height, width = recon.shape
    area = size * size / (height * width)
    means = class_means(real, real_labels, num_classes)
    out = []
    for k in range(num_classes):
        gen = recon[recon_labels == k]
        if not len(gen):
            continue
        share, row, col = concentration(energy_map(gen, means[k]), size)
        own = real[real_labels == k]
        real_share = concentration(energy_map(own, means[k]), size)[0] if len(own) else area
        excess = float((gen[:, :, row:row + size, col:col + size] - means[k][None, :, row:row + size, col:col + size]).abs().mean())
        out.append(RegionEvidence(k, row, col, size, share, share / area, real_share / area, excess))
    return out


def _contrast(x: torch.Tensor, row: int, col: int, size: int) -> float:
    """Mean of the size×size square minus the mean of the ring (``size`` px wide, clipped) around it, over all images."""
    _, _, height, width = x.shape
    r0, r1, c0, c1 = max(row - size, 0), min(row + 2 * size, height), max(col - size, 0), min(col + 2 * size, width)
    block = x[:, :, r0:r1, c0:c1]
    square = x[:, :, row:row + size, col:col + size]
    ring_count = block[0].numel() - square[0].numel()
    ring = (block.sum() - square.sum()) / (len(x) * max(ring_count, 1))
    return float(square.mean() - ring)


def patch_presence(recon: torch.Tensor, recon_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
                   positions: list[tuple[int, int]], intensities: list[float], size: int) -> tuple[list[float], list[float]]:
    """Per class: how much of its planted patch the reconstructions draw, and (control) of other classes' patches.

    Presence is the reconstructions' contrast at the planted square (square mean minus surrounding ring mean) divided by
    the contrast the planted patch has on real images of the class: 1 = the patch is drawn as planted, 0 = no square
    there. The control averages the same ratio at the other classes' spots (where this class has no patch); it is NaN
    when every class shares one spot (intensity mode).
    """
    own, control = [], []
    for k in range(len(positions)):
        gen, real_k = recon[recon_labels == k], real[real_labels == k]
        if not len(gen) or not len(real_k):
            own.append(float("nan"))
            control.append(float("nan"))
            continue
        ratios = []
        for (r, c), v in zip(positions, intensities):
            planted = real_k.clone()
            planted[:, :, r:r + size, c:c + size] = v
            reference = _contrast(planted, r, c, size)
            ratios.append(_contrast(gen, r, c, size) / reference if abs(reference) > 0.05 else float("nan"))
        own.append(ratios[k])
        others = [ratios[j] for j in range(len(positions)) if positions[j] != positions[k] and ratios[j] == ratios[j]]
        control.append(sum(others) / len(others) if others else float("nan"))
    return own, control


def mark_boxes(images: torch.Tensor, boxes: list[tuple[int, int, int] | None], scale: int,
               color: tuple[float, float, float] = (1.0, 0.1, 0.1)) -> torch.Tensor:
    """RGB copies of ``images`` upscaled by ``scale`` with a 1-px box around (row, col, size) per image (None: no box)."""
    x = images if images.shape[1] == 3 else images.expand(-1, 3, -1, -1)
    x = F.interpolate(x, scale_factor=scale, mode="nearest") if scale > 1 else x.clone()
    paint = torch.tensor(color).view(3, 1)
    h, w = x.shape[-2:]
    for i, box in enumerate(boxes):
        if box is None:
            continue
        r, c, s = box
        top, left = max(r * scale - 1, 0), max(c * scale - 1, 0)
        bottom, right = min((r + s) * scale, h - 1), min((c + s) * scale, w - 1)
        x[i, :, top, left:right + 1] = paint
        x[i, :, bottom, left:right + 1] = paint
        x[i, :, top:bottom + 1, left] = paint
        x[i, :, top:bottom + 1, right] = paint
    return x
