"""Incremental SAT queries on an encoded BNN: find, enumerate, infer.

Strategies:

* ``direct``: one solver holds the whole formula; a query assumes the class selector.
* ``decompose``: hidden-layer-first (counterexample-guided). An *upper* solver picks a pattern
  of first-layer outputs that makes the class win; a *lower* solver looks for an input with
  that pattern (the first layer's constraints, unreified under the pattern assumptions). An
  infeasible pattern is cut from the upper solver by the lower solver's core; cores are facts
  about the first layer, so they serve every later class.

Each solve runs under ``solve_limited`` while the engine's watchdog thread (:class:`auditor_bnn_sat.limits.Watchdog`)
calls ``interrupt()`` at the deadline,
so time limits really stop the solver; an optional conflict budget restarts the search with
new phases (seeded, random) and a doubled budget until the time limit.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pysat.solvers import Solver

from auditor_bnn_sat.encode import TRUE, Encoder, Encoding, Formula, formula_size
from auditor_bnn_sat.limits import NoWatchdog, Watchdog, run_forked
from auditor_bnn_sat.network import BinaryNetwork

log = logging.getLogger(__name__)

Strategy = Literal["direct", "decompose"]
Status = Literal["sat", "unsat", "timeout"]
# measured: these stop within ~0.05 s of interrupt(); the others took up to minutes (or never stop)
INTERRUPTIBLE = {"mc", "m22", "mgh", "mcb", "mpl", "mg3"}
ISOLATED = {"gc3", "gc4", "g3", "g4", "g42", "mcm", "cd103", "cd153", "cd195", "cd300"}  # run in a killed child


class EncodingMismatch(RuntimeError):
    """A solver model disagrees with the network's forward pass: a bug, never a result."""


@dataclass
class QueryResult:
    """Outcome of one query: ``bits`` of every input found, the status of the last solve."""

    status: Status
    found: list[np.ndarray] = field(default_factory=list)
    time_s: float = 0.0
    times: list[float] = field(default_factory=list)  # seconds to each input found
    rounds: int = 0          # restarts (direct) or patterns tried (decompose)
    exhausted: bool = False  # the enumeration ended with UNSAT: ``found`` is every preimage
    skipped: int = 0         # decompose: patterns put off at the conflict budget (retried with more)


class Engine:
    """Per-class queries on one network with one solver, encoding and strategy.

    Args:
        net: The network.
        solver: pysat solver name (``mc``, ``gc4``, ``gc3`` support native constraints; any
            interruptible solver for ``encoding='cnf'``).
        encoding: ``native``, ``cnf`` or ``hybrid``.
        strategy: ``direct`` or ``decompose``.
        cnf_max_cells: Largest sequential counter written as CNF by ``hybrid``.
        cnf_layers: ``hybrid``: this many leading layers as CNF, whatever their size.
        seed: Seed of random phases.
    """

    def __init__(self, net: BinaryNetwork, *, solver: str = "mc", encoding: Encoding = "hybrid",
                 strategy: Strategy = "direct", cnf_max_cells: int = 6000, cnf_layers: int | None = None,
                 seed: int = 0) -> None:
        if solver not in INTERRUPTIBLE | ISOLATED:
            raise ValueError(f"solver {solver!r} is not supported (no incremental interruptible solve); "
                             f"use one of {sorted(INTERRUPTIBLE | ISOLATED)}")
        self.isolate = solver in ISOLATED
        if strategy not in ("direct", "decompose"):
            raise ValueError(f"strategy must be direct or decompose, got {strategy!r}")
        if strategy == "decompose" and not net.layers:
            raise ValueError("decompose needs at least one hidden layer")
        self.net, self.strategy, self.solver_name = net, strategy, solver
        self.rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        self.enc = Encoder(net, encoding, cnf_max_cells, cnf_layers)
        if encoding == "cnf":
            cells = self.enc.estimate_cells()
            if cells > 5_000_000:
                raise ValueError(f"a pure CNF encoding needs about {cells:,} counter cells (>5M); use hybrid or native")
        if strategy == "direct":
            formula = self.enc.full()
            parts = {"main": formula}
        else:
            lower = self.enc.base().extend(self.enc.layer(0))
            upper = self.enc.base()
            for i in range(1, len(net.layers)):
                upper.extend(self.enc.layer(i))
            upper.extend(self.enc.output())
            parts = {"lower": lower, "upper": upper}
            formula = Formula(lower.clauses + upper.clauses, lower.atmosts + upper.atmosts)
        self.encode_time = time.perf_counter() - t0
        self.size = formula_size(formula, self.enc.top)
        t0 = time.perf_counter()
        self.solvers: dict[str, Solver] = {}
        for name, part in parts.items():
            s = Solver(name=solver)
            part.add_to(s)
            self.solvers[name] = s
        self.load_time = time.perf_counter() - t0
        self._watchdog: Watchdog | NoWatchdog = Watchdog()
        self._has_aux = self.enc.top > len(self.enc.inputs) + sum(len(n) for n in self.enc.neurons) + net.num_classes + 1
        self.layer0 = [int(v) for v in self.enc.neurons[0] if abs(v) != TRUE] if net.layers else []
        log.info("encoded %s with %s/%s/%s: %s in %.2fs (+%.2fs load)", net.summary(), solver, encoding,
                 strategy, self.size, self.encode_time, self.load_time)

    # ----------------------------------------------------------------- helpers
    def close(self) -> None:
        self._watchdog.stop()
        for s in self.solvers.values():
            s.delete()
        self.solvers.clear()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _solve(self, solver: Solver, assumptions: list[int], deadline: float, budget: int | None) -> bool | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        solver.conf_budget(budget if budget else -1)
        self._watchdog.arm(solver, deadline)
        try:
            return solver.solve_limited(assumptions=assumptions, expect_interrupt=True)
        finally:
            self._watchdog.disarm()
            solver.clear_interrupt()

    def phase_literals(self, bits: np.ndarray) -> list[int]:
        """Phases for inputs and every hidden neuron, from one input's forward pass."""
        lits = self.enc.input_literals(bits)
        for layer_lits, acts in zip(self.enc.neurons, self.net.hidden(bits[None, :])):
            lits += [int(v if a > 0 else -v) for v, a in zip(layer_lits.tolist(), acts[0].tolist()) if abs(v) != TRUE]
        return lits

    def set_phases(self, bits: np.ndarray | None) -> None:
        """Phases of inputs and neurons from ``bits``; a short solve with the inputs fixed then
        leaves every auxiliary (counter) variable's saved phase at its value for ``bits`` too."""
        if bits is None:
            return
        bits = np.asarray(bits, dtype=bool)
        lits = self.phase_literals(bits)
        fix = self.enc.input_literals(bits)
        layer0 = set(self.layer0)
        for name, s in self.solvers.items():
            s.set_phases(lits)
            if self._has_aux:
                warm = [l for l in lits if abs(l) in layer0] if name == "upper" else fix
                self._solve(s, warm, time.monotonic() + 1.0, 1000)

    def random_bits(self) -> np.ndarray:
        return self.rng.random(self.net.n_inputs) < 0.5

    def _perturb(self, bits: np.ndarray | None, rounds: int) -> np.ndarray:
        """``bits`` with a share of ``0.02 * rounds`` (at most half) flipped; random bits for None."""
        if bits is None:
            return self.random_bits()
        flip = self.rng.random(len(bits)) < min(0.5, 0.02 * max(1, rounds))
        return np.asarray(bits, dtype=bool) ^ flip

    def check(self, bits: np.ndarray, target: int) -> None:
        got = int(self.net.predict_bits(bits[None, :])[0])
        if got != target:
            raise EncodingMismatch(f"solver model for class {target} is classified {got} by the integer forward pass")
        free = self.net.in_const < 0
        if (self.net.in_const[~free] != bits[~free]).any():
            raise EncodingMismatch("solver model changes a constant input bit")

    def _next_phases(self, randomize: bool | Callable[[int], np.ndarray | None], found: int) -> None:
        if randomize is True:
            self.set_phases(self.random_bits())
        elif callable(randomize):
            self.set_phases(randomize(found))

    def select(self, target: int) -> list[int]:
        """Assumptions: the class's selector on, every other selector off (a free selector the
        solver guessed true would add another class's constraints and cost a refutation)."""
        return [s if c == target else -s for c, s in enumerate(self.enc.selectors)]

    def _block(self, bits: np.ndarray, guard: int) -> list[int]:
        return [-l for l in self.enc.input_literals(bits)] + [-guard]

    # ----------------------------------------------------------------- queries
    def query(self, target: int, *, count: int = 1, time_limit: float = 30.0, phases: np.ndarray | None = None,
              randomize: bool | Callable[[int], np.ndarray | None] = False, conflict_budget: int | None = None,
              fixed: dict[int, bool] | None = None, exclude: list[np.ndarray] | None = None,
              hamming: tuple[np.ndarray, int] | None = None, per_solution_limit: float | None = None) -> QueryResult:
        """Find up to ``count`` distinct inputs classified ``target``.

        Args:
            target: The class.
            count: How many distinct inputs to enumerate (blocking clauses guarded by a
                session literal, retired afterwards).
            time_limit: Seconds for the whole query.
            phases: Input bits to seed the solver's phases with (and the hidden activations
                they produce); None keeps the solver's own.
            randomize: Fresh phases before each new solution (diverse enumeration): True for
                random bits, or a function of the number of inputs found so far that returns
                the bits to seed the phases with (e.g. another relaxation start).
            conflict_budget: Conflicts per restart round (doubling); None: no restarts.
            fixed: Input bit index -> value constraints.
            hamming: ``(bits, d)``: stay within Hamming distance ``d`` of ``bits``.
            exclude: Inputs not to return (blocked for this query only).
            per_solution_limit: Seconds allowed to find each next input.

        Returns:
            The inputs found (each checked by the integer forward pass) and the status.
        """
        if not 0 <= target < self.net.num_classes:
            raise ValueError(f"class {target} out of range 0..{self.net.num_classes - 1}")
        kwargs = dict(count=count, time_limit=time_limit, phases=phases, randomize=randomize,
                      conflict_budget=conflict_budget, fixed=fixed, hamming=hamming, exclude=exclude,
                      per_solution_limit=per_solution_limit)
        if self.isolate:
            return self._isolated(target, kwargs)
        return self._query(target, **kwargs)

    def _isolated(self, target: int, kwargs: dict) -> QueryResult:
        """Run the query in a forked child killed at the time limit (solvers that ignore interrupts).

        The child's learnt and blocking clauses die with it; the engine stays as it was.
        """
        def child() -> QueryResult:
            self._watchdog = NoWatchdog()
            return self._query(target, **kwargs)

        start = time.monotonic()
        out = run_forked(child, kwargs["time_limit"] + 1.0, what=f"the {self.solver_name} query")
        return out if out is not None else QueryResult("timeout", time_s=time.monotonic() - start)

    def _query(self, target: int, *, count: int, time_limit: float, phases: np.ndarray | None,
               randomize: bool | Callable[[int], np.ndarray | None],
               conflict_budget: int | None, fixed: dict[int, bool] | None, hamming: tuple[np.ndarray, int] | None,
               exclude: list[np.ndarray] | None, per_solution_limit: float | None) -> QueryResult:
        start = time.monotonic()
        deadline = start + time_limit
        session = self.enc.new_var()
        lower_extra = [session]
        if fixed:
            for i, value in fixed.items():
                lit = int(self.enc.inputs[i])
                if abs(lit) == TRUE:
                    if (lit > 0) != bool(value):
                        return QueryResult("unsat", time_s=time.monotonic() - start, exhausted=True)
                    continue
                lower_extra.append(lit if value else -lit)
        if hamming is not None:
            seed_bits, dist = hamming
            ball = self.enc.hamming(np.asarray(seed_bits, dtype=bool), int(dist), session)
            ball.add_to(self.solvers["main" if self.strategy == "direct" else "lower"])
        for bits in exclude or []:
            self.solvers["main" if self.strategy == "direct" else "lower"].add_clause(
                self._block(np.asarray(bits, dtype=bool), session))
        self.set_phases(phases)
        result = QueryResult("timeout")
        try:
            if self.strategy == "direct":
                self._direct(result, target, count, deadline, lower_extra, session, phases, randomize,
                             conflict_budget, per_solution_limit)
            else:
                self._decompose(result, target, count, deadline, lower_extra, session, phases, randomize,
                                conflict_budget, per_solution_limit)
        finally:
            for s in self.solvers.values():
                s.add_clause([-session])
        result.time_s = time.monotonic() - start
        return result

    def _found(self, result: QueryResult, solver: Solver, target: int, start: float) -> np.ndarray:
        bits = self.enc.read_inputs(solver.get_model())
        self.check(bits, target)
        result.found.append(bits)
        result.times.append(time.monotonic() - start)
        return bits

    def _direct(self, result: QueryResult, target: int, count: int, deadline: float, extra: list[int], session: int,
                phases: np.ndarray | None, randomize: bool | Callable, budget: int | None,
                per_solution: float | None) -> None:
        s = self.solvers["main"]
        start = time.monotonic()
        assumptions = self.select(target) + extra
        while len(result.found) < count:
            limit = deadline if per_solution is None else min(deadline, time.monotonic() + per_solution)
            rounds, b = 0, budget
            while True:
                r = self._solve(s, assumptions, limit, b)
                if r is not None or budget is None or time.monotonic() >= limit:
                    break
                rounds += 1
                b = int(b * 2)
                # finding: perturb the given phases; enumerating: restart near an input found already
                base = (None if randomize else phases) if not result.found else \
                    result.found[int(self.rng.integers(len(result.found)))]
                self.set_phases(self._perturb(base, rounds))
            result.rounds += rounds
            if r is None:
                result.status = "sat" if result.found else "timeout"
                return
            if r is False:
                result.status = "unsat" if not result.found else "sat"
                result.exhausted = True
                return
            bits = self._found(result, s, target, start)
            result.status = "sat"
            s.add_clause(self._block(bits, session))
            self._next_phases(randomize, len(result.found))

    def _decompose(self, result: QueryResult, target: int, count: int, deadline: float, extra: list[int],
                   session: int, phases: np.ndarray | None, randomize: bool | Callable, budget: int | None,
                   per_solution: float | None) -> None:
        upper, lower = self.solvers["upper"], self.solvers["lower"]
        start = time.monotonic()
        pattern_vars = set(self.layer0)
        rnd, b, skipped = self.enc.new_var(), budget, 0   # patterns skipped at the budget in this round
        try:
            while len(result.found) < count:
                limit = deadline if per_solution is None else min(deadline, time.monotonic() + per_solution)
                r = self._solve(upper, self.select(target) + [session, rnd], limit, None)
                if r is None:
                    result.status = "sat" if result.found else "timeout"
                    return
                if r is False:
                    if skipped:  # retry the skipped patterns with a doubled budget
                        upper.add_clause([-rnd])
                        rnd, b, skipped = self.enc.new_var(), b * 2, 0
                        continue
                    result.status = "unsat" if not result.found else "sat"
                    result.exhausted = True
                    return
                result.rounds += 1
                model = upper.get_model()
                pattern = [v if model[v - 1] > 0 else -v for v in self.layer0]
                while len(result.found) < count:
                    r2 = self._solve(lower, pattern + extra, limit, b)
                    if r2 is None:
                        if b is not None and time.monotonic() < limit:   # skip this pattern for this round
                            upper.add_clause([-l for l in pattern] + [-rnd])
                            skipped += 1
                            result.skipped += 1
                            break
                        result.status = "sat" if result.found else "timeout"
                        return
                    if r2 is False:
                        core = lower.get_core() or []
                        cut = [-l for l in core if abs(l) in pattern_vars]
                        guarded = any(abs(l) not in pattern_vars for l in core)
                        upper.add_clause(cut + ([-session] if guarded else []))
                        break
                    bits = self._found(result, lower, target, start)
                    result.status = "sat"
                    lower.add_clause(self._block(bits, session))
                    self._next_phases(randomize, len(result.found))
        finally:
            upper.add_clause([-rnd])

    def infer(self, bits: np.ndarray, time_limit: float = 30.0) -> int:
        """The class the encoding assigns to input ``bits`` (inference mode); see :func:`inference.infer`."""
        from auditor_bnn_sat.inference import infer

        return infer(self, bits, time_limit)
