"""Shared builders for the hostile-input corpus (issue 8).

Every hostile file is generated here, in tmp folders, at test time; nothing binary is committed.

* ``onnx_model(...)``: a tiny hand-built ONNX classifier (Flatten + Gemm, input [N, C, H, W]); cases
  mutate the returned ``ModelProto`` before saving it.
* ``cli``: runs ``auditor.cli.main.main`` in-process, returns ``(exit code, stdout, stderr)``, and asserts
  what every case asserts: no traceback, at most one ``audit: error:`` line and that line is one line.
* ``opened``: every path Python opened (``open``/``os.open`` audit events) while a case ran, to prove
  that nothing outside the model's folder was read.
* ``corpus``: records each case (kind, id, exit code, message); with ``AUDITOR_HOSTILE_TABLE=path``
  set, the session writes them to that JSON file (``docs/reliability.md`` is built from it).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

IMAGE_SHAPE = (1, 16, 16)
NUM_CLASSES = 3

# --------------------------------------------------------------------------- file opens


class _OpenLog:
    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []

    def __call__(self, event: str, args: tuple) -> None:
        if self.active and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            self.paths.append(os.fsdecode(args[0]))


_OPEN_LOG = _OpenLog()
sys.addaudithook(_OPEN_LOG)  # audit hooks cannot be removed; it records only while a test asks


@pytest.fixture
def opened():
    """``with opened() as paths:`` collects the paths Python opens inside the block."""
    import contextlib

    @contextlib.contextmanager
    def _collect():
        _OPEN_LOG.paths = []
        _OPEN_LOG.active = True
        try:
            yield _OPEN_LOG.paths
        finally:
            _OPEN_LOG.active = False

    return _collect


# --------------------------------------------------------------------------- ONNX builder


def _templates() -> np.ndarray:
    """[features, classes]: each class's mean synthetic member minus the overall mean (a matched filter)."""
    from auditor.lab.testing import make_audit_data

    members = make_audit_data().members
    x, y = members.images.flatten(1).numpy(), members.labels.numpy()
    means = np.stack([x[y == k].mean(0) for k in range(NUM_CLASSES)])
    return (means - means.mean(0)).T * 4.0


def make_onnx(classes: int = NUM_CLASSES, shape: tuple = IMAGE_SHAPE, extra_nodes: list | None = None,
              extra_initializers: list | None = None, output=None, opset: int = 17, extra_opsets: list | None = None,
              seed: int = 0, pool: bool = False):
    """Flatten + Gemm -> ``g`` (or ``logits`` when there are no extra nodes); extra nodes must produce ``logits``.

    At the default shape and class count the Gemm holds class templates, so the model classifies the
    synthetic members (an untrained model now stops at the preflight, exit 2: see ``test_untrained_model``).

    ``pool``: GlobalAveragePool first, so the weights do not pin H and W (for absurd declared shapes)."""
    from onnx import TensorProto, helper, numpy_helper

    c, hgt, wid = shape
    rng = np.random.default_rng(seed)
    features = c if pool else c * hgt * wid
    random = rng.normal(size=(features, classes)) * 0.1
    trained = (c, hgt, wid) == IMAGE_SHAPE and classes == NUM_CLASSES and not pool
    # class templates: the model classifies the synthetic data, so cases get past the preflight's accuracy floor
    weight = numpy_helper.from_array((_templates() if trained else random).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.zeros(classes, np.float32), "B")
    head = [helper.make_node("GlobalAveragePool", ["x"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["f"])] if pool \
        else [helper.make_node("Flatten", ["x"], ["f"])]
    nodes = [*head, helper.make_node("Gemm", ["f", "W", "B"], ["g" if extra_nodes else "logits"])] + list(extra_nodes or [])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, hgt, wid])
    y = output if output is not None else helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])
    graph = helper.make_graph(nodes, "hostile", [x], [y], [weight, bias, *(extra_initializers or [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *(extra_opsets or [])],
                              producer_name="auditor-tests", producer_version="1")
    model.ir_version = 8
    return model


@pytest.fixture(scope="session")
def onnx_model():
    return make_onnx


@pytest.fixture(scope="session")
def linear_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid hand-built 1x16x16, 3-class ONNX classifier (fast to load)."""
    import onnx

    path = tmp_path_factory.mktemp("linear") / "linear.onnx"
    onnx.save(make_onnx(), str(path))
    return path


# --------------------------------------------------------------------------- data


def save_npz(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="session")
def npz():
    """``npz(path, x, y) -> path``."""
    return save_npz


@pytest.fixture(scope="session")
def members_npz(audit_data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid members for the 1x16x16, 3-class models, as .npz."""
    return save_npz(tmp_path_factory.mktemp("members") / "members.npz", audit_data.members.images.numpy(),
                    audit_data.members.labels.numpy())


@pytest.fixture(scope="session")
def reference_npz(audit_data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_npz(tmp_path_factory.mktemp("reference") / "reference.npz", audit_data.reference.images.numpy(),
                    audit_data.reference.labels.numpy())


# --------------------------------------------------------------------------- running the CLI


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    """``cli(*args) -> (code, out, err)`` through ``auditor.cli.main.main`` with the checks every case shares."""
    from auditor.cli.main import main

    def _run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["-q", *[str(a) for a in args]])
        captured = capsys.readouterr()
        err = captured.err
        assert "Traceback" not in err and "Traceback" not in captured.out, err
        errors = [line for line in err.splitlines() if line.startswith("audit: error:")]
        assert len(errors) <= 1, err
        if code == 2:
            assert len(errors) == 1, f"exit 2 without a one-line 'audit: error:' message: {err!r}"
        return code, captured.out, err

    return _run


# --------------------------------------------------------------------------- the corpus table


_CORPUS: list[dict] = []


@pytest.fixture(scope="session")
def corpus():
    def _record(kind: str, case: str, code: int | None, message: str, *, outside_reads: int = 0, traceback: bool = False,
                report_ok: bool | None = None) -> None:
        _CORPUS.append({"kind": kind, "case": case, "exit": code, "message": message, "outside_reads": outside_reads,
                        "traceback": traceback, "report_ok": report_ok})

    yield _record
    target = os.environ.get("AUDITOR_HOSTILE_TABLE")
    if target:
        Path(target).write_text(json.dumps(_CORPUS, indent=1))


# --------------------------------------------------------------------------- torch.export


@pytest.fixture(scope="session")
def tiny_pt2(tiny_net, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN as a torch.export archive with a dynamic batch dimension."""
    import torch

    program = torch.export.export(tiny_net.eval(), (torch.rand(2, *IMAGE_SHAPE),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(program, str(path))
    return path
