"""Provenance of a model file (path, sha256, size), recorded before anything in it is read as a model."""
from __future__ import annotations

import hashlib
from pathlib import Path

from auditor.core.errors import ModelLoadError

MAX_MODEL_BYTES = 4 * 1024**3


def file_provenance(path: Path) -> dict[str, object]:
    """Path, sha256 and size of a model file, checked to be a non-empty regular file of at most ``MAX_MODEL_BYTES``."""
    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"model path {path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"model file {path} is empty")
    if size > MAX_MODEL_BYTES:
        raise ModelLoadError(f"model file {path} is {size} bytes; at most {MAX_MODEL_BYTES} are accepted")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "sha256": digest.hexdigest(), "size_bytes": size}
