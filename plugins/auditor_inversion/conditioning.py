"""Class conditioning for the generator: label, soft vector, hot matrix, and vector+matrix.

* ``label``: a learned embedding of the class index; the KL target P is one-hot.
* ``vector``: P = softmax of a random Gaussian vector, permuted so that its argmax is the label
  (soft-vector conditioning); ``hot=True`` makes P one-hot (the reconstruction phase of tldr).
* ``matrix``: a "hot" class matrix injected as an extra channel at the generator's first feature map.
  With K classes and a first map of side S: when K <= S the matrix is the paper's K×K cross
  (row k and column k set) resized to S×S by nearest neighbour; otherwise the class is written on
  a fixed G×G grid, G = ceil(sqrt(K)), as the cross through cell divmod(k, G), resized to S×S. Every
  class gets a distinct pattern, and the map never grows with K.
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
    if num_classes <= side:
        grid, rows, cols = num_classes, labels, labels
    else:
        grid = math.ceil(math.sqrt(num_classes))
        rows, cols = labels // grid, labels % grid
    m = torch.zeros((len(labels), 1, grid, grid))
    idx = torch.arange(len(labels))
    m[idx, 0, rows, :] = 1.0
    m[idx, 0, :, cols] = 1.0
    return F.interpolate(m, size=(side, side), mode="nearest")
