"""Progress that suits its place: a live bar on a terminal, a plain line every ~10 % when stderr is not one (CI logs)."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("auditor.progress")


def is_terminal() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def progress(iterable: Iterable[T], desc: str, total: int | None = None, *, enabled: bool = True,
             step_percent: float = 10.0) -> Iterator[T]:
    """Iterate over ``iterable`` while showing progress.

    On a terminal: a live tqdm bar that disappears when done. Elsewhere (CI, a file): one log line each time
    another ``step_percent`` of ``total`` is done, and none when the total is unknown; never carriage returns.
    """
    if not enabled:
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if is_terminal():
        from tqdm.auto import tqdm

        yield from tqdm(iterable, desc=desc, total=total, leave=False)
        return
    next_mark = step_percent
    for done, item in enumerate(iterable, start=1):
        yield item
        if total:
            percent = 100.0 * done / total
            if percent >= next_mark:
                log.info("%s: %d/%d (%.0f%%)", desc, done, total, percent)
                next_mark = (percent // step_percent + 1) * step_percent
