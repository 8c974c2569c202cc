"""One way to say that an old key or name still works but will go."""
from __future__ import annotations

import logging
import warnings

log = logging.getLogger(__name__)


def deprecation(message: str, *, stacklevel: int = 4) -> None:
    """Say once, both as a ``DeprecationWarning`` and in the log, that an old key was used."""
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)
    log.warning("%s", message)
