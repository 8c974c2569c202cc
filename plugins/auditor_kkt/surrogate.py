"""ReLU that goes forward as ReLU and differentiates as sigmoid(alpha * z), and swapping it into a network."""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

_FUNCTIONAL_RELUS = {F.relu, torch.relu, torch.relu_, F.relu_}


class SurrogateReLU(nn.Module):
    """``relu(z)`` in value; its derivative is ``sigmoid(alpha * z)`` and stays differentiable (double backward).

    Written as ``relu(z).detach() + s(z) - s(z).detach()`` with ``s(z) = softplus(alpha * z) / alpha``,
    whose derivative is ``sigmoid(alpha * z)``: the value is the ReLU's exactly, every derivative is s's.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
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


def with_surrogate(net: nn.Module, alpha: float) -> tuple[nn.Module, int, list[str]]:
    """A deep copy of ``net`` with every ``nn.ReLU`` replaced by :class:`SurrogateReLU`; returns it, the count, and notes."""
    twin = copy.deepcopy(net)
    count = 0
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, SurrogateReLU(alpha))
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
