"""QONNX binarised networks (Brevitas / FINN exports): load, lower, agree with qonnx's executor, reach bnn_sat.

The networks are built node by node with ``onnx.helper`` as Brevitas writes them: an input quantiser
(``BipolarQuant`` of ``2x - 1``), weights passed through ``BipolarQuant`` / 1-bit ``Quant`` nodes with scales,
``MatMul`` / ``Gemm``, batch norm (as ``Mul``/``Add`` or ``BatchNormalization``), bipolar activations and a
final linear layer to 10 classes. Their weights are class templates of scikit-learn's 8x8 digits, so the
network classifies them (the preflight requires it). Pixels are ``v / 16``: ``v = 8`` puts an exact 0 at
the input quantiser, and thresholds at reachable sums put exact zeros (and -0.0, behind a negative batch
norm scale) at the hidden quantisers. The reference for every forward pass is qonnx's own executor
(``qonnx.core.onnx_exec.execute_onnx``) on the original QONNX graph.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("qonnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - imported after pytest.importorskip skips the module

HIDDEN, CLASSES, SIDE = 32, 10, 8


@dataclass(frozen=True)
class Variant:
    name: str
    domain: str
    opset: int
    batch: int | None        # None: symbolic batch
    weight_op: str           # "BipolarQuant" or 1-bit signed "Quant"
    act_op: str
    norm: str                # "muladd" or "batchnorm"
    act_scale: float         # scale of the hidden activation quantiser (folded into the next layer)


QONNX = Variant("qonnx-opset13", "qonnx.custom_op.general", 13, None, "BipolarQuant", "BipolarQuant", "muladd", 0.5)
BREVITAS = Variant("brevitas-opset11-batch1", "onnx.brevitas", 11, 1, "Quant", "Quant", "batchnorm", 1.0)
VARIANTS = [QONNX, BREVITAS]


# --------------------------------------------------------------------------- data and weights


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(members x, y, reference x, y): 8x8 digits as float32 [N, 1, 8, 8] in [0, 1], pixels v / 16."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    return x[:600], y[:600], x[600:900], y[600:900]


def templates(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hidden rows (±1 class templates of the binarised members), even thresholds t (a neuron fires iff
    template . bits >= t: quantiles of its class's own scores) and the class of each neuron."""
    bits = np.where(2 * x.reshape(len(x), -1) - 1 >= 0, 1, -1)
    mean = np.stack([np.where(bits[y == k].mean(0) >= 0, 1, -1) for k in range(CLASSES)])
    score = bits @ mean.T
    cls = [k for k in range(CLASSES) for _ in range(3)] + [8, 9]
    qs = [q for _ in range(CLASSES) for q in (0.2, 0.5, 0.8)] + [0.05, 0.05]
    thr = [int(np.quantile(score[y == k, k], q)) for k, q in zip(cls, qs)]
    thr = [t - t % 2 for t in thr]  # sums of 64 ±1 terms are even: every threshold is reachable
    return mean[cls], np.array(thr), np.array(cls)


def build(variant: Variant, x: np.ndarray, y: np.ndarray) -> onnx.ModelProto:
    """The QONNX graph of a 64-32-10 BNN."""
    rows, thr, cls = templates(x, y)
    rng = np.random.default_rng(0)
    flip = np.arange(HIDDEN) % 2 == 1                      # these neurons have a negative batch-norm scale
    s1 = np.where(np.arange(HIDDEN) % 3 == 0, 0.25, 0.5).astype(np.float32)  # per-channel weight scales
    sign1 = np.where(flip[:, None], -rows, rows)
    w1 = (sign1 * rng.uniform(0.1, 1.0, sign1.shape)).astype(np.float32)   # latent float weights
    gain = np.where(flip, -1.5, 1.5).astype(np.float32)
    center = np.where(flip, -thr, thr) * s1                # the pre-activation is (z - center) * gain
    w2 = (np.where(cls[None, :] == np.arange(CLASSES)[:, None], 1.0, -1.0) * rng.uniform(0.1, 1, (CLASSES, HIDDEN))).astype(np.float32)

    inits, nodes = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def quant(op: str, inp: str, scale: str, out: str) -> None:
        if op == "BipolarQuant":
            nodes.append(helper.make_node("BipolarQuant", [inp, scale], [out], name=out, domain=variant.domain))
        else:
            nodes.append(helper.make_node("Quant", [inp, scale, const(out + "_zero", 0.0), const(out + "_bits", 1.0)], [out],
                                          name=out, domain=variant.domain, signed=1, narrow=0, rounding_mode="ROUND"))

    batch = variant.batch if variant.batch is not None else "N"
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, SIDE, SIDE])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])
    nodes.append(helper.make_node("Mul", ["x", const("two", 2.0)], ["x2"]))
    nodes.append(helper.make_node("Sub", ["x2", const("one", 1.0)], ["x3"]))
    quant(variant.act_op, "x3", const("s_in", 1.0), "a0")
    if variant.batch is None:
        nodes.append(helper.make_node("Flatten", ["a0"], ["f0"], axis=1))
    else:  # a legacy export bakes the batch into the flatten
        inits.append(numpy_helper.from_array(np.array([variant.batch, -1], dtype=np.int64), "flat_shape"))
        nodes.append(helper.make_node("Reshape", ["a0", "flat_shape"], ["f0"]))
    quant(variant.weight_op, const("w1", w1), const("s_w1", s1[:, None]), "w1q")
    nodes.append(helper.make_node("Transpose", ["w1q"], ["w1t"], perm=[1, 0]))
    nodes.append(helper.make_node("MatMul", ["f0", "w1t"], ["z1"]))
    if variant.norm == "muladd":
        nodes.append(helper.make_node("Add", ["z1", const("bn_bias", -center)], ["z2"]))
        nodes.append(helper.make_node("Mul", ["z2", const("bn_gain", gain)], ["z3"]))
    else:  # var + eps = 1 exactly
        nodes.append(helper.make_node("BatchNormalization", ["z1", const("bn_gamma", gain), const("bn_beta", np.zeros(HIDDEN)),
                                                             const("bn_mean", center), const("bn_var", np.full(HIDDEN, 0.75))],
                                      ["z3"], epsilon=0.25))
    quant(variant.act_op, "z3", const("s_act", variant.act_scale), "a1")
    quant(variant.weight_op, const("w2", w2), const("s_w2", 0.25), "w2q")
    nodes.append(helper.make_node("Gemm", ["a1", "w2q", const("b2", np.zeros(CLASSES))], ["logits"], transB=1))
    graph = helper.make_graph(nodes, "bnn", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", variant.opset), helper.make_opsetid(variant.domain, 1)],
                              producer_name="brevitas-like test builder")
    model.ir_version = 7
    return model


def hidden_preactivations(x: np.ndarray, y: np.ndarray, images: np.ndarray) -> np.ndarray:
    """``(template . bits - t)`` per hidden neuron, computed from the construction (not from the graph)."""
    rows, thr, _ = templates(x, y)
    bits = np.where(2 * images.reshape(len(images), -1) - 1 >= 0, 1, -1)
    return bits @ rows.T - thr


def reference_logits(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    """qonnx's executor on the original QONNX graph (its batch fixed to the query's, or one image at a time)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    fixed = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    step = fixed or len(images)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value in (copy.graph.input[0], copy.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = step
    wrapper = ModelWrapper(copy).transform(InferShapes())
    return np.concatenate([execute_onnx(wrapper, {"x": images[i:i + step]})["logits"] for i in range(0, len(images), step)])


def probe_images(x: np.ndarray, y: np.ndarray, n_random: int = 24) -> np.ndarray:
    """Random pixels, random pixels snapped to v / 16 (exact 0.5s), and members whose hidden sums hit thresholds."""
    rng = np.random.default_rng(1)
    noise = rng.random((n_random, 1, SIDE, SIDE)).astype(np.float32)
    snapped = (np.round(noise * 16) / 16).astype(np.float32)
    pre = hidden_preactivations(x, y, x)
    on_threshold = np.flatnonzero((pre == 0).any(1))[:n_random]
    return np.concatenate([noise, snapped, x[on_threshold]])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module", params=VARIANTS, ids=[v.name for v in VARIANTS])
def built(request, data, tmp_path_factory):
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    variant = request.param
    proto = build(variant, data[0], data[1])
    onnx.checker.check_model(proto)
    path = tmp_path_factory.mktemp("qonnx") / f"{variant.name}.onnx"
    onnx.save(proto, str(path))
    return variant, proto, path, load_model(ModelSpec(source=str(path)))


@pytest.fixture(scope="module")
def data_files(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("qonnx-data")
    np.savez(folder / "members.npz", x=data[0], y=data[1])
    np.savez(folder / "reference.npz", x=data[2], y=data[3])
    return folder / "members.npz", folder / "reference.npz"


# --------------------------------------------------------------------------- tests


def test_loads_as_qonnx_and_names_the_lowered_ops(built):
    variant, _, _, model = built
    assert "qonnx" in model.info.format
    edits = " ".join(model.info.graph_edits)
    assert variant.act_op in edits and "GreaterOrEqual/Where" in edits, edits
    ops = [n.op_type for n in model.onnx_model.graph.node]
    assert not any(n.domain for n in model.onnx_model.graph.node), "custom-domain nodes left after lowering"
    assert "Sign" not in ops and ops.count("GreaterOrEqual") == 2 and ops.count("Where") == 2


def test_template_network_classifies_the_digits(built, data):
    """The model must classify its data for the preflight; checked on qonnx's executor, not the loader."""
    _, proto, _, _ = built
    members_x, members_y = data[0][:120], data[1][:120]
    accuracy = float((reference_logits(proto, members_x).argmax(1) == members_y).mean())
    assert accuracy > 0.6


def test_lowered_graph_matches_qonnx_executor_at_exact_zeros(built, data):
    variant, proto, _, model = built
    images = probe_images(data[0], data[1])
    assert (images == 0.5).any(), "no exact 0 at the input quantiser in the probe"
    pre = hidden_preactivations(data[0], data[1], images)
    flip = np.arange(HIDDEN) % 2 == 1
    assert (pre[:, flip] == 0).any() and (pre[:, ~flip] == 0).any(), "no exact 0 / -0.0 at the hidden quantisers"
    want = reference_logits(proto, images)
    got = model.logits(torch.from_numpy(images)).numpy()
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _single_quantiser(op: str, domain: str, **attrs) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "scale")]
    inputs = ["x", "scale"]
    if op == "Quant":
        inits += [numpy_helper.from_array(np.array(attrs.pop("zero"), np.float32), "zero"),
                  numpy_helper.from_array(np.array(attrs.pop("bits"), np.float32), "bits")]
        inputs += ["zero", "bits"]
    node = helper.make_node(op, inputs, ["y"], domain=domain, **attrs)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(domain, 1)])


@pytest.mark.parametrize("op,attrs", [
    ("BipolarQuant", {}),
    ("Quant", dict(zero=0.0, bits=1.0, signed=1, narrow=0, rounding_mode="ROUND")),
    ("Quant", dict(zero=0.0, bits=4.0, signed=1, narrow=1, rounding_mode="ROUND")),
    ("Quant", dict(zero=1.0, bits=3.0, signed=0, narrow=0, rounding_mode="FLOOR")),
])
def test_each_quantiser_matches_qonnx_at_zero_and_halves(op, attrs):
    import onnxruntime as ort
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from auditor.models.qonnx_lower import lower_qonnx

    model = _single_quantiser(op, "qonnx.custom_op.general", **attrs)
    x = np.array([[0.0, -0.0, 1e-40, -1e-40, 0.25, -0.25, 0.75, -0.75, 1.25, 3.0, -9.0, 9.0]], np.float32)
    want = execute_onnx(ModelWrapper(model), {"x": x})["y"]
    lowered, notes = lower_qonnx(model)
    assert op in notes[0]
    session = ort.InferenceSession(lowered.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]  # qonnx's cleanup renames the tensors
    np.testing.assert_array_equal(got, want)
    if op == "BipolarQuant" or attrs["bits"] == 1:  # 0 and -0.0 (and denormals, 1e-40) map to +scale, as x >= 0
        assert got[0, :3].tolist() == [0.5, 0.5, 0.5] and got[0, 3] == -0.5


def test_bnn_sat_extracts_the_lowered_network(built, data):
    from auditor_bnn_sat.fold import extract_network

    variant, proto, _, model = built
    net = extract_network(model)
    assert net.arch == [SIDE * SIDE, HIDDEN, CLASSES]
    images = probe_images(data[0], data[1])
    images = np.concatenate([images, data[0][:200]])
    tensor = torch.from_numpy(images)
    bits = net.to_bits(tensor)
    assert bits[images.reshape(len(images), -1) == 0.5].all(), "an exact 0 at the input quantiser must read as +1"
    want = reference_logits(proto, images).argmax(1)
    np.testing.assert_array_equal(net.predict_bits(bits), want)
    np.testing.assert_array_equal(model.predict(tensor).numpy(), want)
    # the integer form against the construction: fires iff template . x >= t, at t itself included
    rows, thr, _ = templates(data[0], data[1])
    assert np.array_equal(net.layers[0].weight, rows) and np.array_equal(net.layers[0].threshold, thr)
    pre = hidden_preactivations(data[0], data[1], images)
    np.testing.assert_array_equal(net.hidden(bits)[0], np.where(pre >= 0, 1, -1))


def test_bnn_sat_cli_yields_verified_preimages(data, data_files, tmp_path):
    """``audit run`` with no preprocessing flags: the preflight picks [0, 1], then bnn_sat inverts classes."""
    from auditor.cli.main import main

    proto = build(QONNX, data[0], data[1])
    path = tmp_path / "bnn.onnx"
    onnx.save(proto, str(path))
    out = tmp_path / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["-q", "run", str(path), "--members", str(data_files[0]), "--reference", str(data_files[1]),
                     "--plugins", "bnn_sat", "--set", "bnn_sat.per_class=2", "--set", "bnn_sat.time_limit_s=10",
                     "--set", "bnn_sat.classes=[0,3,7]", "--fail-on", "never", "--out", str(out)])
    assert code == 0, stderr.getvalue()[-2000:]
    report = json.loads((out / "report.json").read_text())
    result = next(r for r in report["results"] if r["attack"] == "bnn_sat")
    assert result["status"] == "completed", result.get("reason")
    assert result["metrics"]["classes_sat"] == 3 and result["metrics"]["preimages"] == 6
    assert "qonnx" in report["model"]["format"]
    preflight = report["preflight"]
    true_accuracy = float((reference_logits(proto, data[0]).argmax(1) == data[1]).mean())
    assert preflight["chosen"] == "[0, 1]" and preflight["passed"]
    assert abs(preflight["member_accuracy"] - true_accuracy) <= 0.02, (preflight["member_accuracy"], true_accuracy)


def test_preimage_with_an_exact_zero_input_is_classified_as_the_solver_says(built, data):
    from auditor.core.attack import RunContext
    from auditor.data.sets import AuditData, LabeledImages
    from auditor_bnn_sat import BnnSatInversion
    from auditor_bnn_sat.fold import extract_network

    variant, proto, _, model = built
    members = LabeledImages(torch.from_numpy(data[0][:200]), torch.from_numpy(data[1][:200]), "digits8")
    reference = LabeledImages(torch.from_numpy(data[2][:100]), torch.from_numpy(data[3][:100]), "digits8-ref")
    audit_data = AuditData(members, reference, CLASSES, tuple(str(k) for k in range(CLASSES)))
    attack = BnnSatInversion(BnnSatInversion.Config(per_class=1, classes=[2, 5], time_limit_s=10))
    ctx = RunContext(device=torch.device("cpu"), seed=0, show_progress=False, smoke=True)
    out = attack.run(model, audit_data, ctx)
    assert out.reconstructions is not None and out.labels.tolist() == [2, 5]
    net = extract_network(model)
    images = out.reconstructions.clone()
    for image in images:  # one pixel that reads as bit 1 becomes 0.5: 2x - 1 is exactly 0 at the quantiser
        flat = image.view(-1)
        flat[int(torch.nonzero(flat == 1)[0])] = 0.5
    assert (images == 0.5).sum() == len(images)
    solver_bits = net.to_bits(out.reconstructions)
    assert np.array_equal(net.to_bits(images), solver_bits)
    solver_class = net.predict_bits(solver_bits)
    assert solver_class.tolist() == [2, 5]
    assert model.predict(images).tolist() == [2, 5]
    assert reference_logits(proto, images.numpy()).argmax(1).tolist() == [2, 5]
