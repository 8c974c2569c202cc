"""Model loading: onnxruntime vs converted-module parity, layouts, probabilities, input ranges, refusals."""
from __future__ import annotations

import pickle

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from auditor.core.attack import Capability
from auditor.core.errors import CapabilityError, ModelLoadError
from auditor.lab import zoo
from auditor.models.loaders import load_model
from auditor.models.model import ModelSpec, from_module


def _ort_logits(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("arch", ["mlp", "cnn", "vit"])
def test_onnx_conversion_matches_onnxruntime(arch, tmp_path):
    torch.manual_seed(0)
    net = zoo.build(arch, (1, 28, 28), 10).eval()
    path = zoo.export_onnx(net, (1, 28, 28), tmp_path / f"{arch}.onnx")
    model = load_model(ModelSpec(source=str(path)))
    assert Capability.GRADIENTS in model.capabilities, model.info.gradients_unavailable_reason
    x = torch.rand((5, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    reference = _ort_logits(path, x.numpy())              # onnxruntime directly, not through our wrapper
    converted = model.module()(x).detach().numpy()
    assert np.abs(converted - reference).max() < 1e-4 * np.abs(reference).max()
    with torch.no_grad():
        assert np.abs(net(x).numpy() - reference).max() < 1e-4
    assert model.info.parity_max_abs_diff is not None and model.info.parity_max_abs_diff < 1e-4
    x.requires_grad_(True)
    model.module()(x)[:, 3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_failed_conversion_keeps_queries_and_reports_reason(tiny_onnx_path, monkeypatch):
    import onnx2pytorch

    def broken(*args, **kwargs):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(onnx2pytorch, "ConvertModel", broken)
    model = load_model(ModelSpec(source=str(tiny_onnx_path)))
    assert model.capabilities == {Capability.QUERY, Capability.PARAMETERS}
    assert "converter exploded" in model.info.gradients_unavailable_reason
    with pytest.raises(CapabilityError, match="converter exploded"):
        model.module()
    assert model.logits(torch.rand(2, 1, 16, 16)).shape == (2, 3)
    assert model.initializers()


class _NHWCSoftmax255(nn.Module):
    """Takes NHWC images in 0..255 and returns probabilities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x.permute(0, 3, 1, 2) / 255.0), dim=1)


def test_nhwc_softmax_0_255_model(tiny_net, tmp_path):
    wrapped = _NHWCSoftmax255(tiny_net).eval()
    example = torch.rand(2, 16, 16, 1) * 255
    batch = torch.export.Dim("batch", min=1)
    path = tmp_path / "nhwc.onnx"
    torch.onnx.export(wrapped, (example,), str(path), input_names=["image"], output_names=["probs"],
                      dynamic_shapes=({0: batch},), external_data=False, dynamo=True)
    model = load_model(ModelSpec(source=str(path), input_range=(0.0, 255.0)))
    assert model.info.layout == "NHWC" and model.input_shape == (1, 16, 16)
    # the graph ends in Softmax: its input is read as the logits (no log of underflowing probabilities)
    assert model.info.outputs_kind == "logits" and any("Softmax" in e for e in model.info.graph_edits)
    pixels = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    expected = _ort_logits(path, (pixels.permute(0, 2, 3, 1) * 255).numpy())
    got = model.logits(pixels).softmax(1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with torch.no_grad():
        direct = tiny_net(pixels).softmax(1).numpy()
    np.testing.assert_allclose(got, direct, atol=1e-5)
    assert Capability.GRADIENTS in model.capabilities


def test_torch_and_onnx_classifiers_agree(tiny_net, tiny_onnx_path):
    torch_model = from_module(tiny_net, num_classes=3, input_shape=(1, 16, 16))
    onnx_model = load_model(ModelSpec(source=str(tiny_onnx_path)))
    x = torch.rand(6, 1, 16, 16)
    torch.testing.assert_close(torch_model.logits(x), onnx_model.logits(x), atol=1e-5, rtol=1e-5)


def test_state_dict_and_safetensors_loading(tiny_net, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinyfactory.py").write_text("from auditor.lab.testing import TinyNet\ndef make():\n    return TinyNet()\n")
    torch.save(tiny_net.state_dict(), tmp_path / "w.pt")
    save_file(tiny_net.state_dict(), str(tmp_path / "w.safetensors"))
    x = torch.rand(3, 1, 16, 16)
    for weights in ("w.pt", "w.safetensors"):
        model = load_model(ModelSpec(source="factory:tinyfactory:make", weights=tmp_path / weights, input_shape=(1, 16, 16)))
        with torch.no_grad():
            torch.testing.assert_close(model.logits(x), tiny_net(x))
    bad = {k: v for k, v in tiny_net.state_dict().items() if "head" not in k}
    bad["extra.weight"] = torch.zeros(2)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ModelLoadError, match=r"missing keys.*head.*unexpected keys.*extra.weight"):
        load_model(ModelSpec(source="factory:tinyfactory:make", weights=tmp_path / "bad.safetensors", input_shape=(1, 16, 16)))


def test_timm_architecture_with_state_dict(tmp_path):
    import timm

    net = timm.create_model("test_resnet", pretrained=False, num_classes=4, in_chans=3).eval()
    torch.save(net.state_dict(), tmp_path / "r.pt")
    model = load_model(ModelSpec(source="timm:test_resnet", weights=tmp_path / "r.pt", input_shape=(3, 32, 32)))
    assert model.num_classes == 4
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.logits(x), net(x))


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_full_module_pickle_is_refused_without_trust(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    with path.open("wb") as fh:
        pickle.dump(_Evil(str(marker)), fh)
    with pytest.raises(ModelLoadError, match="trust-model"):
        load_model(ModelSpec(source=f"pickle:{path}", input_shape=(1, 16, 16)))
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_model(ModelSpec(source="factory:auditor.lab.testing:TinyNet", weights=path, input_shape=(1, 16, 16)))
    assert not marker.exists()
    with pytest.raises(ModelLoadError, match="use timm:ARCH or factory:module:function"):
        load_model(ModelSpec(source=str(path)))


def test_provenance_recorded(tiny_onnx_path):
    import hashlib

    model = load_model(ModelSpec(source=str(tiny_onnx_path)))
    assert model.info.sha256 == hashlib.sha256(tiny_onnx_path.read_bytes()).hexdigest()
    assert model.info.opset and model.info.opset >= 18 and model.info.producer
    assert model.info.size_bytes == tiny_onnx_path.stat().st_size
