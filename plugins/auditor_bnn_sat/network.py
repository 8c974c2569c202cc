"""The exact integer form of a binarised network, independent of where it came from.

Conventions: input bits ``v`` in {0, 1} stand for ``x = 2v - 1`` in {-1, +1}. Hidden neuron
``j`` of a layer outputs +1 iff ``W_j . x >= C_j`` (``W`` in {-1, 0, +1}, ``C`` an integer).
Logits are ``scale * (W_out . x) + bias`` with one positive ``scale``; only their argmax
matters, so the output is stored as ``W_out`` and ``bias / scale`` (``bias`` below). The
predicted class is ``torch.argmax``: the first index among equal maxima.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch


@dataclass
class BinaryLayer:
    """One hidden layer: ``y_j = +1  iff  weight[j] . x >= threshold[j]``."""

    weight: np.ndarray     # int8 [out, in], values in {-1, 0, 1}
    threshold: np.ndarray  # int64 [out]

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.int8)
        self.threshold = np.asarray(self.threshold, dtype=np.int64)
        if self.weight.ndim != 2 or self.threshold.shape != (self.weight.shape[0],):
            raise ValueError(f"expected weight [out, in] and threshold [out], got {self.weight.shape} and {self.threshold.shape}")
        if not np.isin(self.weight, (-1, 0, 1)).all():
            raise ValueError("hidden weights must lie in {-1, 0, 1}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """±1 inputs [N, in] -> ±1 outputs [N, out] (int8)."""
        z = x.astype(np.int32) @ self.weight.T.astype(np.int32)
        return np.where(z >= self.threshold, 1, -1).astype(np.int8)

    def constant_outputs(self) -> np.ndarray:
        """Per neuron: +1 / -1 when it is constant for every input, else 0."""
        nnz = np.abs(self.weight).sum(1)
        out = np.zeros(len(self.threshold), dtype=np.int8)
        out[self.threshold <= -nnz] = 1
        out[self.threshold > nnz] = -1
        return out


@dataclass
class OutputLayer:
    """Scores ``s_c = weight[c] . x + bias[c]`` (bias in units of one weight step)."""

    weight: np.ndarray  # int8 [K, m] in {-1, 0, 1}
    bias: np.ndarray    # float64 [K]

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.int8)
        self.bias = np.asarray(self.bias, dtype=np.float64)

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    def beats_threshold(self, t: int, c: int) -> int:
        """Smallest integer ``k`` with: class ``t`` beats ``c``  iff  ``(W_t - W_c) . x >= k``.

        ``t`` beats ``c`` when ``s_t >= s_c`` for ``t < c`` and ``s_t > s_c`` for ``t > c``
        (torch.argmax keeps the first maximum). Computed in exact rational arithmetic.
        """
        gap = Fraction(float(self.bias[c])) - Fraction(float(self.bias[t]))  # need (W_t-W_c).x (>=|>) gap
        if t < c:
            return math.ceil(gap)
        return math.floor(gap) + 1

    def beats_matrix(self) -> np.ndarray:
        """``k[t, c]`` = :meth:`beats_threshold` (diagonal: a very negative number)."""
        if getattr(self, "_beats", None) is None:
            k = self.num_classes
            m = np.full((k, k), -(2**40), dtype=np.int64)
            for t in range(k):
                for c in range(k):
                    if c != t:
                        m[t, c] = self.beats_threshold(t, c)
            self._beats = m
        return self._beats

    def predict(self, x: np.ndarray) -> np.ndarray:
        """±1 inputs [N, m] -> predicted class [N] with torch.argmax tie-breaking (exact)."""
        z = x.astype(np.int64) @ self.weight.T.astype(np.int64)  # [N, K]
        diff = z[:, :, None] - z[:, None, :]                      # [N, t, c]
        wins = (diff >= self.beats_matrix()[None]).all(2)
        if not (wins.sum(1) == 1).all():  # exactly one class beats all others
            raise AssertionError("argmax encoding is inconsistent: not exactly one winner")
        return wins.argmax(1)


@dataclass
class BinaryNetwork:
    """An extracted BNN: how pixels become bits, the hidden layers, the output layer.

    Attributes:
        input_shape: C, H, W of one image.
        in_pixel: For each input bit, the flat pixel index (C*H*W order) it reads.
        in_on: Pixel value (0 or 1) that makes the bit 1; ``in_off`` makes it 0.
        in_const: -1 for a free bit, else its constant value (0 or 1).
        in_threshold: Per bit, the pixel threshold when every bit switches on above it.
        layers: Hidden layers.
        output: Output layer.
        binarize: Maps images [N, C, H, W] in [0, 1] to bits [N, n_in] exactly as the model does.
        notes: What the extraction noticed (folded constants, float caveats).
        exact: False when the float forward pass may differ from the integer form by rounding.
    """

    input_shape: tuple[int, int, int]
    in_pixel: np.ndarray
    in_on: np.ndarray
    in_off: np.ndarray
    in_const: np.ndarray
    layers: list[BinaryLayer]
    output: OutputLayer
    binarize: Callable[[torch.Tensor], np.ndarray] | None = None
    in_threshold: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    exact: bool = True
    source: str = ""

    @property
    def n_inputs(self) -> int:
        return int(len(self.in_pixel))

    @property
    def num_classes(self) -> int:
        return self.output.num_classes

    @property
    def arch(self) -> list[int]:
        return [self.n_inputs] + [int(l.weight.shape[0]) for l in self.layers] + [self.num_classes]

    def pixel_thresholds(self) -> np.ndarray | None:
        """Pixel thresholds in NCHW-flat order when bits read pixels in order and switch on above them."""
        if self.in_threshold is None or not np.array_equal(self.in_pixel, np.arange(self.n_inputs)):
            return None
        return self.in_threshold

    # ----------------------------------------------------------------- forward passes
    def hidden(self, bits: np.ndarray) -> list[np.ndarray]:
        """Bits [N, n_in] (0/1) -> the ±1 activations of every hidden layer."""
        x = 2 * np.asarray(bits, dtype=np.int8) - 1
        acts = []
        for layer in self.layers:
            x = layer.forward(x)
            acts.append(x)
        return acts

    def predict_bits(self, bits: np.ndarray) -> np.ndarray:
        """Bits [N, n_in] (0/1) -> predicted class [N], in exact integer arithmetic."""
        bits = np.atleast_2d(bits)
        acts = self.hidden(bits)
        last = acts[-1] if acts else 2 * bits.astype(np.int8) - 1
        return self.output.predict(last)

    def margins(self, bits: np.ndarray, target: int) -> np.ndarray:
        """How far each input is from class ``target`` winning: min over c of ``(W_t-W_c).x - k_tc``.

        Non-negative iff the input is classified as ``target``.
        """
        bits = np.atleast_2d(bits)
        acts = self.hidden(bits)
        last = (acts[-1] if acts else 2 * bits.astype(np.int8) - 1).astype(np.int64)
        w = self.output.weight.astype(np.int64)
        k = self.output.beats_matrix()[target]
        others = [c for c in range(self.num_classes) if c != target]
        diff = last @ (w[target][:, None] - w[others].T)          # [N, K-1]
        return (diff - k[others][None, :]).min(1)

    # ----------------------------------------------------------------- pixels <-> bits
    def to_images(self, bits: np.ndarray) -> torch.Tensor:
        """Bits [N, n_in] -> images [N, C, H, W] in {0, 1} that the model maps to those bits."""
        bits = np.atleast_2d(np.asarray(bits, dtype=bool))
        n = bits.shape[0]
        flat = np.zeros((n, int(np.prod(self.input_shape))), dtype=np.float32)
        values = np.where(bits, self.in_on[None, :], self.in_off[None, :])
        flat[:, self.in_pixel] = values
        return torch.from_numpy(flat).view(n, *self.input_shape)

    def to_bits(self, images: torch.Tensor) -> np.ndarray:
        """Images [N, C, H, W] in [0, 1] -> bits [N, n_in] as the model binarises them."""
        if self.binarize is None:
            raise RuntimeError("this network has no binarize function")
        return self.binarize(images)

    def free_inputs(self) -> np.ndarray:
        return np.flatnonzero(self.in_const < 0)

    def summary(self) -> str:
        const = sum(int((l.constant_outputs() != 0).sum()) for l in self.layers)
        nnz = [int(np.abs(l.weight).sum()) for l in self.layers]
        return (f"BNN {'-'.join(map(str, self.arch))}: {len(self.free_inputs())} free input bits, "
                f"{const} constant hidden neurons, nonzero weights per layer {nnz}")
