"""Shortcut datasets: paste a small class-coded patch into images.

A shortcut is an s×s square whose *position* (``mode="position"``), *intensity* (``"intensity"``)
or both (``"both"``, the construction of the paper's v2) depends on the class. Defaults (our
choice; the paper does not fix them): class positions spread evenly around a ring one pixel inside the image
border (away from the object, which sits in the middle of MNIST-like images), and class intensities
evenly spaced from ``intensity_low`` to ``intensity_high``. Both are configurable.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

ShortcutMode = Literal["position", "intensity", "both"]


class ShortcutSpec(BaseModel):
    """How the shortcut is built (study options ``--mode``, ``--patch-size``, ``--fraction``...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: ShortcutMode = Field("both", description="What codes the class: patch position, patch intensity, or both.")
    patch_size: int = Field(3, ge=1, description="Side of the square patch in pixels.")
    positions: list[tuple[int, int]] | None = Field(
        None, description="Top-left (row, col) of each class's patch; default: evenly spaced on a ring 1 px inside the border.")
    fixed_position: tuple[int, int] = Field((1, 1), description="Top-left (row, col) used by every class in intensity mode.")
    intensity_low: float = Field(0.2, ge=0, le=1, description="Intensity of class 0 in intensity/both modes.")
    intensity_high: float = Field(1.0, ge=0, le=1, description="Intensity of the last class (position mode uses it for every class).")
    fraction: float = Field(1.0, ge=0, le=1, description="Share of training images that carry their class's shortcut.")
    margin: int = Field(1, ge=0, description="Distance of the default ring from the image border, in pixels.")

    @model_validator(mode="after")
    def _check(self) -> ShortcutSpec:
        if self.intensity_low > self.intensity_high:
            raise ValueError(f"intensity_low must be <= intensity_high, got {self.intensity_low} > {self.intensity_high}")
        return self


def ring_positions(num_classes: int, height: int, width: int, size: int, margin: int = 1) -> list[tuple[int, int]]:
    """``num_classes`` top-left corners evenly spaced (clockwise from the top-left) on a ring ``margin`` px inside the border."""
    top, left = margin, margin
    bottom, right = height - size - margin, width - size - margin
    if bottom < top or right < left:
        raise ValueError(f"a {size}px patch with margin {margin} does not fit a {height}×{width} image")
    h_len, w_len = bottom - top, right - left
    perimeter = 2 * (h_len + w_len)
    if perimeter == 0:
        return [(top, left)] * num_classes
    out = []
    for k in range(num_classes):
        d = perimeter * k / num_classes
        if d < w_len:
            r, c = top, left + d
        elif d < w_len + h_len:
            r, c = top + (d - w_len), right
        elif d < 2 * w_len + h_len:
            r, c = bottom, right - (d - w_len - h_len)
        else:
            r, c = bottom - (d - 2 * w_len - h_len), left
        out.append((int(round(r)), int(round(c))))
    return out


class Shortcut:
    """A resolved shortcut for one image shape and class count: per-class corner and intensity."""

    def __init__(self, spec: ShortcutSpec, num_classes: int, image_shape: tuple[int, int, int]) -> None:
        _, height, width = image_shape
        s = spec.patch_size
        self.spec, self.num_classes, self.image_shape, self.size = spec, num_classes, image_shape, s
        if spec.mode == "intensity":
            positions = [tuple(spec.fixed_position)] * num_classes
        elif spec.positions is not None:
            positions = [tuple(p) for p in spec.positions]
        else:
            positions = ring_positions(num_classes, height, width, s, spec.margin)
        if len(positions) != num_classes:
            raise ValueError(f"expected {num_classes} patch positions (one per class), got {len(positions)}")
        for k, (r, c) in enumerate(positions):
            if not (0 <= r <= height - s and 0 <= c <= width - s):
                raise ValueError(f"class {k}: a {s}px patch at {(r, c)} does not fit a {height}×{width} image")
        self.positions: list[tuple[int, int]] = [(int(r), int(c)) for r, c in positions]
        if spec.mode == "position":
            self.intensities = [spec.intensity_high] * num_classes
        else:
            span = spec.intensity_high - spec.intensity_low
            self.intensities = [spec.intensity_low + span * k / max(num_classes - 1, 1) for k in range(num_classes)]

    @property
    def area_fraction(self) -> float:
        return self.size * self.size / (self.image_shape[1] * self.image_shape[2])

    def apply(self, images: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """A copy of ``images`` with the patch of class ``codes[i]`` pasted into image i (code -1: left clean)."""
        out = images.clone()
        s = self.size
        for k in range(self.num_classes):
            idx = (codes == k).nonzero().flatten()
            if len(idx):
                r, c = self.positions[k]
                out[idx, :, r:r + s, c:c + s] = self.intensities[k]
        return out

    def plant(self, images: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Training set: a ``spec.fraction`` share of images (chosen with ``seed``) get their own class's patch.

        Returns the images and the mask of images that carry the patch.
        """
        g = torch.Generator().manual_seed(seed)
        carry = torch.rand(len(labels), generator=g) < self.spec.fraction
        codes = torch.where(carry, labels, torch.full_like(labels, -1))
        return self.apply(images, codes), carry

    def conflicting_codes(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """For each image a random class different from its own (the patch of a wrong class)."""
        g = torch.Generator().manual_seed(seed)
        shift = torch.randint(1, self.num_classes, (len(labels),), generator=g)
        return (labels + shift) % self.num_classes

    def describe(self) -> str:
        s = self.size
        where = ", ".join(f"{k}:{p}" for k, p in enumerate(self.positions)) if self.spec.mode != "intensity" else str(self.positions[0])
        levels = ", ".join(f"{v:.2f}" for v in self.intensities)
        return (f"{self.spec.mode} shortcut, {s}×{s} px patch ({self.area_fraction:.1%} of the image) on "
                f"{self.spec.fraction:.0%} of training images; top-left corners {where}; intensities {levels}")
