"""Input gradients for models that only answer queries.

The estimator is antithetic Gaussian finite differences (a two-sided SPSA variant): for an
input x and upstream gradient g on the logits,

    grad_x ≈ (1/q) Σ_k [ g · (f(x + σ u_k) − f(x − σ u_k)) / (2σ) ] u_k,   u_k ~ N(0, I)

It is unbiased for the gradient of the Gaussian-smoothed model and costs 2·q queries per
image per backward pass. Wrapped in a ``torch.autograd.Function``, attacks use it exactly
like autograd; the report labels such runs ``zeroth_order``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from auditor.core.capabilities import Capability
from auditor.models.model import Classifier

log = logging.getLogger(__name__)


class _QueryGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, query: Callable[[torch.Tensor], torch.Tensor], directions: int,
                sigma: float, counter: list[int]) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.query, ctx.directions, ctx.sigma, ctx.counter = query, directions, sigma, counter
        counter[0] += x.shape[0]
        return query(x.detach())

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        n, q, sigma = x.shape[0], ctx.directions, ctx.sigma
        u = torch.randn((q, *x.shape), dtype=x.dtype)
        plus = (x.unsqueeze(0) + sigma * u).reshape(q * n, *x.shape[1:])
        minus = (x.unsqueeze(0) - sigma * u).reshape(q * n, *x.shape[1:])
        outs = ctx.query(torch.cat([plus, minus]))
        ctx.counter[0] += 2 * q * n
        f_plus, f_minus = outs[: q * n].view(q, n, -1), outs[q * n:].view(q, n, -1)
        slope = ((f_plus - f_minus) * grad_out.unsqueeze(0)).sum(-1) / (2 * sigma)  # [q, n]
        grad = (slope.view(q, n, *([1] * (x.ndim - 1))) * u).mean(0)
        return grad, None, None, None, None


class ZerothOrderModule(nn.Module):
    """A module whose forward queries the model and whose backward estimates input gradients."""

    def __init__(self, query: Callable[[torch.Tensor], torch.Tensor], directions: int = 32, sigma: float = 0.01) -> None:
        super().__init__()
        self.query, self.directions, self.sigma = query, directions, sigma
        self.queries = [0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _QueryGradient.apply(x, self.query, self.directions, self.sigma, self.queries)


class ZerothOrderClassifier(Classifier):
    """Wraps a query-only classifier so that ``module()`` returns the zeroth-order estimator."""

    def __init__(self, inner: Classifier, directions: int = 32, sigma: float = 0.01) -> None:
        self.inner = inner
        self.info = inner.info
        self.num_classes, self.input_shape = inner.num_classes, inner.input_shape
        self.capabilities = frozenset(inner.capabilities | {Capability.GRADIENTS})
        self.zeroth_order = True
        self._module = ZerothOrderModule(inner.logits, directions, sigma)
        self._preprocess = getattr(inner, "_preprocess", None)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner.logits(images)

    def module(self) -> nn.Module:
        return self._module

    @property
    def queries(self) -> int:
        return self._module.queries[0]

    def __getattr__(self, name: str):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
