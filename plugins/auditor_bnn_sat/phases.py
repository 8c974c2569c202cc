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

from auditor_bnn_sat.network import BinaryNetwork

log = logging.getLogger(__name__)


def relaxed_bits(net: BinaryNetwork, target: int, *, steps: int = 300, restarts: int = 3, seed: int = 0,
                 time_limit: float = 5.0, lr: float = 0.1) -> tuple[np.ndarray, bool]:
    """Input bits the network (nearly) maps to ``target``, found without data.

    Args:
        net: The network.
        target: The class.
        steps: Adam steps per restart.
        restarts: Random restarts (stops at the first exact hit).
        seed: Seed of the random starts.
        time_limit: Seconds for all restarts together.
        lr: Adam step size.

    Returns:
        ``(bits, hit)``: the best bits found and whether they are classified ``target``.
    """
    start = time.monotonic()
    rng = np.random.default_rng(seed * 7919 + target)
    weights = [l.weight.astype(np.float64) for l in net.layers]
    scales = [1.0 / max(1.0, float(np.sqrt(np.abs(l.weight).sum(1).mean()))) for l in net.layers]
    offsets = [1.0 - l.threshold.astype(np.float64) for l in net.layers]
    w_out, bias = net.output.weight.astype(np.float64), net.output.bias
    free = net.in_const < 0
    fixed = np.where(net.in_const > 0, 1.0, -1.0)
    others = np.array([c for c in range(net.num_classes) if c != target])
    best_bits, best_margin = fixed > 0, -np.inf
    for _ in range(restarts):
        theta = 0.5 * rng.standard_normal(net.n_inputs)
        m1, m2 = np.zeros_like(theta), np.zeros_like(theta)
        for step in range(1, steps + 1):
            beta = 1.0 + 9.0 * (step - 1) / max(1, steps - 1)
            acts = [np.where(free, np.tanh(theta), fixed)]
            for w, off, s in zip(weights, offsets, scales):
                acts.append(np.tanh(beta * s * (w @ acts[-1] + off)))
            score = w_out @ acts[-1] + bias
            d = score[others] - score[target]
            p = np.exp(d - d.max())
            p /= p.sum()
            g_score = np.zeros_like(score)
            g_score[others] = p
            g_score[target] = -p.sum()
            g = w_out.T @ g_score
            for w, s, a in zip(reversed(weights), reversed(scales), reversed(acts[1:])):
                g = beta * s * (w.T @ (g * (1.0 - a * a)))
            g = g * (1.0 - acts[0] * acts[0]) * free
            m1 = 0.9 * m1 + 0.1 * g
            m2 = 0.999 * m2 + 0.001 * g * g
            theta -= lr * (m1 / (1 - 0.9**step)) / (np.sqrt(m2 / (1 - 0.999**step)) + 1e-8)
            if step % 10 == 0 or step == steps:
                bits = np.where(free, theta > 0, fixed > 0)
                margin = float(net.margins(bits[None, :], target)[0])
                if margin > best_margin:
                    best_bits, best_margin = bits, margin
                if margin >= 0 or time.monotonic() - start > time_limit:
                    break
        if best_margin >= 0 or time.monotonic() - start > time_limit:
            break
    log.debug("relaxation for class %d: margin %s after %.2fs", target, best_margin, time.monotonic() - start)
    return best_bits, best_margin >= 0
