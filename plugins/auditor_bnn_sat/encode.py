"""CNF (plus native cardinality) encodings of a :class:`BinaryNetwork`.

Every hidden neuron is the reified cardinality constraint ``y <=> sum(lits) >= D`` over the
literals of its inputs, signs carrying the weights (no XNOR variables). Constant neurons and
constant inputs are folded away. Two encodings of one reified constraint:

* ``native``: two MiniCard/Gluecard ``AtMost`` constraints with the guard literal repeated,
  ``AtMost(~lits + [y]*D, n)`` and ``AtMost(lits + [~y]*(n-D+1), n)``;
* ``cnf``: a full-equivalence sequential counter restricted to the band of counts that can
  still decide ``sum >= D`` (width ``min(D, n-D+1)``), so unit propagation computes every
  auxiliary from the inputs.

``hybrid`` writes CNF for the layers, from the input on, whose counters all have at most
``cnf_max_cells`` cells, and native constraints from the first layer that does not: a counter
only pays off when unit propagation reaches its inputs (measured: CNF behind a native layer
made each conflict ~100x slower).
The output layer: class ``t`` wins iff it beats every ``c`` (``>=`` against later classes,
``>`` against earlier ones, as ``torch.argmax``), each comparison guarded by the class
selector ``sel[t]`` that queries pass as an assumption.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from auditor_bnn_sat.network import BinaryNetwork

log = logging.getLogger(__name__)

Encoding = Literal["native", "cnf", "hybrid"]
TRUE = 1  # variable 1 is fixed true; -1 is false


@dataclass
class Formula:
    """Clauses and native ``AtMost(lits, k)`` constraints."""

    clauses: list[list[int]] = field(default_factory=list)
    atmosts: list[tuple[list[int], int]] = field(default_factory=list)

    def extend(self, other: Formula) -> Formula:
        self.clauses += other.clauses
        self.atmosts += other.atmosts
        return self

    def add_to(self, solver) -> None:
        """Load into a pysat solver (native constraints need ``supports_atmost()``)."""
        solver.append_formula(self.clauses)
        if self.atmosts:
            if not solver.supports_atmost():
                raise ValueError("this formula has native cardinality constraints; the solver supports none "
                                 "(use solver mc/gc3/gc4 or encoding='cnf')")
            for lits, k in self.atmosts:
                solver.add_atmost(lits, k)


@dataclass
class Card:
    """``sum(lits) >= bound`` over a multiset of literals (constants already folded)."""

    lits: list[int]
    bound: int

    @property
    def constant(self) -> bool | None:
        if self.bound <= 0:
            return True
        if self.bound > len(self.lits):
            return False
        return None

    @property
    def cells(self) -> int:
        n = len(self.lits)
        return n * max(1, min(self.bound, n - self.bound + 1))


def weighted_card(lits: np.ndarray, coeff: np.ndarray, at_least: int) -> Card:
    """``sum_j coeff_j * x_j >= at_least`` with ``x_j = +1`` iff literal ``lits_j`` is true.

    ``coeff`` are small integers; a coefficient ``k`` repeats the literal ``|k|`` times.
    Literals equal to ``TRUE``/``-TRUE`` are folded into the bound.
    """
    mult = np.abs(coeff).astype(np.int64)
    signed = np.where(coeff > 0, lits, -lits)
    total = int(mult.sum())
    bound = math.ceil((at_least + total) / 2)   # sum coeff*x = 2*sum |coeff|*l - total
    out: list[int] = []
    for lit, k in zip(signed.tolist(), mult.tolist()):
        if k == 0:
            continue
        if lit == TRUE:
            bound -= k
        elif lit != -TRUE:
            out.extend([lit] * k)
    return Card(out, bound)


def seqcounter(card: Card, y: int, new_var, clauses: list[list[int]]) -> None:
    """Clauses of ``y <=> sum(card.lits) >= card.bound`` (banded full-equivalence sequential counter)."""
    lits, d = card.lits, card.bound
    n = len(lits)
    prev: dict[int, int] = {0: TRUE}  # r(i-1, j); j outside -> FALSE (j > i-1) or unused
    for i in range(1, n + 1):
        lit = lits[i - 1]
        lo, hi = max(1, d - (n - i)), min(i, d)
        cur: dict[int, int] = {0: TRUE}
        for j in range(lo, hi + 1):
            r = y if (i == n and j == d) else new_var()
            a = prev.get(j, -TRUE) if j <= i - 1 else -TRUE   # r(i-1, j)
            b = prev[j - 1] if j - 1 > 0 else TRUE             # r(i-1, j-1)
            if a != -TRUE:
                clauses.append([-a, r])
                clauses.append([-r, a, lit])
            else:
                clauses.append([-r, lit])
            clauses.append([-lit, r] if b == TRUE else [-lit, -b, r])
            if b != TRUE:
                clauses.append([-r, a, b] if a != -TRUE else [-r, b])
            cur[j] = r
        prev = cur


def native_reified(card: Card, y: int, atmosts: list[tuple[list[int], int]]) -> None:
    """``y <=> sum(lits) >= D`` as two AtMost constraints with the guard repeated."""
    n, d = len(card.lits), card.bound
    atmosts.append(([-l for l in card.lits] + [y] * d, n))
    atmosts.append((list(card.lits) + [-y] * (n - d + 1), n))


class Encoder:
    """Variables and constraints of one network.

    Variable 1 is TRUE; input bits come next (``inputs[i]``, or ``±TRUE`` for constant bits),
    then hidden neurons (``neurons[l][j]``, ``±TRUE`` when constant), class selectors
    (``selectors[t]``), then auxiliaries. Formulas per layer share one numbering, so the
    lower and upper parts of the decomposition can live in different solvers.

    Args:
        net: The network.
        encoding: ``native``, ``cnf`` or ``hybrid`` (see the module doc).
        cnf_max_cells: Largest sequential counter (inputs x band width) ``hybrid`` writes as CNF.
        cnf_layers: ``hybrid`` only: write exactly this many leading layers as CNF (the output
            counts as the last layer) instead of deciding by ``cnf_max_cells``.
    """

    def __init__(self, net: BinaryNetwork, encoding: Encoding = "hybrid", cnf_max_cells: int = 6000,
                 cnf_layers: int | None = None) -> None:
        if encoding not in ("native", "cnf", "hybrid"):
            raise ValueError(f"encoding must be native, cnf or hybrid, got {encoding!r}")
        self.net, self.encoding, self.cnf_max_cells = net, encoding, cnf_max_cells
        self.top = TRUE
        self.inputs = np.array([self._new() if c < 0 else (TRUE if c == 1 else -TRUE) for c in net.in_const], dtype=np.int64)
        self.neurons: list[np.ndarray] = []
        self.cards: list[list[Card | None]] = []
        prev = self.inputs
        for layer in net.layers:
            lits, cards = [], []
            for j in range(layer.weight.shape[0]):
                card = weighted_card(prev, layer.weight[j].astype(np.int64), int(layer.threshold[j]))
                const = card.constant
                lits.append(self._new() if const is None else (TRUE if const else -TRUE))
                cards.append(card if const is None else None)
            self.neurons.append(np.array(lits, dtype=np.int64))
            self.cards.append(cards)
            prev = self.neurons[-1]
        self.last = prev
        k = net.num_classes
        self.selectors = [self._new() for _ in range(k)]
        w = net.output.weight.astype(np.int64)
        self.pairs: dict[tuple[int, int], Card] = {}
        for t in range(k):
            for c in range(t + 1, k):
                self.pairs[(t, c)] = weighted_card(prev, w[t] - w[c], net.output.beats_threshold(t, c))
        # per layer (and the output, last): CNF or native
        small = [all(c is None or c.cells <= cnf_max_cells for c in layer) for layer in self.cards]
        small.append(all(c.cells <= cnf_max_cells for c in self.pairs.values()))
        prefix = list(np.cumprod(small).astype(bool))
        if cnf_layers is not None:
            prefix = [i < cnf_layers for i in range(len(small))]
        self.layer_cnf = [encoding == "cnf" or (encoding == "hybrid" and p) for p in prefix]

    def _new(self) -> int:
        self.top += 1
        return self.top

    def new_var(self) -> int:
        """A fresh auxiliary variable."""
        return self._new()

    def reified(self, card: Card, y: int, f: Formula, cnf: bool) -> None:
        if cnf:
            seqcounter(card, y, self._new, f.clauses)
        else:
            native_reified(card, y, f.atmosts)

    # ----------------------------------------------------------------- formulas
    def base(self) -> Formula:
        return Formula(clauses=[[TRUE]])

    def layer(self, index: int) -> Formula:
        """Constraints defining the neurons of hidden layer ``index`` from its inputs."""
        f = Formula()
        for y, card in zip(self.neurons[index].tolist(), self.cards[index]):
            if card is not None:
                self.reified(card, y, f, self.layer_cnf[index])
        return f

    def output(self) -> Formula:
        """Class constraints guarded by the selectors."""
        f = Formula()
        sel = self.selectors
        for (t, c), card in self.pairs.items():
            const = card.constant
            if const is True:
                f.clauses.append([-sel[c]])   # t always beats c: c can never win
                continue
            if const is False:
                f.clauses.append([-sel[t]])
                continue
            if self.layer_cnf[-1]:
                p = self._new()
                seqcounter(card, p, self._new, f.clauses)
                f.clauses += [[-sel[t], p], [-sel[c], -p]]
            else:  # guarded AtMost: sel[t] -> beats(t,c);  sel[c] -> not beats(t,c)
                n, d = len(card.lits), card.bound
                f.atmosts.append(([-l for l in card.lits] + [sel[t]] * d, n))
                f.atmosts.append((list(card.lits) + [sel[c]] * (n - d + 1), n))
        return f

    def full(self) -> Formula:
        f = self.base()
        for i in range(len(self.neurons)):
            f.extend(self.layer(i))
        return f.extend(self.output())

    def hamming(self, seed_bits: np.ndarray, distance: int, guard: int) -> Formula:
        """``guard -> (number of free input bits differing from seed_bits) <= distance``."""
        free = np.flatnonzero(self.net.in_const < 0)
        lits = [int(-self.inputs[i] if seed_bits[i] else self.inputs[i]) for i in free]
        f = Formula()
        n = len(lits)
        if distance >= n:
            return f
        card = Card(lits, distance + 1)
        if self.layer_cnf[0]:
            r = self._new()
            seqcounter(card, r, self._new, f.clauses)
            f.clauses.append([-guard, -r])
        else:
            f.atmosts.append((lits + [guard] * (n - distance), n))
        return f

    def input_literals(self, bits: np.ndarray) -> list[int]:
        """Assumptions fixing the free input bits to ``bits``."""
        free = np.flatnonzero(self.net.in_const < 0)
        return [int(self.inputs[i]) if bits[i] else int(-self.inputs[i]) for i in free]

    def read_inputs(self, model: list[int]) -> np.ndarray:
        """Input bits from a solver model."""
        values = np.asarray(model, dtype=np.int64)
        lits = self.inputs
        out = np.empty(len(lits), dtype=bool)
        is_var = np.abs(lits) != TRUE
        out[~is_var] = lits[~is_var] > 0
        idx = np.abs(lits[is_var]) - 1
        out[is_var] = values[idx] > 0
        return out

    def estimate_cells(self) -> int:
        """Sequential-counter cells a pure CNF encoding would need."""
        cards = [c for layer in self.cards for c in layer if c is not None] + list(self.pairs.values())
        return sum(c.cells for c in cards if c.constant is None)


def formula_size(f: Formula, top: int) -> dict[str, int]:
    return {"variables": int(top), "clauses": len(f.clauses), "native_constraints": len(f.atmosts),
            "literals": sum(len(c) for c in f.clauses) + sum(len(a[0]) for a in f.atmosts)}
