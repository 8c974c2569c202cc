"""Oracle test: SAT enumeration finds exactly the exhaustively enumerated preimages, per class."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from auditor_bnn_sat.bnn import random_bnn
from auditor_bnn_sat.fold import extract_network
from auditor_bnn_sat.phases import relaxed_bits
from auditor_bnn_sat.solve import Engine

ALL_BITS = np.array(list(itertools.product([0, 1], repeat=12)), dtype=bool)
# (seed, sparsity): a dense net with every class reachable and constant neurons; a ternary
# net with one class unreachable (an UNSAT proof) and small classes.
NETS = {"dense": (0, 0.0), "ternary": (3, 0.4)}
SOLVER_ENCODINGS = [("mc", "native"), ("mc", "cnf"), ("mc", "hybrid"), ("g4", "cnf"), ("gc4", "native")]
PHASES = ["none", "random+restarts", "seed", "relax", "diverse"]


def _truth(net_key: str):
    seed, sparsity = NETS[net_key]
    model = random_bnn([12, 10, 8, 5], (1, 3, 4), seed=seed, sparsity=sparsity)
    net = extract_network(model)
    with torch.no_grad():
        pred = model(net.to_images(ALL_BITS)).argmax(1).numpy()
    assert (net.predict_bits(ALL_BITS) == pred).all()
    truth = {t: {row.tobytes() for row in ALL_BITS[pred == t]} for t in range(5)}
    return net, pred, truth


_CACHE: dict = {}


def truth(net_key: str):
    if net_key not in _CACHE:
        _CACHE[net_key] = _truth(net_key)
    return _CACHE[net_key]


def test_fixture_nets_cover_the_cases():
    net, pred, _ = truth("dense")
    assert set(pred) == set(range(5))
    assert any((layer.constant_outputs() != 0).any() for layer in net.layers)
    net, pred, _ = truth("ternary")
    assert 2 not in set(pred)
    assert any((layer.weight == 0).any() for layer in net.layers)


CASES = [(net_key, solver, enc, strategy, PHASES[(i + j + k) % len(PHASES)])
         for i, net_key in enumerate(NETS) for j, (solver, enc) in enumerate(SOLVER_ENCODINGS)
         for k, strategy in enumerate(("direct", "decompose"))]
# rotating the phase modes: every mode meets both strategies and both nets across the 20 cases


@pytest.mark.parametrize("net_key,solver,encoding,strategy,phases", CASES)
def test_enumeration_matches_exhaustive(net_key, solver, encoding, strategy, phases):
    net, pred, sets = truth(net_key)
    # hybrid: CNF for the first hidden layer, native for the rest
    with Engine(net, solver=solver, encoding=encoding, strategy=strategy, cnf_layers=1, seed=1) as engine:
        if encoding == "hybrid":
            assert engine.size["clauses"] > 100 and engine.size["native_constraints"] > 0
        for t in range(5):
            ph = None
            if phases == "seed" and (pred == t).any():
                ph = ALL_BITS[pred == t][0]
            elif phases in ("random+restarts", "diverse"):
                ph = engine.random_bits()
            elif phases == "relax":
                ph, _ = relaxed_bits(net, t, steps=50, restarts=1)
            r = engine.query(t, count=10_000, time_limit=60, phases=ph, randomize=phases == "diverse",
                             conflict_budget=20 if phases == "random+restarts" else None)
            found = [b.tobytes() for b in r.found]
            assert r.exhausted, f"class {t}: enumeration did not finish ({r.status})"
            assert len(found) == len(set(found)), f"class {t}: duplicates"
            assert set(found) == sets[t], f"class {t}: {len(found)} found, {len(sets[t])} exist"
            assert r.status == ("unsat" if not sets[t] else "sat")


@pytest.mark.parametrize("strategy,encoding", [("direct", "native"), ("decompose", "cnf")])
def test_hamming_ball_and_fixed_bits(strategy, encoding):
    net, pred, sets = truth("dense")
    center = ALL_BITS[1234]
    dist = (center != ALL_BITS).sum(1)
    with Engine(net, solver="mc", encoding=encoding, strategy=strategy) as engine:
        for t in range(5):
            r = engine.query(t, count=10_000, time_limit=60, hamming=(center, 3))
            expect = {row.tobytes() for row in ALL_BITS[(pred == t) & (dist <= 3)]}
            assert r.exhausted and {b.tobytes() for b in r.found} == expect
        # blocking and ball constraints are retired after each query: full sets again
        r = engine.query(1, count=10_000, time_limit=60, fixed={0: True, 5: False})
        expect = {row.tobytes() for row in ALL_BITS[(pred == 1) & ALL_BITS[:, 0] & ~ALL_BITS[:, 5]]}
        assert {b.tobytes() for b in r.found} == expect
        r = engine.query(1, count=10_000, time_limit=60)
        assert {b.tobytes() for b in r.found} == sets[1]


@pytest.mark.parametrize("strategy,encoding,solver", [("direct", "native", "mc"), ("direct", "cnf", "g4"),
                                                      ("decompose", "hybrid", "mc")])
def test_inference_mode_agrees_with_forward_pass(strategy, encoding, solver):
    net, pred, _ = truth("ternary")
    with Engine(net, solver=solver, encoding=encoding, strategy=strategy, cnf_max_cells=30) as engine:
        for i in range(0, 4096, 61):
            assert engine.infer(ALL_BITS[i]) == pred[i]
