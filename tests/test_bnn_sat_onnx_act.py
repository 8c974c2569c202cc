"""bnn_sat's ONNX front end on comparison activations: ``GreaterOrEqual`` / ``LessOrEqual`` + ``Where(c, a, -a)``.

Small random BNNs are written in standard ONNX with thresholds that reachable sums hit exactly, per-channel
activation scales of either sign, and a ``Mul`` after the select. The integer form bnn_sat extracts must
classify every input as onnxruntime does, inputs that sit exactly on a threshold included.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - imported after pytest.importorskip skips the module

from auditor.core.errors import CapabilityError  # noqa: E402 - imported after pytest.importorskip skips the module
from auditor_bnn_sat.fold import extract_network  # noqa: E402 - imported after pytest.importorskip skips the module

SHAPE, HIDDEN, CLASSES = (1, 4, 4), 8, 3
N_IN = 16


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.choice([-1.0, 1.0], (HIDDEN, N_IN))
    gain = rng.choice([-1.0, 1.0], HIDDEN) * rng.choice([0.5, 1.5, 3.0], HIDDEN)
    thr = rng.choice(np.arange(-6, 8, 2), HIDDEN)  # even: sums of 16 ±1 terms reach them
    act = rng.choice([-1.0, 1.0], HIDDEN) * 0.5    # per-channel activation scale, mixed signs
    w2 = rng.choice([-1.0, 1.0], (CLASSES, HIDDEN))
    bias = rng.integers(-8, 9, CLASSES) / 64
    return dict(w1=w1, gain=gain, thr=thr, act=act, w2=w2, bias=bias)


def _graph(p: dict[str, np.ndarray], form: str, **override: object) -> onnx.ModelProto:
    """x -> (x >= 0.5) -> ±1 -> MatMul -> Mul(gain) -> (v >= thr * gain) -> ±act -> Mul(0.5) -> MatMul -> Add."""
    inits = []

    def c(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def compare(data: str, const: str, out: str) -> onnx.NodeProto:
        if form == "ge":
            return helper.make_node("GreaterOrEqual", [data, const], [out])
        return helper.make_node("LessOrEqual", [const, data], [out])

    select_hi, select_lo = override.get("select", (p["act"], -p["act"]))
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        compare("f", c("half", 0.5), "b0"),
        helper.make_node("Where", ["b0", c("one", 1.0), c("minus_one", -1.0)], ["a0"]),
        helper.make_node("MatMul", ["a0", c("w1", p["w1"].T)], ["z"]),
        helper.make_node("Mul", ["z", c("gain", p["gain"])], ["v"]),
        compare("v", c("thr", (p["thr"] * p["gain"]).astype(np.float32)), "b1"),
        override.get("after_compare") or helper.make_node("Where", ["b1", c("hi", select_hi), c("lo", select_lo)], ["a1"]),
        helper.make_node("Mul", ["a1", c("post", 0.5)], ["a2"]),
        helper.make_node("MatMul", ["a2", c("w2", p["w2"].T)], ["s"]),
        helper.make_node("Add", ["s", c("bias", p["bias"])], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "cmp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *SHAPE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": images})[0]


def _images(p: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """Random pixels, pixels exactly 0.5 (on the input threshold), and binary inputs on hidden thresholds."""
    rng = np.random.default_rng(seed + 100)
    noise = rng.random((200, *SHAPE)).astype(np.float32)
    halves = np.where(rng.random((200, *SHAPE)) < 0.3, 0.5, noise).astype(np.float32)
    binary = (rng.random((4000, N_IN)) < 0.5).astype(np.float32)
    sums = (2 * binary - 1) @ p["w1"].T
    on_threshold = binary[(sums == p["thr"]).any(1)][:200].reshape(-1, *SHAPE)
    assert len(on_threshold) > 50
    return np.concatenate([noise, halves, on_threshold])


@pytest.mark.parametrize("form", ["ge", "le"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integer_form_agrees_with_onnxruntime_on_thresholds(form, seed):
    p = _weights(seed)
    model = _graph(p, form)
    net = extract_network(model, SHAPE)
    images = _images(p, seed)
    bits = net.to_bits(torch.from_numpy(images))
    assert bits[images.reshape(len(images), -1) == 0.5].all(), "x == threshold must read as +1"
    np.testing.assert_array_equal(net.predict_bits(bits), _run(model, images).argmax(1))
    # against the construction: neuron j fires iff w1_j . x >= thr_j (negative gains flip the row)
    layer = net.layers[0]
    flip = p["gain"] < 0
    np.testing.assert_array_equal(layer.weight, np.where(flip[:, None], -p["w1"], p["w1"]))
    np.testing.assert_array_equal(layer.threshold, np.where(flip, -p["thr"], p["thr"]))


def test_activation_scale_signs_reach_the_next_layer():
    """The per-channel ±0.5 scales flip columns of the output layer; dropping them would change classes."""
    p = _weights(3)
    net = extract_network(_graph(p, "ge"), SHAPE)
    np.testing.assert_array_equal(net.output.weight, p["w2"] * np.sign(p["act"])[None, :])
    unscaled = _graph({**p, "act": np.full(HIDDEN, 0.5)}, "ge")
    images = _images(p, 3)
    assert (_run(unscaled, images).argmax(1) != _run(_graph(p, "ge"), images).argmax(1)).any()


@pytest.mark.parametrize("override,reason", [
    (dict(select=(np.ones(HIDDEN), np.zeros(HIDDEN))), "expected +a / -a"),
    (dict(after_compare=helper.make_node("Not", ["b1"], ["a1"])), "expected Where"),
])
def test_other_selects_are_rejected_with_a_reason(override, reason):
    with pytest.raises(CapabilityError, match=re.escape(reason)):
        extract_network(_graph(_weights(0), "ge", **override), SHAPE)
