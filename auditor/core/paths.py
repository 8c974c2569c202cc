"""Where things live on disk: shared datasets and the weights cache."""
from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def datasets_dir() -> Path | None:
    """The folder holding mnist/, fashion-mnist/ and cifar10/, or None.

    ``AUDITOR_DATASETS`` wins; otherwise ``../shared/datasets`` beside the checkout or the
    current directory.
    """
    env = os.environ.get("AUDITOR_DATASETS")
    candidates = [Path(env)] if env else []
    candidates += [_REPO_ROOT.parent / "shared" / "datasets", Path.cwd().parent / "shared" / "datasets"]
    for candidate in candidates:
        if (candidate / "mnist").is_dir():
            return candidate
    return None


def cache_dir() -> Path:
    """The auditor's local weights cache (``AUDITOR_CACHE``, default ``~/.cache/auditor``)."""
    return Path(os.environ.get("AUDITOR_CACHE", Path.home() / ".cache" / "auditor"))
