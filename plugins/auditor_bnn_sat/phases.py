"""Data-free phase initialisation: gradient ascent on a smoothed copy of the network.

SAT solvers answer a BNN query in milliseconds when their phases start near a solution (a
seed image of the class). Without data, :func:`relaxed_bits` finds such a starting point:
inputs ``x = tanh(theta)``, hidden units ``tanh(beta * (W x - C + 1) / sqrt(n))``, and Adam on
``theta`` to push the target score above the others (annealing ``beta`` so the relaxation
approaches the sign network). The result is only a phase hint; the solver decides.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import torch

from auditor_bnn_sat.network import BinaryNetwork

log = logging.getLogger(__name__)


def relaxed_bits(net: BinaryNetwork, target: int, *, steps: int = 300, restarts: int = 3, seed: int = 0,
                 time_limit: float = 5.0) -> tuple[np.ndarray, bool]:
    """Input bits the network (nearly) maps to ``target``, found without data.

    Args:
        net: The network.
        target: The class.
        steps: Adam steps per restart.
        restarts: Random restarts (stops at the first exact hit).
        seed: Seed of the random starts.
        time_limit: Seconds for all restarts together.

    Returns:
        ``(bits, hit)``: the best bits found and whether they are classified ``target``.
    """
    start = time.monotonic()
    gen = torch.Generator().manual_seed(seed * 7919 + target)
    weights = [torch.as_tensor(l.weight, dtype=torch.float32) for l in net.layers]
    scales = [1.0 / max(1.0, float(np.sqrt(np.abs(l.weight).sum(1).mean()))) for l in net.layers]
    thresholds = [torch.as_tensor(l.threshold, dtype=torch.float32) for l in net.layers]
    w_out = torch.as_tensor(net.output.weight, dtype=torch.float32)
    bias = torch.as_tensor(net.output.bias, dtype=torch.float32)
    const = torch.as_tensor(net.in_const, dtype=torch.float32)
    free = const < 0
    fixed = torch.where(const > 0, 1.0, -1.0)
    others = torch.tensor([c for c in range(net.num_classes) if c != target])
    best_bits, best_margin = None, -np.inf
    for restart in range(restarts):
        theta = (0.5 * torch.randn(net.n_inputs, generator=gen)).requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=0.1)
        for step in range(steps):
            beta = 1.0 + 9.0 * step / max(1, steps - 1)
            x = torch.where(free, torch.tanh(theta), fixed)
            for w, c, s in zip(weights, thresholds, scales):
                x = torch.tanh(beta * s * (w @ x - c + 1.0))
            score = w_out @ x + bias
            loss = torch.logsumexp(score[others] - score[target], 0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 25 == 24 or step == steps - 1:
                bits = (theta.detach().numpy() > 0) & free.numpy() | (const.numpy() > 0)
                margin = float(net.margins(bits[None, :], target)[0])
                if margin > best_margin:
                    best_bits, best_margin = bits, margin
                if margin >= 0 or time.monotonic() - start > time_limit:
                    break
        if best_margin >= 0 or time.monotonic() - start > time_limit:
            break
    log.debug("relaxation for class %d: margin %s after %.2fs", target, best_margin, time.monotonic() - start)
    return best_bits, best_margin >= 0
