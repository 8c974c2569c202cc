"""Builders for the published-model corpus (tests/published/).

Small networks are trained on scikit-learn's digits (32x32, the ``digits`` data source); each variant
wraps a trained network so that it expects what a published file expects (0-255 pixels, NHWC, flat
vectors, a fixed batch, a Softmax at the end, ...) and is exported with ``torch.onnx.export``. The
truth is the wrapped network itself: fed the right preprocessing, it computes exactly the trained
network on [0, 1] pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from auditor.data.sets import load_images

MEMBERS_LIMIT, REFERENCE_LIMIT = 300, 200


def digits(split: str = "train", limit: int = MEMBERS_LIMIT):
    return load_images(f"digits:{split}", limit=limit)


def tinted(images: torch.Tensor) -> torch.Tensor:
    """Grey digits as distinct RGB channels (so channel order and flatten order matter)."""
    return torch.cat([images, images ** 2, 1 - images], dim=1)


class Cnn(nn.Module):
    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.head = nn.Linear(16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(h.reshape(h.size(0), -1))  # a fixed-batch export bakes the batch into Reshape(h, [1, -1])


class Mlp(nn.Module):
    def __init__(self, size: int = 1024) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = 150, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (128,), generator=generator)
        loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


class Wrapped(nn.Module):
    """``net`` behind a published file's conventions: ``unprep`` maps the file's input back to [0, 1] NCHW."""

    def __init__(self, net: nn.Module, unprep, head=None) -> None:
        super().__init__()
        self.net, self.unprep, self.head = net, unprep, head

    def forward(self, x: torch.Tensor):
        out = self.net(self.unprep(x))
        return out if self.head is None else self.head(out)


def export(module: nn.Module, example: torch.Tensor, path: Path, *, opset: int = 17, dynamic: bool = True,
           outputs: int = 1, dynamo: bool = False) -> Path:
    """The TorchScript exporter by default (as most published files were written; and fast); ``dynamo=True`` for the new one."""
    names = ["scores"] if outputs == 1 else [f"out{i}" for i in range(outputs)]
    if dynamo:
        shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
        torch.onnx.export(module.eval(), (example,), str(path), input_names=["x"], output_names=names, dynamic_shapes=shapes,
                          external_data=False, dynamo=True)
    else:
        axes = {"x": {0: "batch"}, **{n: {0: "batch"} for n in names}} if dynamic else None
        torch.onnx.export(module.eval(), (example,), str(path), input_names=["x"], output_names=names, opset_version=opset,
                          dynamic_axes=axes, dynamo=False)
    return path


def save_npz(path: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    np.savez(path, x=(images.numpy() * 255).round().astype(np.uint8), y=labels.numpy())
    return path


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def members():
    return digits("train", MEMBERS_LIMIT)


@pytest.fixture(scope="session")
def grey_cnn():
    data = digits("train", None)
    return train(Cnn(1), data.images, data.labels)


@pytest.fixture(scope="session")
def grey_mlp():
    data = digits("train", None)
    return train(Mlp(1024), data.images, data.labels)


@pytest.fixture(scope="session")
def rgb_mlp():
    data = digits("train", None)
    return train(Mlp(3072), tinted(data.images), data.labels)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory):
    """(grey members, grey reference, RGB members, RGB reference) as .npz paths."""
    folder = tmp_path_factory.mktemp("published-data")
    m, r = digits("train", MEMBERS_LIMIT), digits("test", REFERENCE_LIMIT)
    return (save_npz(folder / "members.npz", m.images, m.labels), save_npz(folder / "reference.npz", r.images, r.labels),
            save_npz(folder / "members_rgb.npz", tinted(m.images), m.labels),
            save_npz(folder / "reference_rgb.npz", tinted(r.images), r.labels))


def true_accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The trained network on [0, 1] NCHW pixels, called directly: the independent reference."""
    with torch.no_grad():
        return float((net(images).argmax(1) == labels).float().mean())


def dry_run(model: str | Path, members: Path, reference: Path, *extra: str) -> tuple[int, str, str]:
    """``audit run MODEL --dry-run`` with no preprocessing flags, as a user types it."""
    import contextlib
    import io

    from auditor.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-q", "run", str(model), "--members", str(members), "--reference", str(reference), "--dry-run", *extra])
    return code, out.getvalue(), err.getvalue()


def chosen(stdout: str) -> tuple[str, float]:
    lines = dict(line.split(": ", 1) for line in stdout.splitlines() if line.startswith(("chosen: ", "member accuracy: ")))
    return lines["chosen"], float(lines["member accuracy"])


@pytest.fixture(scope="session")
def kit():
    """The builders above, for test modules (pytest's importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(Wrapped=Wrapped, Cnn=Cnn, Mlp=Mlp, export=export, dry_run=dry_run, chosen=chosen,
                           true_accuracy=true_accuracy, tinted=tinted, train=train, digits=digits, save_npz=save_npz)
