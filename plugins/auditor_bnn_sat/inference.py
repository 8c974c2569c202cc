"""Inference mode: fix the input, read the output, and check both against the forward pass."""
from __future__ import annotations

import time

import numpy as np

from auditor_bnn_sat.encode import TRUE
from auditor_bnn_sat.solve import EncodingMismatch, Engine


def infer(engine: Engine, bits: np.ndarray, time_limit: float = 30.0) -> int:
    """The class the encoding assigns to input ``bits`` (inference mode).

    With the inputs fixed (and every selector off) the solver derives the hidden layers; they
    must equal the integer forward pass. Then, with inputs and hidden values fixed, exactly one
    class selector may be satisfiable. The hidden values are unique because every neuron is a
    full equivalence (the oracle test checks this by enumeration), so fixing them loses nothing.

    Raises:
        EncodingMismatch: when the derived hidden values or the class disagree with the
            forward pass structure (not exactly one satisfiable class).
        TimeoutError: past ``time_limit``.
    """
    bits = np.asarray(bits, dtype=bool)
    fix = engine.enc.input_literals(bits)
    deadline = time.monotonic() + time_limit
    off = [-s for s in engine.enc.selectors]
    hidden: list[int] = []
    if engine.strategy == "direct":
        s = engine.solvers["main"]
        r = engine._solve(s, fix + off, deadline, None)
        model = s.get_model() if r else None
    else:
        lower, s = engine.solvers["lower"], engine.solvers["upper"]
        r = engine._solve(lower, fix, deadline, None)
        m0 = lower.get_model() if r else None
        if m0 is not None:
            pattern = [v if m0[v - 1] > 0 else -v for v in engine.layer0]
            r = engine._solve(s, pattern + off, deadline, None)
            model = s.get_model() if r else None
            fix = pattern
        else:
            model = None
    if r is None:
        raise TimeoutError("inference query timed out")
    if model is None:
        raise EncodingMismatch("the encoding has no value for the hidden layers of a fixed input")
    acts = engine.net.hidden(bits[None, :])
    for index, (lits, act) in enumerate(zip(engine.enc.neurons, acts)):
        for v, a in zip(lits.tolist(), act[0].tolist()):
            if abs(v) == TRUE:
                continue
            if engine.strategy == "decompose" and index == 0:
                continue
            if (model[v - 1] > 0) != (a > 0):
                raise EncodingMismatch(f"inference mode: neuron {v} of layer {index} differs from the forward pass")
            hidden.append(v if a > 0 else -v)
    winners = []
    for t in range(engine.net.num_classes):
        r = engine._solve(s, fix + hidden + engine.select(t), deadline, None)
        if r is None:
            raise TimeoutError("inference query timed out")
        if r:
            winners.append(t)
    if len(winners) != 1:
        raise EncodingMismatch(f"inference mode: classes {winners} are satisfiable for one fixed input")
    return winners[0]
