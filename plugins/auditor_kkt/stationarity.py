"""The stationarity (KKT) residual: how far the weights are from a combination of the candidates' gradients.

For candidates x_i with labels y_i and coefficients lambda, the combined output is

* margin form, one coefficient:   f = (1/m) sum_i lambda_i (Phi_{y_i}(x_i) - max_{j != y_i} Phi_j(x_i))
* margin form, per wrong class:   f = (1/m) sum_i sum_{j != y_i} lambda_ij (Phi_{y_i}(x_i) - Phi_j(x_i))
* loss form:                      f = (1/m) sum_i lambda_i (-CE(Phi(x_i), y_i))

and the residual of layer l is ||theta_l - d f / d theta_l||^2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Form = Literal["margin", "loss"]


def combined_outputs(logits: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, form: Form) -> torch.Tensor:
    """Per-candidate lambda-weighted output f_i (shape [m]) whose parameter gradient the weights should equal."""
    if form == "loss":
        return -lam.reshape(-1) * F.cross_entropy(logits, y, reduction="none")
    own = logits.gather(1, y[:, None])
    if lam.dim() == 2:  # one coefficient per (candidate, class); the own-class column is ignored
        mask = torch.ones_like(logits, dtype=torch.bool).scatter(1, y[:, None], False)
        return ((own - logits) * lam * mask).sum(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return lam.reshape(-1) * (own[:, 0] - others.max(1).values)


def weighted_gradient(net: nn.Module, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor,
                      form: Form, create_graph: bool = True) -> list[torch.Tensor]:
    """d/d theta of (1/m) sum_i f_i, one tensor per parameter; differentiable in x and lambda when ``create_graph``."""
    f = combined_outputs(net(x), y, lam, form)
    return list(torch.autograd.grad(f.sum() / len(x), params, create_graph=create_graph))


@dataclass
class Residual:
    """Per-layer squared residuals and squared weight norms (tensors, one entry per parameter tensor)."""

    per_layer: torch.Tensor
    norms: torch.Tensor

    def loss(self, layer_normalised: bool) -> torch.Tensor:
        return (self.per_layer / self.norms).sum() if layer_normalised else self.per_layer.sum()

    @property
    def normalised(self) -> float:
        """sum_l ||theta_l - G_l||^2 / sum_l ||theta_l||^2: the share of the weights left unexplained."""
        return float(self.per_layer.detach().sum() / self.norms.sum())


def residual(params: list[torch.Tensor], grads: list[torch.Tensor]) -> Residual:
    per = torch.stack([(p.detach() - g).pow(2).sum() for p, g in zip(params, grads)])
    norms = torch.stack([p.detach().pow(2).sum().clamp_min(1e-30) for p in params])
    return Residual(per, norms)


def prior(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, lam: torch.Tensor, lambda_min: float, form: Form,
          y: torch.Tensor) -> torch.Tensor:
    """Input-range prior ||relu(x - hi)||^2 + ||relu(lo - x)||^2 plus 5 ||relu(lambda_min - lambda)||^2 (margin form)."""
    term = (x - hi).relu().pow(2).sum() + (lo - x).relu().pow(2).sum()
    if form == "loss":
        return term
    if lam.dim() == 2:
        mask = torch.ones_like(lam, dtype=torch.bool).scatter(1, y[:, None], False)
        own = lam * mask
        return term + 5 * (lambda_min - own.sum(1)).relu().pow(2).sum() + 5 * ((-own).relu().pow(2) * mask).sum()
    return term + 5 * (lambda_min - lam).relu().pow(2).sum()
