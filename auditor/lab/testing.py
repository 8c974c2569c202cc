"""Opt-in pytest fixtures for plugin authors: ``pytest_plugins = ["auditor.lab.testing"]``.

* ``tiny_classifier`` (parametrized ``"torch"`` / ``"onnx"``): a small CNN with batch norm trained for a
  few steps on ``audit_data``'s members, as a :class:`~auditor.models.model.Classifier`.
* ``audit_data``: seeded synthetic 3-class, 1×16×16 data (members and reference) whose classes differ
  by where a bright blob sits, so a tiny model learns them in seconds.
* ``plugin_manager``: a plugin manager with autoload off (core loaders only); register your plugin on it.
* ``run_attack``: runs one attack class in smoke mode through the real runner and returns its ``AttackResult``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from auditor.data.sets import AuditData, LabeledImages

IMAGE_SHAPE = (1, 16, 16)
NUM_CLASSES = 3


def synthetic_images(n_per_class: int, seed: int, image_shape: tuple[int, int, int] = IMAGE_SHAPE,
                     num_classes: int = NUM_CLASSES) -> LabeledImages:
    """Blobs at a class-dependent position plus noise; float32 NCHW in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = image_shape
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    images, labels = [], []
    for k in range(num_classes):
        cy, cx = h * (0.25 + 0.5 * (k % 2)), w * (0.2 + 0.6 * k / max(num_classes - 1, 1))
        for _ in range(n_per_class):
            jitter = torch.randn(2, generator=g) * 1.0
            blob = torch.exp(-((ys - cy - jitter[0]) ** 2 + (xs - cx - jitter[1]) ** 2) / (2 * (h / 6) ** 2))
            img = (0.8 * blob + 0.15 * torch.rand((h, w), generator=g)).clamp(0, 1)
            images.append(img.expand(c, h, w).clone())
            labels.append(k)
    return LabeledImages(torch.stack(images), torch.tensor(labels), f"synthetic:{seed}")


def make_audit_data(n_members: int = 12, n_reference: int = 12, seed: int = 0,
                    image_shape: tuple[int, int, int] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES) -> AuditData:
    members = synthetic_images(n_members, seed, image_shape, num_classes)
    reference = synthetic_images(n_reference, seed + 1000, image_shape, num_classes)
    return AuditData(members, reference, num_classes, tuple(f"class{k}" for k in range(num_classes)))


class TinyNet(nn.Module):
    """Two convolutions with batch norm, then two linear layers."""

    def __init__(self, channels: int = 1, num_classes: int = NUM_CLASSES, side: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * (side // 4) ** 2, 32), nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_tiny(data: AuditData, seed: int = 0, steps: int = 60) -> TinyNet:
    torch.manual_seed(seed)
    c, h, _ = data.image_shape
    net = TinyNet(c, data.num_classes, h)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = data.members.images, data.members.labels
    net.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def export_tiny_onnx(net: nn.Module, image_shape: tuple[int, int, int], path: Path) -> Path:
    from auditor.lab.zoo import export_onnx

    return export_onnx(net, image_shape, path)


@pytest.fixture(scope="session")
def audit_data() -> AuditData:
    return make_audit_data()


@pytest.fixture(scope="session")
def tiny_net(audit_data: AuditData) -> TinyNet:
    return train_tiny(audit_data)


@pytest.fixture(scope="session")
def tiny_onnx_path(tiny_net: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_onnx(tiny_net, IMAGE_SHAPE, tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(params=["torch", "onnx"])
def tiny_classifier(request: pytest.FixtureRequest, tiny_net: TinyNet):
    from auditor.models.loaders import load_model
    from auditor.models.model import ModelSpec, from_module

    if request.param == "torch":
        return from_module(tiny_net, num_classes=NUM_CLASSES, input_shape=IMAGE_SHAPE, source="python:TinyNet")
    path = request.getfixturevalue("tiny_onnx_path")
    return load_model(ModelSpec(source=str(path)))


@pytest.fixture
def plugin_manager():
    from auditor.engine.plugins import get_plugin_manager

    return get_plugin_manager(autoload=False)


@pytest.fixture
def run_attack(tiny_onnx_path: Path, audit_data: AuditData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``run_attack(plugin_module_or_object, attack_name, **options) -> AttackResult`` in smoke mode on the tiny ONNX model."""
    import numpy as np

    from auditor.engine.config import build_config
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit

    npz_members, npz_reference = tmp_path / "members.npz", tmp_path / "reference.npz"
    np.savez(npz_members, x=audit_data.members.images.numpy(), y=audit_data.members.labels.numpy())
    np.savez(npz_reference, x=audit_data.reference.images.numpy(), y=audit_data.reference.labels.numpy())

    def _run(plugin: object, attack: str, **options: object):
        pm = get_plugin_manager(autoload=False)
        pm.register(plugin, name=getattr(plugin, "__name__", attack))
        config = build_config({"model": {"source": str(tiny_onnx_path)},
                               "data": {"members": str(npz_members), "reference": str(npz_reference)},
                               "run": {"plugins": [attack], "smoke": True, "show_progress": False},
                               "report": {"out": str(tmp_path / "report")}, "attacks": {attack: dict(options)}})
        report = run_audit(config, pm)
        return report.results[-1]

    return _run
