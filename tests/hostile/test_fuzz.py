"""Property: every loader, fed random or mutated bytes, either loads something valid or raises AuditorError.

Seeds are valid files built here (a tiny ONNX graph, a torch.export archive, safetensors and state-dict
weights, .npz, IDX, PNG and BMP); hypothesis flips, overwrites, inserts, deletes, duplicates and
truncates their bytes, or draws raw bytes. Any other exception type fails the test with the example.

Examples per loader: ``AUDITOR_FUZZ_EXAMPLES`` (default 60; 40 for .pt2, whose loads are slower).
Runs are derandomized (the same examples every time, no example database in the checkout); set
``AUDITOR_FUZZ_RANDOM=1`` to explore new ones.
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from auditor.core.errors import AuditorError
from auditor.data.sets import load_images
from auditor.models.loaders import load_model
from auditor.models.model import ModelSpec

EXAMPLES = int(os.environ.get("AUDITOR_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("AUDITOR_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
                print_blob=True)
STATS: dict[str, dict[str, int]] = {}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate", "int32"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "duplicate":
            data[i:i] = data[i:i + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[i:]
        else:  # an interesting 32-bit value (sizes, lengths, dims) at a random place
            value = draw(st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 10**9, draw(st.integers(0, 2**32 - 1))]))
            data[i:i + 4] = struct.pack(draw(st.sampled_from(["<I", ">I"])), value)
    return bytes(data)


def hostile_bytes(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), mutated(seed), mutated(seed), mutated(seed))


_CAPTURE: list = []  # the running test's capfd: libraries must not print tracebacks either


@pytest.fixture(autouse=True)
def _stderr(capfd):
    _CAPTURE[:] = [capfd]
    yield
    _CAPTURE.clear()


def clean(kind: str, load: Callable[[], object]) -> object | None:
    """Run ``load``: success or AuditorError pass and are counted; anything else propagates (the property fails),
    and so does a traceback printed to stderr (by a library's logger, say)."""
    stats = STATS.setdefault(kind, {"examples": 0, "loaded": 0, "clean_errors": 0})
    stats["examples"] += 1
    try:
        result = load()
    except AuditorError:
        stats["clean_errors"] += 1
        result = None
    else:
        stats["loaded"] += 1
    if _CAPTURE:
        err = _CAPTURE[0].readouterr().err
        assert "Traceback" not in err, err[-3000:]
    return result


def check_model(model) -> None:
    assert model.num_classes >= 2 and len(model.input_shape) == 3
    try:
        out = model.logits(torch.rand((3, *model.input_shape)))
    except AuditorError:
        return
    assert out.shape == (3, model.num_classes)


def check_images(images) -> None:
    x, y = images.images, images.labels
    assert x.dtype == torch.float32 and x.ndim == 4 and x.shape[1] in (1, 3) and x.numel() > 0
    assert bool(torch.isfinite(x).all()) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y.dtype == torch.int64 and y.shape == (x.shape[0],) and int(y.min()) >= 0


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- seeds


@pytest.fixture(scope="module")
def seeds(tiny_pt2, tiny_net, audit_data, onnx_model) -> dict[str, bytes]:
    from PIL import Image
    from safetensors.torch import save as save_safetensors

    def image(fmt: str) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray((audit_data.members.images[0, 0].numpy() * 255).astype(np.uint8), mode="L").resize((8, 8)).save(buffer, format=fmt)
        return buffer.getvalue()

    npz = io.BytesIO()
    np.savez(npz, x=(audit_data.members.images[:6, :, :4, :4].numpy() * 255).astype(np.uint8), y=audit_data.members.labels[:6].numpy())
    state = io.BytesIO()
    torch.save(tiny_net.state_dict(), state)
    x = (audit_data.members.images[:4, 0, :4, :4].numpy() * 255).astype(np.uint8)
    idx_images = bytes([0, 0, 8, 3]) + struct.pack(">III", 4, 4, 4) + x.tobytes()
    idx_labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + audit_data.members.labels[:4].numpy().astype(np.uint8).tobytes()
    return {"onnx": onnx_model(shape=(1, 4, 4)).SerializeToString(), "pt2": tiny_pt2.read_bytes(),
            "safetensors": save_safetensors(tiny_net.state_dict()), "pt": state.getvalue(), "npz": npz.getvalue(),
            "idx_images": idx_images, "idx_labels": idx_labels, "png": image("PNG"), "bmp": image("BMP")}


# --------------------------------------------------------------------------- models


def test_fuzz_onnx(seeds):
    @FUZZ
    @given(data=hostile_bytes(seeds["onnx"]))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            model = clean("load_model .onnx", lambda: load_model(ModelSpec(source=str(_write(Path(tmp), "m.onnx", data)))))
            if model is not None:
                check_model(model)

    run()


def test_fuzz_pt2(seeds):
    @settings(FUZZ, max_examples=max(1, EXAMPLES * 2 // 3))
    @given(data=hostile_bytes(seeds["pt2"]))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _write(Path(tmp), "m.pt2", data)
            model = clean("load_model .pt2", lambda: load_model(ModelSpec(source=str(path), input_shape=(1, 16, 16))))
            if model is not None:
                check_model(model)

    run()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_fuzz_weights(seeds, suffix):
    @FUZZ
    @given(data=hostile_bytes(seeds[suffix[1:]]))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _write(Path(tmp), f"w{suffix}", data)
            spec = ModelSpec(source="factory:auditor.lab.testing:TinyNet", weights=path, input_shape=(1, 16, 16))
            model = clean(f"load_model --weights {suffix}", lambda: load_model(spec))
            if model is not None:
                check_model(model)

    run()


# --------------------------------------------------------------------------- data


def test_fuzz_npz_bytes(seeds):
    @FUZZ
    @given(data=hostile_bytes(seeds["npz"]))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            images = clean("load_images .npz (bytes)", lambda: load_images(str(_write(Path(tmp), "d.npz", data))))
            if images is not None:
                check_images(images)

    run()


_PIXELS = st.sampled_from([np.uint8, np.int8, np.int16, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_,
                           np.complex64])
_LABELS = st.sampled_from([np.uint8, np.int8, np.int64, np.uint64, np.float32, np.float64, np.bool_])


@st.composite
def image_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """x and y of any dtype, image-like shapes most of the time (sometimes any shape), tidy values half the time."""
    n, h, w, c = draw(st.integers(0, 4)), draw(st.integers(0, 5)), draw(st.integers(0, 5)), draw(st.sampled_from([1, 3, 1, 2, 0]))
    layout = draw(st.sampled_from(["NHW", "NCHW", "NHWC", "any"]))
    shape = {"NHW": (n, h, w), "NCHW": (n, c, h, w), "NHWC": (n, h, w, c)}.get(layout) or draw(
        hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5))
    x = draw(hnp.arrays(draw(_PIXELS), shape))
    if draw(st.booleans()) and x.dtype.kind in "fc":
        x = np.clip(np.nan_to_num(x.real), 0, 1).astype(x.dtype)
    y = draw(hnp.arrays(draw(_LABELS), draw(st.sampled_from([(n,), (n,), (max(n - 1, 0),), (n, 1), ()]))))
    if draw(st.booleans()) and y.dtype.kind in "iu":
        y = np.abs(y.astype(np.int64) % 3)
    return x, y


def test_fuzz_npz_arrays():
    """Structure-aware: well-formed .npz files holding arrays of any dtype, shape and values."""

    @FUZZ
    @given(xy=image_sets())
    def run(xy: tuple[np.ndarray, np.ndarray]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d.npz"
            np.savez(path, x=xy[0], y=xy[1])
            images = clean("load_images .npz (arrays)", lambda: load_images(str(path)))
            if images is not None:
                check_images(images)

    run()


def test_fuzz_idx(seeds):
    """IDX folders, plain or gzipped; for .gz either the IDX bytes or the compressed stream is mutated."""
    import gzip

    def variants(raw: bytes, gz: bool) -> st.SearchStrategy[bytes]:
        if not gz:
            return st.one_of(st.just(raw), hostile_bytes(raw))
        packed = gzip.compress(raw, mtime=0)
        return st.one_of(st.just(packed), hostile_bytes(packed), hostile_bytes(raw).map(lambda b: gzip.compress(b, mtime=0)))

    @FUZZ
    @given(gz=st.booleans(), data=st.data())
    def run(gz: bool, data: st.DataObject) -> None:
        images = data.draw(variants(seeds["idx_images"], gz))
        labels = data.draw(variants(seeds["idx_labels"], gz))
        with tempfile.TemporaryDirectory() as tmp:
            suffix = ".gz" if gz else ""
            _write(Path(tmp), f"train-images-idx3-ubyte{suffix}", images)
            _write(Path(tmp), f"train-labels-idx1-ubyte{suffix}", labels)
            loaded = clean("load_images IDX", lambda: load_images(tmp))
            if loaded is not None:
                check_images(loaded)

    run()


def test_fuzz_image_folder(seeds):
    @FUZZ
    @given(fmt=st.sampled_from(["png", "bmp"]), data=st.data())
    def run(fmt: str, data: st.DataObject) -> None:
        hostile = data.draw(hostile_bytes(seeds[fmt]))
        with tempfile.TemporaryDirectory() as tmp:
            for cls in ("a", "b"):
                (Path(tmp) / cls).mkdir()
                _write(Path(tmp) / cls, f"0.{fmt}", seeds[fmt])
            _write(Path(tmp) / "b", f"1.{fmt}", hostile)
            images = clean("load_images image folder", lambda: load_images(tmp))
            if images is not None:
                check_images(images)

    run()


def test_fuzz_report(corpus):
    """Runs last in this module: puts the per-loader counts into the corpus table."""
    for kind, stats in sorted(STATS.items()):
        corpus("fuzz (hypothesis)", kind, None, f"{stats['examples']} examples: {stats['loaded']} loaded, "
                                                f"{stats['clean_errors']} clean AuditorError, 0 other exceptions")
    if not STATS:
        pytest.skip("run with the fuzz tests above")
