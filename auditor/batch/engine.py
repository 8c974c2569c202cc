"""The engine behind ``audit batch`` (and reusable by studies): independent cells run as Ray tasks.

:func:`run_cells` takes :class:`Cell` objects (a module-level function, a small picklable payload and
the resources the cell declares) and runs them

* **in-process, one after another**, for ``workers=1`` without an address (no Ray needed; no isolation
  either: a cell that kills its process kills the caller), or
* as **Ray tasks**: on a local instance that it starts (quiet: no dashboard, worker output not
  forwarded, token authentication on as Ray 2.59+ does for local clusters) and stops again, on a cluster
  (``address``), or on a Ray instance already initialised by the caller (kept running).

At most ``workers`` cells are in flight. A cell whose worker process dies is re-run ``retries`` times by
Ray, then reported as failed with the reason; the other cells go on. The functions must be importable by
the workers (defined in an installed module, never in a test file or ``__main__``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor.core.errors import UsageError

log = logging.getLogger(__name__)

INSTALL_HINT = "python3 -m pip install 'auditor[batch]' (or: python3 -m pip install 'ray>=2.40')"


@dataclass(frozen=True)
class Cell:
    """One independent unit of work: ``fn(payload)`` with the resources it declares."""

    key: str
    fn: Callable[[Any], Any]
    payload: Any
    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass
class Outcome:
    """A cell's result (``value``), or why it has none (``error``)."""

    key: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise UsageError(f"running audits on Ray needs the 'ray' package, which is not installed: {INSTALL_HINT}; "
                         "--workers 1 runs without it") from exc
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: float | None, num_gpus: float | None = None) -> Iterator[Any]:
    """Connect to ``address``, reuse an initialised Ray, or start (and afterwards stop) a quiet local instance."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": True}
    if address:
        kwargs["address"] = address
    else:
        # Ray >= 2.59 turns token authentication on for new local instances (token in ~/.ray/auth_token) and
        # warns that it did; that is the behaviour we want, so the warning is not repeated on every batch.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        kwargs.update(num_cpus=int(num_cpus) if num_cpus else None, object_store_memory=128 * 1024 * 1024)
        if num_gpus is not None:
            kwargs["num_gpus"] = num_gpus
    start = time.monotonic()
    try:
        ray.init(**kwargs)
    except Exception as exc:
        raise UsageError(f"could not {'join the Ray cluster at ' + repr(address) if address else 'start a local Ray instance'}: "
                         f"{type(exc).__name__}: {exc}") from exc
    log.info("Ray %s ready in %.1f s (%s)", ray.__version__, time.monotonic() - start, ray.cluster_resources())
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_fits(ray, cells: Sequence[Cell]) -> None:
    total = ray.cluster_resources()
    for kind, need in (("CPU", max(c.num_cpus for c in cells)), ("GPU", max(c.num_gpus for c in cells))):
        if need > total.get(kind, 0):
            raise UsageError(f"each task asks for {need:g} {kind}(s), the Ray cluster has {total.get(kind, 0):g}; "
                             + ("run with --device cpu or join a cluster with GPUs" if kind == "GPU" else "lower --cpus-per-task"))


def _describe(exc: BaseException, retries: int) -> str:
    name = type(exc).__name__
    if name in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ActorDiedError", "LocalRayletDiedError"):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (f"the worker process died ({name}: {first}) after {retries + 1} attempt(s); "
                "killed, out of memory, or a crash in native code")
    cause = getattr(exc, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    return f"{name}: {str(exc).strip()[:500]}"


def _run_in_process(cells: Sequence[Cell], on_done: Callable[[Outcome], None] | None) -> list[Outcome]:
    outcomes = []
    for cell in cells:
        start = time.monotonic()
        try:
            outcome = Outcome(cell.key, value=cell.fn(cell.payload))
        except Exception as exc:
            log.debug("cell %s raised", cell.key, exc_info=True)
            outcome = Outcome(cell.key, error=f"{type(exc).__name__}: {exc}")
        outcome.seconds = round(time.monotonic() - start, 3)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes


def run_cells(cells: Sequence[Cell], workers: int | None = None, address: str | None = None, *, retries: int = 1,
              on_done: Callable[[Outcome], None] | None = None, local_cpus: float | None = None) -> list[Outcome]:
    """Run every cell; returns their outcomes in the order of ``cells``. ``on_done`` sees each as it finishes.

    ``workers`` bounds the cells in flight (default: as many as the cluster's CPUs allow). A local instance
    gets ``local_cpus`` CPUs (default: ``workers`` × the largest ``num_cpus``, at most the machine's CPUs).
    """
    if not cells:
        return []
    if workers == 1 and address is None:
        return _run_in_process(cells, on_done)
    per_task = max(c.num_cpus for c in cells)
    if local_cpus is None and workers is not None:
        local_cpus = min(workers * per_task, float(os.cpu_count() or 1))
    gpus = max(c.num_gpus for c in cells)
    with ray_session(address, local_cpus, None if gpus > 0 or address else 0) as ray:
        _check_fits(ray, cells)
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // per_task))
        remote = ray.remote(max_retries=retries, retry_exceptions=False)(_call)
        pending: dict[Any, tuple[Cell, float]] = {}
        results: dict[str, Outcome] = {}
        queue = list(cells)
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    cell = queue.pop(0)
                    ref = remote.options(num_cpus=cell.num_cpus, num_gpus=cell.num_gpus, name=f"audit:{cell.key}"[:100]).remote(cell.fn, cell.payload)
                    pending[ref] = (cell, time.monotonic())
                done, _ = ray.wait(list(pending), num_returns=1)
                cell, start = pending.pop(done[0])
                try:
                    outcome = Outcome(cell.key, value=ray.get(done[0]))
                except Exception as exc:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...: the cell failed
                    outcome = Outcome(cell.key, error=_describe(exc, retries))
                outcome.seconds = round(time.monotonic() - start, 3)
                results[cell.key] = outcome
                if on_done is not None:
                    on_done(outcome)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return [results[c.key] for c in cells]


def _call(fn: Callable[[Any], Any], payload: Any) -> Any:
    """The Ray task: call a module-level function (shipped by reference) on its payload."""
    return fn(payload)
