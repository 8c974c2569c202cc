"""Recognising BNNs, folding batch norm into integer thresholds, ONNX round trip, rejection."""
from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from auditor.core.errors import CapabilityError
from auditor.core.paths import datasets_dir
from auditor.models.model import from_module
from auditor_bnn_sat.bnn import BNN, SignActivation, deploy_module, random_bnn
from auditor_bnn_sat.extract import stages_from_onnx
from auditor_bnn_sat.fold import extract_network
from auditor_bnn_sat.network import OutputLayer
from auditor_bnn_sat.train import export_onnx

SHAPE = (1, 6, 6)


def _net(seed=0, sparsity=0.0, arch=(36, 16, 12, 4)):
    return random_bnn(list(arch), SHAPE, seed=seed, sparsity=sparsity)


def _same(a, b) -> bool:
    return all(np.array_equal(x.weight, y.weight) and np.array_equal(x.threshold, y.threshold)
               for x, y in zip(a.layers, b.layers)) and np.array_equal(a.output.bias, b.output.bias)


@pytest.mark.parametrize("seed,sparsity", [(0, 0.0), (1, 0.3), (2, 0.6)])
def test_integer_form_agrees_with_forward_pass(seed, sparsity):
    model = _net(seed, sparsity)
    net = extract_network(model)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(3000, *SHAPE, generator=gen)
    bits = net.to_bits(x)
    with torch.no_grad():
        assert (net.predict_bits(bits) == model(x).argmax(1).numpy()).all()
        images = net.to_images(bits)       # bits -> pixels in {0, 1} -> the same bits
        assert np.array_equal(net.to_bits(images), bits)
        assert (model(images).argmax(1).numpy() == net.predict_bits(bits)).all()


def test_threshold_folding_is_exact_at_every_reachable_sum():
    """For each neuron: fires iff W.x >= C, checked against BN(z) on every reachable integer z."""
    model = _net(3, 0.25)
    net = extract_network(model)
    lin, bn = model[2], model[3]
    w = lin.binary_weight().numpy()
    assert np.array_equal(np.abs(w), np.abs(net.layers[0].weight))
    for j in range(w.shape[0]):
        n = int(np.abs(w[j]).sum())
        z = torch.arange(-n, n + 1, 2, dtype=torch.float32)
        col = torch.zeros(len(z), w.shape[0])
        col[:, j] = z
        with torch.no_grad():
            fires = (bn(col)[:, j] >= 0).numpy()
        flipped = not np.array_equal(net.layers[0].weight[j], w[j])   # negative BN scale negates the row
        ours = (-z.numpy() if flipped else z.numpy()) >= net.layers[0].threshold[j]
        assert np.array_equal(fires, ours), f"neuron {j}"


def test_batch_norm_folding_matches_the_closed_form():
    """C = ceil(mu - beta*sigma/gamma) for gamma > 0 (the Narodytska/NPAQ formula), away from ties."""
    model = _net(4)
    net = extract_network(model)
    bn = model[3]
    sigma = torch.sqrt(bn.running_var + bn.eps).double()
    with torch.no_grad():
        tau = (bn.running_mean.double() - bn.bias.double() * sigma / bn.weight.double()).numpy()
    n = net.layers[0].weight.shape[1]
    for j, gamma in enumerate(bn.weight.tolist()):
        if gamma <= 0 or abs(tau[j]) > n or abs(tau[j] - round(tau[j])) < 1e-4:
            continue
        c = int(np.ceil(tau[j]))
        c += (c + n) % 2   # sums of n ±1 terms have n's parity: the next reachable value
        assert net.layers[0].threshold[j] == c


def test_output_argmax_ties_follow_torch():
    out = OutputLayer(np.array([[1, -1], [1, -1], [-1, 1]]), np.array([0.0, 0.0, 0.0]))
    x = np.array([[1, -1], [-1, 1], [1, 1]])
    scores = torch.tensor(x @ out.weight.T, dtype=torch.float32)
    assert list(out.predict(x)) == scores.argmax(1).tolist() == [0, 2, 0]
    assert out.beats_threshold(0, 1) == 0 and out.beats_threshold(1, 0) == 1
    out = OutputLayer(np.array([[1], [1]]), np.array([0.25, 0.75]))
    assert out.beats_threshold(0, 1) == int(np.ceil(Fraction(0.5)))


def test_deploy_form_is_the_same_function():
    model = _net(5, 0.2)
    net = extract_network(model)
    deployed = deploy_module(net)
    x = torch.rand(2000, *SHAPE)
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), deployed(x).argmax(1))
    assert _same(net, extract_network(deployed, SHAPE))


@pytest.mark.parametrize("fold", [True, False])
def test_onnx_export_round_trip_is_recognised(tmp_path, fold):
    model = _net(6, 0.3)
    path = export_onnx(model, tmp_path / "bnn.onnx", SHAPE, fold=fold)
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert "Sign" in ops and ("BatchNormalization" in ops) != fold
    net = extract_network(proto, SHAPE)
    assert _same(net, extract_network(model))
    import onnxruntime as ort

    x = torch.rand(1000, *SHAPE)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_pred = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0].argmax(1)
    assert (net.predict_bits(net.to_bits(x)) == onnx_pred).all()


def _classifier(module):
    return from_module(module.eval(), num_classes=4, input_shape=SHAPE)


@pytest.mark.parametrize("module,reason", [
    (nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 4)), "not binarised|ReLU"),
    (nn.Sequential(nn.Flatten(), nn.Linear(36, 4)), "no sign activation"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(32, 4)), "Conv2d"),
])
def test_non_binarised_models_are_rejected_with_a_reason(module, reason):
    with pytest.raises(CapabilityError, match="not a binarised network: .*") as info:
        extract_network(_classifier(module))
    assert any(word in str(info.value) for word in reason.split("|"))


def test_real_weights_after_binarised_input_are_rejected():
    model = _net(8)
    model[2].__class__ = nn.Linear   # the same layer with its real-valued weights
    with pytest.raises(CapabilityError, match="expected ±a"):
        extract_network(_classifier(model))


def test_sign_of_zero_is_rejected():
    model = BNN([36, 4, 3], SHAPE)
    model[4] = SignActivation("sign")          # torch.sign: 0 -> 0
    with torch.no_grad():
        model[3].running_mean.fill_(0.0)       # BN(z = 0) = 0 for an even fan-in
        model[3].bias.fill_(0.0)
    with pytest.raises(CapabilityError, match="sign\\(0\\) = 0"):
        extract_network(model.eval())


def test_classifier_preprocessing_is_folded():
    """A model fed normalised pixels: the pixel threshold moves, the bits stay right."""
    model = _net(9)
    clf = from_module(model, num_classes=4, input_shape=SHAPE, mean=(0.5,), std=(0.25,))
    net = extract_network(clf)
    x = torch.rand(500, *SHAPE)
    assert (net.predict_bits(net.to_bits(x)) == clf.predict(x).numpy()).all()
    assert (clf.predict(net.to_images(net.to_bits(x))).numpy() == net.predict_bits(net.to_bits(x))).all()


def test_onnx_parser_rejects_branching_graphs():
    model = deploy_module(extract_network(_net(10)))
    buf = io.BytesIO()

    class Branchy(nn.Module):
        def forward(self, x):
            return model(x) + model(x * 0.5)

    torch.onnx.export(Branchy().eval(), (torch.rand(2, *SHAPE),), buf, dynamo=False)
    with pytest.raises(CapabilityError, match="not a binarised network"):
        stages_from_onnx(onnx.load_from_string(buf.getvalue()))


@pytest.mark.datasets
@pytest.mark.skipif(datasets_dir() is None, reason="MNIST not available: datasets_dir() is None (set AUDITOR_DATASETS)")
def test_inference_mode_on_mnist_test_images():
    from auditor_bnn_sat.solve import Engine
    from auditor_bnn_sat.train import load_mnist, train_bnn

    x, y = load_mnist("train", 10, limit=2000)
    xt, _ = load_mnist("test", 10)
    model = train_bnn([100, 24, 10], x, y, epochs=1)
    net = extract_network(model)
    bits = net.to_bits(xt[:1000])
    with torch.no_grad():
        assert (net.predict_bits(bits) == model(xt[:1000]).argmax(1).numpy()).all()
    with Engine(net, solver="mc", encoding="native") as engine:
        for i in range(0, 1000, 100):
            assert engine.infer(bits[i]) == net.predict_bits(bits[i:i + 1])[0]
