"""Binarised neural networks in torch: training modules and the exact deploy form.

The training form (:class:`BNN`) is an ``nn.Sequential`` of

``Flatten -> InputBinarizer -> [BinaryLinear -> BatchNorm1d -> SignActivation]* -> BinaryLinear(bias)``

with ±1 (or ternary −1/0/+1) weights through a straight-through estimator (STE), sign
activations (0 maps to +1) and batch norm. The input binarisation is part of the network:
pixels in [0, 1] become ``sign(x - 0.5)``.

The deploy form (:func:`deploy_module`) is what the project exports to ONNX: batch norm is
folded into half-integer biases, so every ``Sign`` node sees a value that is never zero and
the ONNX graph computes exactly the same function as the training form in eval mode.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from auditor_bnn_sat.network import BinaryNetwork

log = logging.getLogger(__name__)

BIAS_STEP = 1.0 / 64.0  # output biases live on this grid so float32 logits are exact


class InputBinarizer(nn.Module):
    """Pixels -> ±1 bits: ``sign(x - threshold)`` (a pixel exactly at the threshold gives 0)."""

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.tensor(float(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x - self.threshold)


class SignActivation(nn.Module):
    """Sign activation.

    Args:
        mode: ``"ge0"`` maps 0 to +1 and trains with a clipped STE (the training form);
            ``"sign"`` is ``torch.sign`` (0 maps to 0; exports as an ONNX ``Sign`` node).
    """

    def __init__(self, mode: str = "ge0") -> None:
        super().__init__()
        if mode not in ("ge0", "sign"):
            raise ValueError(f"SignActivation mode must be 'ge0' or 'sign', got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "sign":
            return torch.sign(x)
        hard = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
        if not torch.is_grad_enabled() or not x.requires_grad:
            return hard
        soft = x.clamp(-1.0, 1.0)
        return soft + (hard - soft).detach()

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class BinaryLinear(nn.Linear):
    """A linear layer whose forward uses ±1 (or ternary) weights through an STE.

    Args:
        in_features: Inputs.
        out_features: Outputs.
        bias: Learn a bias; it is quantised to multiples of :data:`BIAS_STEP` in the forward.
        sparsity: Fraction of weights (smallest latent magnitudes) forced to 0, making the
            layer ternary and its cardinality constraints shorter (SAT-friendly training).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, sparsity: float = 0.0) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
        self.sparsity = float(sparsity)
        nn.init.uniform_(self.weight, -1.0, 1.0)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def binary_weight(self) -> torch.Tensor:
        """The weights the forward uses: values in {-1, 0, +1} (0 only when sparse).

        Sparse layers keep the ``round((1 - sparsity) * in_features)`` largest latent weights of
        every row (balanced per neuron, so every cardinality constraint has the same length).
        """
        w = self.weight.detach()
        q = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
        if self.sparsity > 0.0:
            keep = max(1, round((1.0 - self.sparsity) * w.shape[1]))
            mask = torch.zeros_like(w)
            mask.scatter_(1, w.abs().topk(keep, dim=1).indices, 1.0)
            q = q * mask
        return q

    def quantised_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        return torch.round(self.bias.detach() / BIAS_STEP) * BIAS_STEP

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.binary_weight()
        w = self.weight + (q - self.weight).detach() if self.weight.requires_grad else q
        b = None
        if self.bias is not None:
            qb = self.quantised_bias()
            b = self.bias + (qb - self.bias).detach() if self.bias.requires_grad else qb
        return F.linear(x, w, b)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", sparsity={self.sparsity}"


class BNN(nn.Sequential):
    """A dense BNN ``arch[0]-arch[1]-...-arch[-1]`` (``arch[0]`` = pixels of ``input_shape``).

    Args:
        arch: Layer widths, input first, classes last (``[784, 100, 10]``).
        input_shape: C, H, W of one image; ``C*H*W`` must equal ``arch[0]``.
        sparsity: Fraction of zero weights per hidden layer (0 = dense ±1).
        threshold: Pixel value at which the input binarisation switches.
    """

    def __init__(self, arch: Sequence[int], input_shape: tuple[int, int, int], sparsity: float = 0.0,
                 threshold: float = 0.5) -> None:
        arch = [int(a) for a in arch]
        c, h, w = input_shape
        if len(arch) < 3:
            raise ValueError(f"arch needs an input, at least one hidden layer and an output, got {arch}")
        if c * h * w != arch[0]:
            raise ValueError(f"arch[0] = {arch[0]} inputs but input_shape {input_shape} has {c * h * w} pixels")
        layers: list[nn.Module] = [nn.Flatten(), InputBinarizer(threshold)]
        for n_in, n_out in zip(arch[:-2], arch[1:-1]):
            layers += [BinaryLinear(n_in, n_out, sparsity=sparsity), nn.BatchNorm1d(n_out), SignActivation("ge0")]
        layers.append(BinaryLinear(arch[-2], arch[-1], bias=True))
        super().__init__(*layers)
        self.arch, self.input_shape, self.sparsity = arch, tuple(input_shape), sparsity

    def clip_weights(self) -> None:
        """Keep latent weights in [-1, 1] (standard BNN training)."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, BinaryLinear):
                    m.weight.clamp_(-1.0, 1.0)


def deploy_module(net: BinaryNetwork) -> nn.Sequential:
    """The exact deploy form of an extracted network: integer thresholds as half-integer biases.

    Hidden neuron ``j`` fires iff ``W_j . x >= C_j``; with ``x`` in {-1,+1} the sum is an
    integer, so ``sign(W_j . x - C_j + 0.5)`` is never 0 and the ``Sign`` node is exact.

    Args:
        net: An extracted :class:`~auditor_bnn_sat.network.BinaryNetwork` whose input bits
            are the binarised pixels of a network with one binarisation threshold per pixel.

    Returns:
        ``Flatten -> InputBinarizer -> [Linear -> Sign]* -> Linear``, eval mode.
    """
    thresholds = net.pixel_thresholds()
    layers: list[nn.Module] = [nn.Flatten(), InputBinarizer(0.5)]
    if thresholds is not None:
        layers[1].threshold = torch.as_tensor(thresholds, dtype=torch.float32)
    for layer in net.layers:
        lin = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(layer.weight, dtype=torch.float32))
            lin.bias.copy_(torch.as_tensor(-layer.threshold.astype("float64") + 0.5, dtype=torch.float32))
        layers += [lin, SignActivation("sign")]
    out = nn.Linear(net.output.weight.shape[1], net.output.weight.shape[0])
    with torch.no_grad():
        out.weight.copy_(torch.as_tensor(net.output.weight, dtype=torch.float32))
        out.bias.copy_(torch.as_tensor(net.output.bias, dtype=torch.float32))
    layers.append(out)
    return nn.Sequential(*layers).eval().requires_grad_(False)


def random_bnn(arch: Sequence[int], input_shape: tuple[int, int, int], seed: int = 0, sparsity: float = 0.0) -> BNN:
    """An untrained BNN with random weights, batch-norm statistics and output biases (eval mode).

    Used by tests and examples: random statistics make thresholds, negative BN scales and
    constant neurons appear that a trained net may not have.
    """
    gen = torch.Generator().manual_seed(seed)
    model = BNN(arch, input_shape, sparsity=sparsity)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, BinaryLinear):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 2 - 1)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 4 - 2)
            elif isinstance(m, nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) * 6 - 3)
                m.running_var.copy_(torch.rand(n, generator=gen) * 3.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 2 - 1)
                m.bias.copy_(torch.rand(n, generator=gen) * 2 - 1)
    return model.eval()
