"""Class conditioning for the generator: label, soft vector, hot matrix, and vector+matrix.

* ``label``: a learned embedding of the class index; the KL target P is one-hot.
* ``vector``: P = softmax of a random Gaussian vector, permuted so that its argmax is the label
  (soft-vector conditioning); ``hot=True`` makes P one-hot (the reconstruction phase of tldr).
* ``matrix``: a "hot" class matrix injected as an extra channel at the generator's first feature map.
  With K classes and a first map of side S: when K <= S the matrix is the paper's K×K cross
  (row k and column k set) upsampled to S×S by nearest neighbour; when S < K <= S² the class is
  written on the fixed S×S grid as the cross through cell divmod(k, S); beyond that the class index
  is written in binary on the grid's first cells (row-major). Every class gets a distinct pattern
  and the map never grows with K.
* ``vector_matrix`` (default): both.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Conditioning = Literal["label", "vector", "matrix", "vector_matrix"]


def soft_vectors(labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> torch.Tensor:
    """softmax(ε / T), ε ~ N(0, I), with entries swapped so that argmax equals ``labels``."""
    eps = torch.randn((len(labels), num_classes), generator=generator) / temperature
    top = eps.argmax(1)
    rows = torch.arange(len(labels))
    swapped = eps.clone()
    swapped[rows, labels] = eps[rows, top]
    swapped[rows, top] = eps[rows, labels]
    return F.softmax(swapped, dim=1)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


def class_matrices(labels: torch.Tensor, num_classes: int, side: int) -> torch.Tensor:
    """[N, 1, side, side] hot class matrices (see the module docstring for the encoding)."""
    n = len(labels)
    idx = torch.arange(n)
    if num_classes <= side:
        m = torch.zeros((n, 1, num_classes, num_classes))
        m[idx, 0, labels, :] = 1.0
        m[idx, 0, :, labels] = 1.0
        return F.interpolate(m, size=(side, side), mode="nearest")
    m = torch.zeros((n, 1, side, side))
    if num_classes <= side * side:
        rows, cols = labels // side, labels % side
        m[idx, 0, rows, :] = 1.0
        m[idx, 0, :, cols] = 1.0
        return m
    bits = math.ceil(math.log2(num_classes))
    if bits > side * side:
        raise ValueError(f"{num_classes} classes do not fit a {side}×{side} class matrix")
    codes = ((labels[:, None] >> torch.arange(bits)[None, :]) & 1).float()
    m.view(n, -1)[:, :bits] = codes
    return m
