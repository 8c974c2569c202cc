"""What a model file really is, read from its first bytes (never by unpickling it)."""
from __future__ import annotations

import zipfile
from pathlib import Path

_PICKLE_PROTOCOLS = {bytes([0x80, v]) for v in range(2, 6)}


def identify(path: Path) -> str:
    """A short name of the file's real format: ``onnx``, ``torch.export archive``, ``torch zip pickle``,
    ``pickle``, ``safetensors``, ``HDF5 (Keras .h5)``, ``TFLite flatbuffer``, ``zip archive``, ``gzip``,
    ``numpy array``, or ``unknown``."""
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[:2] in _PICKLE_PROTOCOLS:
        return "pickle"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "HDF5 (Keras .h5)"
    if head[4:8] == b"TFL3":
        return "TFLite flatbuffer"
    if head[:6] == b"\x93NUMPY":
        return "numpy array"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(path)
    if len(head) >= 9 and head[8:9] == b"{":
        size = int.from_bytes(head[:8], "little")
        if 0 < size < 100 * 1024**2:
            return "safetensors"
    return "unknown"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "zip archive"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        if any("/models/" in n or n.endswith(".json") and "archive_format" in n for n in names):
            return "torch.export archive"
        return "torch zip pickle"
    if any(n.endswith("archive_format") for n in names):
        return "torch.export archive"
    if any(n.endswith("saved_model.pb") for n in names):
        return "zipped TensorFlow SavedModel"
    if any(n.endswith(".onnx") for n in names):
        return "zip of ONNX files"
    return "zip archive"


def looks_like_onnx(path: Path) -> bool:
    """ONNX files are protobufs that start with field 1 (ir_version, varint): byte 0x08."""
    with path.open("rb") as fh:
        return fh.read(1) == b"\x08"
