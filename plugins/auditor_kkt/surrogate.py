"""ReLU that goes forward as ReLU and differentiates as sigmoid(alpha * z), and swapping it into a network."""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

_FUNCTIONAL_RELUS = {F.relu, torch.relu, torch.relu_, F.relu_}


class _ExactSlopeReLU(torch.autograd.Function):
    """relu(z); first derivative 1[z > 0] exactly; that derivative's own derivative is alpha*sigmoid'(alpha z)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return torch.relu(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (z,) = ctx.saved_tensors
        soft = torch.sigmoid(ctx.alpha * z)
        slope = (z > 0).to(z.dtype) + soft - soft.detach()  # value: the step; derivative in z: the sigmoid's
        return grad * slope, None


class SurrogateReLU(nn.Module):
    """``relu(z)`` in value, with a smoothed derivative so that the stationarity residual has a gradient in x.

    * ``slope="sigmoid"`` (the papers): the derivative is ``sigmoid(alpha * z)``, written as
      ``relu(z).detach() + s(z) - s(z).detach()`` with ``s(z) = softplus(alpha * z) / alpha``.
      The weights' gradients the residual compares with theta then use sigmoid(alpha z), not the ReLU's step.
    * ``slope="exact"``: the derivative is the ReLU's own step ``1[z > 0]``, so the weights' gradients
      are exact; only the step's derivative in z (needed for d residual / dx) is ``alpha * sigmoid'(alpha z)``.
    """

    def __init__(self, alpha: float, slope: str = "sigmoid") -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.slope = slope

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.slope == "exact":
            return _ExactSlopeReLU.apply(z, self.alpha)
        s = F.softplus(self.alpha * z) / self.alpha
        return torch.relu(z).detach() + (s - s.detach())


def functional_relus(net: nn.Module) -> int | None:
    """How many functional relu calls (``F.relu``, ``torch.relu``, ``x.relu()``) a traced graph holds; None if it can't be traced."""
    try:
        graph = torch.fx.symbolic_trace(net).graph
    except Exception:  # noqa: BLE001 - any tracing failure means "unknown"
        return None
    return sum(1 for n in graph.nodes if (n.op == "call_function" and n.target in _FUNCTIONAL_RELUS)
               or (n.op == "call_method" and n.target in ("relu", "relu_")))


def with_surrogate(net: nn.Module, alpha: float, slope: str = "sigmoid") -> tuple[nn.Module, int, list[str]]:
    """A deep copy of ``net`` with every ``nn.ReLU`` replaced by :class:`SurrogateReLU`; returns it, the count, and notes."""
    twin = copy.deepcopy(net)
    count = 0
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, SurrogateReLU(alpha, slope))
                count += 1
    notes: list[str] = []
    functional = functional_relus(net)
    if functional:
        notes.append(f"{functional} functional relu call(s) in the graph could not be swapped for the sigmoid surrogate: "
                     "they use the plain ReLU gradient, which gives the candidates a weaker gradient signal")
    elif count == 0:
        notes.append("no nn.ReLU modules found: the plain gradient is used throughout (no sigmoid surrogate)"
                     + ("" if functional == 0 else "; the graph could not be traced to look for functional relus"))
    return twin, count, notes
