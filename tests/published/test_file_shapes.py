"""Published file shapes beyond the pixel transform: fixed batches, several outputs, lying extensions,
models that cannot classify the data, permuted classes, factory models, and the attacks on such a file."""
from __future__ import annotations

import pickle

import torch
from torch import nn


def _graph_edits(path) -> list[str]:
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    return load_model(ModelSpec(source=str(path), expected_classes=10, data_image_shape=(1, 32, 32))).info.graph_edits


def _accuracy_matches(kit, out: str, net, members, images=None) -> None:
    _, accuracy = kit.chosen(out)
    truth = kit.true_accuracy(net, members.images if images is None else images, members.labels)
    assert truth > 0.8 and abs(accuracy - truth) <= 0.01, (accuracy, truth)


def test_fixed_batch_opset_9_reshape_is_rewritten(kit, grey_cnn, members, data_files, tmp_path):
    """PyTorch 1.x style: opset 9, batch fixed at 1, ``view(x.size(0), -1)`` baked into ``Reshape(h, [1, -1])``."""
    import onnx

    path = kit.export(grey_cnn, torch.rand(1, 1, 32, 32), tmp_path / "m.onnx", opset=9, dynamic=False)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    code, out, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 0, err
    assert kit.chosen(out)[0] == "[0, 1]"
    _accuracy_matches(kit, out, grey_cnn, members)
    edits = " ".join(_graph_edits(path))
    assert "batch at 1" in edits and "Reshape constant" in edits and "checked against the original graph" in edits


def test_fixed_batch_opset_10_that_cannot_be_edited_runs_in_chunks(kit, grey_mlp, members, data_files, tmp_path):
    """A flatten to one long vector then ``[1, -1]``: rewriting the batch would be wrong, so the graph runs 1 image at a time."""
    class Flat(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(torch.flatten(x).view(1, -1))

    path = kit.export(Flat(grey_mlp), torch.rand(1, 1, 32, 32), tmp_path / "m.onnx", opset=10, dynamic=False)
    code, out, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 0, err
    _accuracy_matches(kit, out, grey_mlp, members)
    assert any("cannot be edited safely" in e and "1 image(s) at a time" in e for e in _graph_edits(path))


def test_second_output_with_features(kit, grey_cnn, members, data_files, tmp_path):
    """(logits, features): the output whose width is the data's class count is the class scores."""
    class Both(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor):
            features = self.net.features(x).reshape(x.shape[0], -1)
            return features, self.net.head(features)

    path = kit.export(Both(grey_cnn), torch.rand(2, 1, 32, 32), tmp_path / "m.onnx", outputs=2)
    code, out, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 0, err
    _accuracy_matches(kit, out, grey_cnn, members)
    assert any("class scores are read from 'out1'" in e for e in _graph_edits(path))
    code, _, err = kit.dry_run(path, data_files[0], data_files[1], "--output-name", "out0")
    assert code == 2 and "preflight: the model classifies its members at" in err  # features are not class scores


def test_torch_checkpoint_named_onnx_is_refused(data_files, kit, tmp_path, grey_cnn):
    path = tmp_path / "model.onnx"
    torch.save(grey_cnn.state_dict(), path)
    code, _, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 2 and "PyTorch checkpoint saved with torch.save" in err and "not an ONNX model" in err


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_named_onnx_is_refused_without_unpickling(data_files, kit, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.onnx"
    path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=4))
    code, _, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 2 and "Python pickle" in err
    assert not marker.exists()


def test_untrained_model_stops_at_the_preflight(kit, data_files, tmp_path):
    torch.manual_seed(0)
    path = kit.export(kit.Cnn(1).eval(), torch.rand(2, 1, 32, 32), tmp_path / "m.onnx")
    code, out, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 2 and not out
    assert "below the floor of 30.0%" in err and "Tried 6 preprocessing candidate(s)" in err
    assert "--input-range" in err and "--accept-low-accuracy" in err


def test_low_accuracy_override_runs_and_says_so(kit, data_files, tmp_path):
    from auditor.cli.main import main

    torch.manual_seed(0)
    path = kit.export(kit.Cnn(1).eval(), torch.rand(2, 1, 32, 32), tmp_path / "m.onnx")
    code = main(["-q", "run", str(path), "--members", str(data_files[0]), "--plugins", "membership,inversion", "--smoke",
                 "--accept-low-accuracy", "--out", str(tmp_path / "out")])
    import json

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["preflight"]["passed"] is False and report["preflight"]["overridden"] is True
    titles = [f["title"] for r in report["results"] for f in r["findings"] if f["severity"] == "high"]
    assert any("not meaningful" in t for t in titles) and code == 1


def test_permuted_classes_are_found(kit, grey_cnn, members, data_files, tmp_path):
    order = [3, 7, 1, 0, 9, 2, 8, 5, 4, 6]
    wrapped = kit.Wrapped(grey_cnn, lambda x: x, head=lambda z: z[:, order])
    path = kit.export(wrapped, torch.rand(2, 1, 32, 32), tmp_path / "m.onnx")
    code, _, err = kit.dry_run(path, data_files[0], data_files[1])
    assert code == 2 and "--accept-class-permutation" in err and "different class order reaches" in err
    code, out, err = kit.dry_run(path, data_files[0], data_files[1], "--accept-class-permutation")
    assert code == 0, err
    _accuracy_matches(kit, out, grey_cnn, members)
    # model class order[j] is data class j's ... the found mapping sends data class c to the model's class order.index(c)
    assert "data class c is model class [" + ", ".join(str(order.index(c)) for c in range(10)) + "][c]" in out


def test_factory_model_expecting_0_255(kit, grey_cnn, members, data_files, tmp_path, monkeypatch):
    """A checkpoint beside its model.py, trained on raw 0-255 pixels."""
    wrapped = kit.Wrapped(grey_cnn, lambda x: x / 255.0)
    torch.save({"model_state_dict": wrapped.state_dict()}, tmp_path / "ckpt.pt")
    (tmp_path / "model.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),\n"
        "                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))\n"
        "        self.head = nn.Linear(256, 10)\n\n"
        "    def forward(self, x):\n        h = self.features(x / 255.0)\n        return self.head(h.reshape(h.shape[0], -1))\n\n"
        "def make():\n    return Net()\n")
    state = {k.removeprefix("net."): v for k, v in wrapped.state_dict().items()}
    torch.save({"model_state_dict": state}, tmp_path / "ckpt.pt")
    monkeypatch.chdir(tmp_path)
    code, out, err = kit.dry_run("factory:model.py:make", data_files[0], data_files[1], "--weights", str(tmp_path / "ckpt.pt"),
                                 "--input-shape", "1,32,32")
    assert code == 0, err
    assert kit.chosen(out)[0] == "[0, 255]"
    _accuracy_matches(kit, out, grey_cnn, members)


def test_every_builtin_attack_runs_on_a_keras_style_file(kit, rgb_mlp, data_files, tmp_path):
    """NHWC, 0-255, Softmax at the end, no flags: every installed attack runs a few steps (smoke) on the preflight's choice."""
    import json

    from auditor.cli.main import main
    from auditor.engine.plugins import collect_attacks, get_plugin_manager

    wrapped = kit.Wrapped(rgb_mlp, lambda x: x.permute(0, 3, 1, 2) / 255.0, head=lambda z: torch.softmax(z, 1))
    path = kit.export(wrapped, torch.rand(2, 32, 32, 3) * 255, tmp_path / "m.onnx")
    code = main(["-q", "run", str(path), "--members", str(data_files[2]), "--reference", str(data_files[3]), "--smoke",
                 "--fail-on", "never", "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["preflight"]["chosen"] == "[0, 255]" and report["model"]["outputs_kind"] == "logits"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Preflight: does the model classify the data?" in html and "[0, 255] <strong>(chosen)</strong>" in html
    assert "member − reference accuracy gap" in html and "read as the logits" in html
    statuses = {r["attack"]: (r["status"], r.get("reason") or "") for r in report["results"]}
    assert set(collect_attacks(get_plugin_manager())) <= set(statuses)
    for name, (status, reason) in statuses.items():
        if name == "bnn_sat":
            assert status == "skipped" and "not a binarised network" in reason
        else:
            assert status == "completed", (name, reason)
    assert code == 0


def test_batchnorm_and_dropout_from_recent_opsets_keep_gradients(kit, tmp_path):
    """Opset 14+ exporters write BatchNormalization(training_mode=0) and Dropout(training_mode) that onnx2pytorch cannot
    read; in inference form the graph converts, so gradient attacks run (not zeroth-order estimates)."""
    import onnx
    import onnxruntime

    from auditor.core.attack import Capability
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(1024, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10)).eval()
    with torch.no_grad():
        net[2].running_mean.uniform_(-1, 1)
        net[2].running_var.uniform_(0.5, 2)
    path = kit.export(net, torch.rand(2, 1, 32, 32), tmp_path / "m.onnx", opset=20)
    ops = {n.op_type: [a.name for a in n.attribute] for n in onnx.load(str(path)).graph.node}
    assert "training_mode" in ops["BatchNormalization"]
    model = load_model(ModelSpec(source=str(path)))
    assert Capability.GRADIENTS in model.capabilities, model.info.gradients_unavailable_reason
    x = torch.rand(5, 1, 32, 32)
    expected = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    torch.testing.assert_close(model.module()(x), torch.from_numpy(expected), atol=1e-5, rtol=1e-4)


def test_wrong_flags_are_checked_and_the_fix_is_named(kit, grey_cnn, data_files, tmp_path):
    """User flags are kept, but the accuracy check still applies; the message names the preprocessing that works."""
    wrapped = kit.Wrapped(grey_cnn, lambda x: x / 255.0)
    path = kit.export(wrapped, torch.rand(2, 1, 32, 32) * 255, tmp_path / "m.onnx")
    code, _, err = kit.dry_run(path, data_files[0], data_files[1], "--input-range", "0,1")
    assert code == 2 and "Tried 1 preprocessing candidate(s), best first: as given" in err
    assert "would choose [0, 255]" in err and "--input-range 0,255" in err


def test_torch_sequential_ending_in_softmax_without_input_shape(kit, grey_mlp, members, data_files, tmp_path, monkeypatch):
    """``factory:model.py:make`` of an nn.Sequential that ends in Softmax, no --input-shape: the shape comes from the
    members' images and the tensor feeding the Softmax is read as the logits."""
    import json

    torch.save(grey_mlp.net.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "model.py").write_text(
        "from torch import nn\n\n"
        "def make():\n    return nn.Sequential(nn.Flatten(), nn.Linear(1024, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = kit.dry_run("factory:model.py:make", data_files[0], data_files[1], "--weights", "weights.pt")
    assert code == 0, err
    assert kit.chosen(out)[0] == "[0, 1]"
    _accuracy_matches(kit, out, grey_mlp, members)
    from auditor.cli.main import main

    assert main(["-q", "run", "factory:model.py:make", "--weights", "weights.pt", "--members", str(data_files[0]),
                 "--reference", str(data_files[1]), "--plugins", "membership", "--out", "out"]) in (0, 1)
    model = json.loads((tmp_path / "out" / "report.json").read_text())["model"]
    assert model["outputs_kind"] == "logits" and model["input_shape"] == [1, 32, 32]
    assert any("Softmax" in e for e in model["graph_edits"])
