"""Issue 19: what a new user types on the first day, and what they see.

Each test starts from an ``audit run ...`` command line (through ``auditor.cli.main.main``) in a fresh
working folder and checks the message or the working result.
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from auditor.cli.main import main
from auditor.lab.testing import IMAGE_SHAPE, TinyNet

REPO = Path(__file__).resolve().parent.parent
SHAPE = ",".join(map(str, IMAGE_SHAPE))

TINY_FILE = """\
import torch
from torch import nn
from blocks import features   # a sibling module, as published model folders have


class MNISTNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = features()
        self.head = nn.Sequential(nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.head(self.features(x))


def make():
    return MNISTNet()
"""
BLOCKS_FILE = """\
from torch import nn


def features():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
"""


@pytest.fixture
def user(tmp_path, monkeypatch, audit_data, tiny_net, capsys):
    """A user's working folder: models/mnist_net.py (+ blocks.py), weights, members.npz; cwd is that folder."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "mnist_net.py").write_text(TINY_FILE)
    (models / "blocks.py").write_text(BLOCKS_FILE)
    np.savez(tmp_path / "members.npz", x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # whatever the loader adds is undone
    before = set(sys.modules)
    state = tiny_net.state_dict()  # TinyNet and MNISTNet share parameter names and shapes

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    yield argparse.Namespace(dir=tmp_path, state=state, net=tiny_net, run=run)
    for name in set(sys.modules) - before:
        if name in ("mnist_net", "blocks", "netdefs") or name.startswith("auditor_factory_"):
            sys.modules.pop(name, None)


def _load(source: str, weights: Path | None = None):
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec

    return load_model(ModelSpec(source=source, weights=weights, input_shape=IMAGE_SHAPE))


# --------------------------------------------------------------------------- 1. factory: file or module in this folder


def test_factory_from_a_file_path_and_from_a_module_in_the_current_folder(user):
    torch.save(user.state, user.dir / "weights.pt")
    x = torch.rand(5, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = user.net(x)
    code, out, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "weights.pt", "--input-shape", SHAPE,
                              "--members", "members.npz", "--dry-run")
    assert code == 0 and "dry run" in out, err
    torch.testing.assert_close(_load("factory:models/mnist_net.py:make", Path("weights.pt")).logits(x), expected)

    # a module beside the user, without PYTHONPATH=.
    (user.dir / "netdefs.py").write_text("from auditor.lab.testing import TinyNet\n\ndef make():\n    return TinyNet()\n")
    with pytest.raises(ModuleNotFoundError):  # plain Python does not find it: the loader's fallback is what works
        importlib.import_module("netdefs")
    code, out, err = user.run("run", "factory:netdefs:make", "--weights", "weights.pt", "--input-shape", SHAPE,
                              "--members", "members.npz", "--dry-run")
    assert code == 0 and "dry run" in out, err
    torch.testing.assert_close(_load("factory:netdefs:make", Path("weights.pt")).logits(x), expected)


@pytest.mark.parametrize("source, says", [
    ("factory:nosuchmodule:make", r"cannot import factory module 'nosuchmodule'.*looked on the Python path and in the current folder "
                                  r".*no nosuchmodule\.py there.*factory:path/to/nosuchmodule\.py:function"),
    ("factory:models/missing.py:make", r"factory file models/missing\.py not found \(looked at /.*/models/missing\.py"),
    ("factory:models/mnist_net.py:build", r"'build' does not exist in models/mnist_net\.py; functions and classes defined there: "
                                          r"\['MNISTNet', 'make'\]"),
    ("factory:mnist_net", r"a factory source is factory:path/to/model\.py:function or factory:module:function"),
])
def test_factory_errors_say_what_was_tried(user, source, says):
    code, _, err = user.run("run", source, "--input-shape", SHAPE, "--members", "members.npz", "--dry-run")
    assert code == 2
    assert re.search(says, err), err


# --------------------------------------------------------------------------- 2. well-known dataset names

LINEAR_FILE = """\
from torch import nn


def gray():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def color():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))
"""


def _fitted(folder: Path, members: str, limit: int) -> list[str]:
    """``factory:linear.py:... --weights ... --input-shape ...`` of a linear classifier fitted to exactly the members
    the command names (the audit's preflight wants a model that classifies its members)."""
    from auditor.data.sets import load_images

    (folder / "linear.py").write_text(LINEAR_FILE)
    data = load_images(members, limit=limit)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(data.image_shape)), 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(150):
        loss = nn.functional.cross_entropy(net(data.images), data.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (net(data.images).argmax(1) == data.labels).float().mean() > 0.9
    weights = folder / f"{members.replace(':', '-')}.pt"
    torch.save(net.state_dict(), weights)
    shape = data.image_shape
    return [f"factory:linear.py:{'gray' if shape[0] == 1 else 'color'}", "--weights", weights.name, "--input-shape",
            ",".join(map(str, shape))]


def _readme_sources() -> list[str]:
    text = (REPO / "README.md").read_text() + (REPO / "docs" / "first-audit.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.S))
    return sorted(set(re.findall(r"--(?:members|reference) (\S+)", blocks)))


def test_well_known_names_resolve_through_auditor_datasets(user, datasets, monkeypatch):
    monkeypatch.setenv("AUDITOR_DATASETS", str(datasets))
    model = _fitted(user.dir, "mnist:train", 1000)
    # the README's example's data, typed literally (dry run: model, data and configuration are checked, nothing runs)
    code, out, err = user.run("run", *model, "--members", "mnist:train", "--members-limit", "1000",
                              "--reference", "mnist:test", "--reference-limit", "1000", "--dry-run")
    assert code == 0 and "dry run" in out, err
    model = _fitted(user.dir, "fashion-mnist:test", 30)
    code, out, err = user.run("run", *model, "--members", "fashion-mnist:test", "--members-limit", "30", "--dry-run")
    assert code == 0, err
    model = _fitted(user.dir, "cifar10:train", 30)
    code, out, err = user.run("run", *model, "--members", "cifar10:train", "--members-limit", "30", "--reference", "cifar10:test",
                              "--reference-limit", "30", "--dry-run")
    assert code == 0, err

    from auditor.data.known import locate
    from auditor.data.sets import load_images

    first = load_images("fashion-mnist:test")
    assert first.class_names[0] == "T-shirt/top" and len(first) == 10000  # the README of the datasets: 1,000 per class
    assert load_images("mnist:test").counts(10)[:3] == [980, 1135, 1032]
    # every data source in the README's (and docs/first-audit.md's) examples is a well-known name that resolves, or a user's own file/folder
    for source in _readme_sources():
        base, _, split = source.partition(":")
        if base in ("mnist", "fashion-mnist", "cifar10"):
            assert locate(base, split or "train")[0] == datasets / base, source
        else:
            assert "/" in source or Path(base).suffix, f"README example {source!r} is neither a well-known name nor a path"


def test_well_known_name_absent_says_where_it_looked_and_downloads_nothing(user, monkeypatch):
    monkeypatch.setenv("AUDITOR_DATASETS", str(user.dir / "no-datasets"))
    monkeypatch.setenv("AUDITOR_CACHE", str(user.dir / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("the auditor tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    torch.save(user.state, user.dir / "weights.pt")
    code, _, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "weights.pt", "--input-shape", SHAPE,
                            "--members", "mnist:train", "--dry-run")
    assert code == 2
    assert "dataset mnist:train not found (nothing is downloaded)" in err
    assert "train-images-idx3-ubyte[.gz]" in err
    for folder in (user.dir / "no-datasets" / "mnist", user.dir / "cache" / "datasets" / "mnist", user.dir / "data" / "MNIST" / "raw"):
        assert str(folder) in err
    assert "set AUDITOR_DATASETS" in err
    code, _, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "weights.pt", "--input-shape", SHAPE,
                            "--members", "mnist:validation", "--dry-run")
    assert code == 2 and "split must be 'train' or 'test', got 'validation'" in err


def test_well_known_name_found_in_the_documented_cache(user, monkeypatch, audit_data):
    """The documented cache folder, holding files the user put there (here: IDX files written by the test)."""
    monkeypatch.delenv("AUDITOR_DATASETS", raising=False)
    monkeypatch.setenv("AUDITOR_CACHE", str(user.dir / "cache"))
    folder = user.dir / "cache" / "datasets" / "mnist"
    folder.mkdir(parents=True)
    images = (audit_data.members.images[:, 0].numpy() * 255).round().astype(np.uint8)
    labels = audit_data.members.labels.numpy().astype(np.uint8)
    for stem, array, magic in (("t10k-images-idx3-ubyte", images, 3), ("t10k-labels-idx1-ubyte", labels, 1)):
        header = bytes([0, 0, 8, magic]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        (folder / stem).write_bytes(header + array.tobytes())
    torch.save(user.state, user.dir / "weights.pt")
    code, out, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "weights.pt", "--input-shape", SHAPE,
                              "--members", "mnist:test", "--dry-run")
    assert code == 0 and "dry run" in out, err


# --------------------------------------------------------------------------- 3. bnn_sat's skip reason

BINARY_FILE = """\
import torch
from torch import nn


class BinaryMLP(nn.Module):
    \"\"\"Sign-binarised input, one ±1 hidden layer with sign activations; no input_shape attribute.\"\"\"

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(256, 32), nn.Linear(32, 3)

    def forward(self, x):
        return self.fc2(torch.sign(self.fc1(torch.sign(x.flatten(1) - 0.5))))


def make():
    return BinaryMLP()
"""


def _template_bnn(audit_data) -> dict[str, torch.Tensor]:
    """Weights of BinaryMLP that classify the members: hidden unit j matches the sign template of class j % 3."""
    bits = torch.sign(audit_data.members.images.flatten(1) - 0.5)
    labels = audit_data.members.labels
    rows, biases = [], []
    for j in range(32):
        inside, outside = bits[labels == j % 3], bits[labels != j % 3]
        template = torch.sign(inside.mean(0) + 1e-3)
        threshold = int((inside @ template).min() + (outside @ template).max()) // 2
        rows.append(template)
        biases.append(-(threshold + threshold % 2) + 0.5)  # sums of 256 ±1 terms are even: never exactly 0
    out = torch.tensor([[1.0 if j % 3 == k else -1.0 for j in range(32)] for k in range(3)])
    return {"fc1.weight": torch.stack(rows), "fc1.bias": torch.tensor(biases), "fc2.weight": out, "fc2.bias": torch.zeros(3)}


def test_bnn_sat_on_a_factory_model_uses_the_given_input_shape(user, audit_data):
    torch.save(user.state, user.dir / "weights.pt")
    code, out, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "weights.pt", "--input-shape", SHAPE,
                              "--members", "members.npz",
                              "--plugins", "bnn_sat", "--out", "report")
    report = json.loads((user.dir / "report" / "report.json").read_text())
    reason = report["results"][0]["reason"]
    assert report["results"][0]["status"] == "skipped" and code == 3
    assert reason.startswith("not a binarised network: MNISTNet has no sign activation (its operations: Conv")
    assert "input_shape" not in reason
    assert "bnn_sat" in out and "not a binarised network: MNISTNet has no sign activation" in out

    # a binarised network that is not an nn.Sequential and has no input_shape attribute: --input-shape is enough
    (user.dir / "models" / "binary_mlp.py").write_text(BINARY_FILE)
    torch.save(_template_bnn(audit_data), user.dir / "bnn.pt")
    code, out, err = user.run("run", "factory:models/binary_mlp.py:make", "--weights", "bnn.pt", "--input-shape", SHAPE,
                              "--members", "members.npz",
                              "--plugins", "bnn_sat", "--smoke", "--set", "bnn_sat.classes=[0]", "--set", "bnn_sat.per_class=1",
                              "--out", "report-bnn")
    result = json.loads((user.dir / "report-bnn" / "report.json").read_text())["results"][0]
    assert result["status"] == "completed", result["reason"]


# --------------------------------------------------------------------------- 4. checkpoint wrappers


def _wrappers(state: dict[str, torch.Tensor]) -> dict[str, object]:
    net = TinyNet()
    net.load_state_dict(state)
    data_parallel = nn.DataParallel(net).state_dict()  # keys "module.features.0.weight", ...
    compiled = torch.compile(net).state_dict()          # keys "_orig_mod.features.0.weight", ... (nothing is compiled yet)
    assert next(iter(data_parallel)).startswith("module.") and next(iter(compiled)).startswith("_orig_mod.")
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9).state_dict()
    return {
        "model_state_dict": {"epoch": 3, "model_state_dict": state, "optimizer_state_dict": optimiser, "loss": 0.25},
        "model": {"model": state, "epoch": 7},
        "net": {"net": state, "acc": 91.5},
        "state_dict": {"state_dict": state},
        "DataParallel": data_parallel,
        "torch.compile": compiled,
        "DDP in a tutorial checkpoint": {"model_state_dict": data_parallel, "epoch": 1},
    }


@pytest.mark.parametrize("form", ["model_state_dict", "model", "net", "state_dict", "DataParallel", "torch.compile",
                                  "DDP in a tutorial checkpoint"])
def test_checkpoint_wrappers_load(user, form):
    torch.save(_wrappers(user.state)[form], user.dir / "checkpoint.pth")
    code, out, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "checkpoint.pth", "--input-shape", SHAPE,
                              "--members", "members.npz", "--dry-run")
    assert code == 0 and "dry run" in out, err
    x = torch.rand(4, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(_load("factory:models/mnist_net.py:make", Path("checkpoint.pth")).logits(x), user.net(x))


def test_checkpoint_with_several_fitting_state_dicts_names_the_one_used(user):
    other = {k: torch.zeros_like(v) for k, v in user.state.items()}
    torch.save({"state_dict": user.state, "model": other, "epoch": 2}, user.dir / "two.pt")
    user.run("run", "factory:models/mnist_net.py:make", "--weights", "two.pt", "--input-shape", SHAPE, "--members", "members.npz",
             "--plugins", "bnn_sat", "--out", "report")
    warnings = json.loads((user.dir / "report" / "report.json").read_text())["model"]["warnings"]
    assert any("holds several state dicts that fit ('state_dict', 'model'); used 'state_dict'" in w for w in warnings), warnings
    assert "used &#39;state_dict&#39;" in (user.dir / "report" / "report.html").read_text()


def test_cuda_saved_checkpoint_loads_on_the_cpu(user, monkeypatch):
    import torch.serialization

    with monkeypatch.context() as patch:  # torch.save records each storage's device; here every storage says cuda:0
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"model_state_dict": user.state}, user.dir / "cuda.pt")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(user.dir / "cuda.pt", weights_only=True)  # the file really asks for a CUDA device
    code, out, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "cuda.pt", "--input-shape", SHAPE,
                              "--members", "members.npz", "--dry-run")
    assert code == 0 and "dry run" in out, err


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_wrapper_never_unpickles_objects(user):
    marker = user.dir / "pwned"
    torch.save({"model_state_dict": user.state, "args": _Evil(str(marker))}, user.dir / "evil.pt")
    code, _, err = user.run("run", "factory:models/mnist_net.py:make", "--weights", "evil.pt", "--input-shape", SHAPE,
                            "--members", "members.npz", "--dry-run")
    assert code == 2 and "not a plain state dict loadable with weights_only=True" in err
    assert not marker.exists()


# --------------------------------------------------------------------------- 5. the command that reproduces the audit


def test_report_and_console_show_the_command_that_reproduces_the_audit(user, audit_data):
    (user.dir / "my models").mkdir()
    (user.dir / "my models" / "net.py").write_text(BINARY_FILE)
    torch.save(_template_bnn(audit_data), user.dir / "my models" / "bnn weights.pt")
    typed = ["-q", "run", "factory:my models/net.py:make", "--weights", "my models/bnn weights.pt", "--input-shape", SHAPE,
             "--members", "./members.npz",
             "--plugins", "bnn_sat", "--smoke", "--set", "bnn_sat.classes=[0]", "--set", "bnn_sat.per_class=1", "--out", "out dir"]
    code, out, err = user.run(*typed)
    command = shlex.join(["audit", *typed])
    assert out.rstrip("\n").splitlines()[-1] == f"reproduce: {command}"
    report = json.loads((user.dir / "out dir" / "report.json").read_text())
    assert report["command"] == command
    assert "audit -q run &#39;factory:my models/net.py:make&#39;" in (user.dir / "out dir" / "report.html").read_text()
    # pasted into CI unchanged, it runs the same audit
    (user.dir / "out dir" / "report.json").unlink()
    again, _, err = user.run(*shlex.split(command)[1:])
    assert again == code, err
    rerun = json.loads((user.dir / "out dir" / "report.json").read_text())
    assert rerun["command"] == command and rerun["results"][0]["status"] == report["results"][0]["status"] == "completed"
