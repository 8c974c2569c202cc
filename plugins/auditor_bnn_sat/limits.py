"""Time limits that really stop a solver: an interrupting watchdog thread, or a forked child."""
from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pysat.solvers import Solver

T = TypeVar("T")


class Watchdog:
    """One thread per engine that interrupts the running solver at its deadline."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._solver: Solver | None = None
        self._deadline = 0.0
        self._waiting_until = float("inf")  # when the thread wakes up next on its own
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="bnn-sat-watchdog", daemon=True)
        self._thread.start()

    def arm(self, solver: Solver, deadline: float) -> None:
        with self._cv:
            self._solver, self._deadline = solver, deadline
            if deadline < self._waiting_until:
                self._cv.notify()

    def disarm(self) -> None:
        with self._cv:
            self._solver = None

    def stop(self) -> None:
        with self._cv:
            self._stop, self._solver = True, None
            self._cv.notify()

    def _run(self) -> None:
        with self._cv:
            while not self._stop:
                if self._solver is None:
                    self._waiting_until = float("inf")
                    self._cv.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._solver.interrupt()
                    self._solver = None
                else:
                    self._waiting_until = self._deadline
                    self._cv.wait(remaining)


class NoWatchdog:
    """Stands in for :class:`Watchdog` in a forked child (its parent enforces the limit)."""

    def arm(self, solver: Solver, deadline: float) -> None:
        pass

    def disarm(self) -> None:
        pass

    def stop(self) -> None:
        pass


def run_forked(fn: Callable[[], T], timeout: float, what: str = "the child") -> T | None:
    """Run ``fn`` in a forked process; its result, or None when it runs past ``timeout`` (then killed).

    Raises:
        RuntimeError: when the child dies without answering; exceptions in ``fn`` are re-raised.
    """
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            send.send((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - report, never hang the parent
            send.send((False, exc))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            return None
        ok, value = recv.recv()
        if not ok:
            raise value
        return value
    except EOFError:
        raise RuntimeError(f"{what} died without answering (exit code {proc.exitcode})") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
