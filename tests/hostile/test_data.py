"""Hostile and broken data through ``audit run --members``: exit 2 before any attack, naming the file or index."""
from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[SimpleNamespace], list]  # returns extra arguments after the model path
    pattern: str
    code: int = 2


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array).astype(np.uint8).tobytes()


def _npz(c: SimpleNamespace, x: np.ndarray | None = None, y: np.ndarray | None = None, **arrays: np.ndarray) -> list:
    path = c.tmp / "data.npz"
    contents = {"x": c.x if x is None else x, "y": c.y if y is None else y, **arrays}
    np.savez(path, **{k: v for k, v in contents.items() if v is not False})
    return ["--members", path]


def _with(array: np.ndarray, index: tuple, value: float) -> np.ndarray:
    out = array.copy()
    out[index] = value
    return out


def _raw(c: SimpleNamespace, name: str, data: bytes) -> Path:
    path = c.tmp / name
    path.write_bytes(data)
    return path


def _folder(c: SimpleNamespace, images: dict[str, list[Image.Image | bytes]]) -> list:
    root = c.tmp / "images"
    for cls, items in images.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(items):
            if isinstance(item, bytes):
                (root / cls / f"{i}.png").write_bytes(item)
            else:
                item.save(root / cls / f"{i}.png")
    root.mkdir(exist_ok=True)
    return ["--members", root]


def _gray(c: SimpleNamespace, i: int, size: int = 16) -> Image.Image:
    img = Image.fromarray((c.x[i, 0] * 255).astype(np.uint8), mode="L")
    return img if size == 16 else img.resize((size, size))


def _valid_folder(c: SimpleNamespace, extra: dict | None = None) -> dict:
    folder = {f"class{k}": [_gray(c, i) for i in np.flatnonzero(c.y == k)[:3]] for k in range(3)}
    for cls, items in (extra or {}).items():
        folder.setdefault(cls, []).extend(items)
    return folder


def _png_bytes(c: SimpleNamespace) -> bytes:
    import io

    buffer = io.BytesIO()
    _gray(c, 0).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png(c: SimpleNamespace) -> bytes:
    raw = bytearray(_png_bytes(c))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    raw[ihdr:ihdr + 8] = struct.pack(">II", 100_000, 100_000)
    raw[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr - 4:ihdr + 13])))
    return bytes(raw)


def _idx_dir(c: SimpleNamespace, images: bytes | None = None, labels: bytes | None = None, gz: bool = False) -> list:
    root = c.tmp / "idx"
    root.mkdir()
    images = idx_bytes((c.x[:, 0] * 255).astype(np.uint8)) if images is None else images
    labels = idx_bytes(c.y.astype(np.uint8)) if labels is None else labels
    suffix = ".gz" if gz else ""
    (root / f"train-images-idx3-ubyte{suffix}").write_bytes(images)
    if labels is not False:
        (root / f"train-labels-idx1-ubyte{suffix}").write_bytes(labels)
    return ["--members", root]


def _corrupt_gzip(c: SimpleNamespace) -> list:
    packed = bytearray(gzip.compress(idx_bytes((c.x[:, 0] * 255).astype(np.uint8))))
    packed[20:60] = bytes(range(40))  # inside the deflate stream
    return _idx_dir(c, images=bytes(packed), labels=gzip.compress(idx_bytes(c.y.astype(np.uint8))), gz=True)


def _flat_folder(c: SimpleNamespace) -> list:
    (c.tmp / "flat").mkdir()
    _gray(c, 0).save(c.tmp / "flat" / "0.png")
    return ["--members", c.tmp / "flat"]


def _bad_reference(c: SimpleNamespace) -> list:
    np.savez(c.tmp / "ref.npz", x=c.x[:, :, :8, :8], y=c.y)
    return [*_npz(c), "--reference", c.tmp / "ref.npz"]


CASES = [
    Case("npz-empty-set", lambda c: _npz(c, np.zeros((0, 1, 16, 16), np.float32), np.zeros(0, np.int64)),
         r"data\.npz: the image set is empty"),
    # since the preflight (issue 13), images of another size or channel count are fitted to the model's input
    # (resized or padded; RGB averaged to grey) and the fit the model classifies best is kept and reported
    Case("npz-wrong-image-size", lambda c: [*_npz(c, c.x[:, :, :8, :8]), "--dry-run"], r"dry run", code=0),
    Case("npz-3-channels-for-1-channel-model", lambda c: [*_npz(c, np.repeat(c.x, 3, axis=1)), "--dry-run"], r"dry run", code=0),
    Case("npz-2-channels", lambda c: _npz(c, np.repeat(c.x, 2, axis=1)),
         r"cannot tell the channel axis of images shaped \(36, 2, 16, 16\)"),
    Case("npz-5d-images", lambda c: _npz(c, c.x[:, None]),
         r"expected images shaped \[N,H,W\], \[N,H,W,C\] or \[N,C,H,W\], got \[36, 1, 1, 16, 16\]"),
    Case("npz-zero-sized-images", lambda c: _npz(c, np.zeros((36, 0, 0), np.uint8)),
         r"images have a zero-sized dimension \(shape \[36, 1, 0, 0\]\)"),
    Case("npz-label-out-of-range", lambda c: _npz(c, y=_with(c.y, (5,), 7)),
         r"label 7 at index 5 is out of range for a model with 3 classes"),
    Case("npz-negative-label", lambda c: _npz(c, y=_with(c.y, (9,), -1)), r"label -1 at index 9 is negative"),
    Case("npz-fractional-labels", lambda c: _npz(c, y=c.y + 0.5), r"labels must be integers, got dtype float64"),
    Case("npz-huge-float-label", lambda c: _npz(c, y=_with(c.y.astype(np.float64), (3,), 1e30)),
         r"label 1e\+30 at index 3 is not a class index"),
    Case("npz-uint64-label-past-int64", lambda c: _npz(c, y=_with(c.y.astype(np.uint64), (4,), 2**63 + 1)),
         r"label 9223372036854775809 at index 4 is not a class index"),
    Case("npz-2d-labels", lambda c: _npz(c, y=c.y[:, None]), r"labels must be a 1-D array, got shape \[36, 1\]"),
    Case("npz-label-count-mismatch", lambda c: _npz(c, y=c.y[:-2]), r"36 images but 34 labels"),
    Case("npz-nan-pixel", lambda c: _npz(c, _with(c.x, (4, 0, 3, 3), np.nan)), r"image 4 has NaN or infinite pixels"),
    Case("npz-inf-pixel", lambda c: _npz(c, _with(c.x, (2, 0, 0, 0), np.inf)), r"image 2 has NaN or infinite pixels"),
    Case("npz-float-pixels-out-of-range", lambda c: _npz(c, c.x * 1.5 + 0.1),
         r"float pixels must lie in \[0, 1\], got \[0\.1\d*, 1\.5\d*\]"),
    Case("npz-int-pixels-out-of-range", lambda c: _npz(c, (c.x * 300).astype(np.int16)),
         r"integer pixels must lie in 0\.\.255, got 0\.\.2\d\d"),
    Case("npz-complex-pixels", lambda c: _npz(c, c.x.astype(np.complex64)), r"unsupported pixel dtype complex64"),
    Case("npz-string-pixels", lambda c: _npz(c, c.x.astype("U4")), r"unsupported pixel dtype <U4"),
    Case("npz-missing-y", lambda c: _npz(c, y=False), r"expected arrays 'x' and 'y', missing \['y'\]"),
    Case("npz-pickled-object-array", lambda c: _npz(c, np.array([{"evil": 1}] * 36, dtype=object)),
         r"cannot read .*data\.npz as \.npz: Object arrays cannot be loaded when allow_pickle=False"),
    Case("npz-random-bytes", lambda c: ["--members", _raw(c, "data.npz", bytes(range(256)) * 8)], r"cannot read .*data\.npz as \.npz"),
    Case("npz-truncated", lambda c: ["--members", _raw(c, "data.npz", Path(_npz(c)[1]).read_bytes()[:3000])],
         r"cannot read .*data\.npz as \.npz"),
    Case("folder-mixed-sizes", lambda c: _folder(c, _valid_folder(c, {"class1": [_gray(c, 0, size=20)]})),
         r"images of mixed sizes: .*class1/3\.png is \(20, 20\)"),
    Case("folder-mixed-channels", lambda c: _folder(c, _valid_folder(c, {"class2": [_gray(c, 0).convert("RGB")]})),
         r"images of mixed sizes: .*class2/3\.png is \(16, 16, 3\)"),
    Case("folder-garbage-png", lambda c: _folder(c, _valid_folder(c, {"class0": [b"\x89PNG\r\n\x1a\n" + bytes(64)]})),
         r"unreadable image file .*class0/3\.png"),
    Case("folder-truncated-png", lambda c: _folder(c, _valid_folder(c, {"class0": [_png_bytes(c)[:60]]})),
         r"unreadable image file .*class0/3\.png"),
    Case("folder-decompression-bomb", lambda c: _folder(c, _valid_folder(c, {"class1": [_bomb_png(c)]})),
         r"unreadable image file .*class1/3\.png: DecompressionBombError"),
    Case("folder-classes-without-images", lambda c: _folder(c, {"a": [], "b": []}), r"no images \(.*\) in its class folders"),
    Case("folder-without-class-folders", _flat_folder, r"an image folder needs one sub-folder per class, found none"),
    Case("folder-more-classes-than-model", lambda c: _folder(c, _valid_folder(c, {"class3": [_gray(c, 1)]})),
         r"label 3 at index 9 is out of range for a model with 3 classes"),
    Case("idx-bad-magic", lambda c: _idx_dir(c, images=b"GIF89a" + bytes(100)),
         r"train-images-idx3-ubyte is not an IDX file \(bad magic number\)"),
    Case("idx-truncated-data", lambda c: _idx_dir(c, images=idx_bytes((c.x[:, 0] * 255).astype(np.uint8))[:-100]),
         r"header promises 9216 bytes of data for shape \[36, 16, 16\], file holds 9116"),
    Case("idx-truncated-header", lambda c: _idx_dir(c, images=bytes([0, 0, 8, 3, 0, 0])), r"truncated IDX header"),
    Case("idx-float-type-code", lambda c: _idx_dir(c, images=idx_bytes(np.zeros((36, 16, 16)), type_code=0x0D)),
         r"only unsigned-byte IDX data is supported, got type code 0xd"),
    Case("idx-2d-labels", lambda c: _idx_dir(c, labels=idx_bytes(np.zeros((36, 2)))), r"labels must be a 1-D array, got shape \[36, 2\]"),
    Case("idx-labels-missing", lambda c: _idx_dir(c, labels=False), r"has no train-labels-idx1-ubyte\[\.gz\]"),
    Case("idx-corrupt-gzip", _corrupt_gzip, r"cannot read IDX file .*train-images-idx3-ubyte\.gz"),
    Case("data-source-not-found", lambda c: ["--members", c.tmp / "nowhere"], r"data source '.*nowhere' not found"),
    Case("data-unsupported-file", lambda c: ["--members", _raw(c, "data.csv", b"1,2,3")], r"unsupported data source '.*data\.csv'"),
    Case("class-names-wrong-count", lambda c: [*_npz(c), "--class-names", "cat,dog"], r"2 class names given for a model with 3 classes"),
    Case("reference-wrong-size", _bad_reference, r"reference \(.*ref\.npz\) images are \[1, 8, 8\]"),
    Case("folder-valid-control", lambda c: [*_folder(c, _valid_folder(c)), "--dry-run"], r"dry run", code=0),
]


@pytest.fixture
def data_ctx(tmp_path, audit_data, linear_onnx):
    return SimpleNamespace(tmp=tmp_path, x=audit_data.members.images.numpy().copy(), y=audit_data.members.labels.numpy().copy(),
                           model=linear_onnx)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_data(case, data_ctx, cli, corpus, monkeypatch):
    import auditor.engine.runner

    started = []
    monkeypatch.setattr(auditor.engine.runner, "run_attack", lambda *a, **k: started.append(a) or pytest.fail("an attack started"))
    code, out, err = cli("run", data_ctx.model, *case.build(data_ctx))
    message = next((line for line in err.splitlines() if line.startswith("audit:")), out.strip().splitlines()[-1] if out.strip() else "")
    corpus("data", case.id, code, message)
    assert code == case.code, (code, out, err)
    assert re.search(case.pattern, message), message
    assert not started
