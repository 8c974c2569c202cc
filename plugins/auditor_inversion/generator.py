"""A conditioned generator G(z, c) that adapts to the classifier's input shape.

Architecture: [z ; embed(c)] -> Linear -> (width·4) × S × S with S = ceil(H/4), optional hot class
matrix concatenated there, then two "resize-convolution" up-blocks (nearest ×2 upsampling, 3×3
convolution, batch norm, ReLU, Dropout2d) to 4S × 4S, a 3×3 convolution to C channels, sigmoid,
and a centre crop to H × W. Nearest-neighbour upsampling followed by a convolution avoids the
checkerboard artefacts of transposed convolutions. ``output="clamp"`` replaces the sigmoid by
``clamp(raw + 0.5, 0, 1)`` and keeps the unclamped images in ``self.raw`` for a pixel-range penalty. Heavy dropout in the up-blocks keeps samples
diverse; it stays on while sampling by default (``sample_dropout``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from auditor_inversion.conditioning import Conditioning, class_matrices


class ConditionedGenerator(nn.Module):
    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], *, latent_dim: int = 64,
                 conditioning: Conditioning = "vector_matrix", width: int = 32, dropout: float = 0.3,
                 output: str = "sigmoid") -> None:
        super().__init__()
        channels, height, width_px = image_shape
        if channels not in (1, 3):
            raise ValueError(f"expected 1 or 3 image channels, got {channels}")
        if max(height, width_px) > 256 or min(height, width_px) < 4:
            raise ValueError(f"image side must lie in 4..256, got {height}×{width_px}")
        self.num_classes, self.image_shape, self.latent_dim, self.conditioning = num_classes, image_shape, latent_dim, conditioning
        self.side = math.ceil(max(height, width_px) / 4)
        use_vector = conditioning in ("vector", "vector_matrix")
        self.use_matrix = conditioning in ("matrix", "vector_matrix")
        embed_dim = 0
        if conditioning == "label":
            self.embed: nn.Module = nn.Embedding(num_classes, latent_dim)
            embed_dim = latent_dim
        elif use_vector:
            self.embed = nn.Linear(num_classes, latent_dim)
            embed_dim = latent_dim
        else:
            self.embed = nn.Identity()
        c0 = width * 4
        self.fc = nn.Sequential(nn.Linear(latent_dim + embed_dim, c0 * self.side * self.side), nn.BatchNorm1d(c0 * self.side * self.side), nn.ReLU())
        c_in = c0 + (1 if self.use_matrix else 0)
        self.up = nn.Sequential(
            self._up_block(c_in, width * 2, dropout),
            self._up_block(width * 2, width, dropout),
        )
        self.out = nn.Conv2d(width, channels, 3, padding=1)
        self.c0 = c0
        if output not in ("sigmoid", "clamp"):
            raise ValueError(f"output must be 'sigmoid' or 'clamp', got {output!r}")
        self.output = output
        self.raw: torch.Tensor | None = None  # pre-clamp images of the last forward (output="clamp")

    @staticmethod
    def _up_block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1),
                             nn.BatchNorm2d(c_out), nn.ReLU(), nn.Dropout2d(dropout))

    def forward(self, z: torch.Tensor, cond_vector: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z [N, latent], cond_vector [N, K] (soft or one-hot), labels [N] -> images [N, C, H, W] in [0, 1]."""
        if self.conditioning == "label":
            h = torch.cat([z, self.embed(labels)], 1)
        elif self.conditioning in ("vector", "vector_matrix"):
            h = torch.cat([z, self.embed(cond_vector)], 1)
        else:
            h = z
        h = self.fc(h).view(len(z), self.c0, self.side, self.side)
        if self.use_matrix:
            h = torch.cat([h, class_matrices(labels, self.num_classes, self.side).to(h.device)], 1)
        raw = self.out(self.up(h))
        _, height, width = self.image_shape
        top, left = (raw.shape[2] - height) // 2, (raw.shape[3] - width) // 2
        raw = raw[:, :, top:top + height, left:left + width]
        if self.output == "sigmoid":
            return torch.sigmoid(raw)
        self.raw = raw + 0.5
        return self.raw.clamp(0.0, 1.0)
