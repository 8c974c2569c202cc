"""Targets for bench_kkt.py, trained by documented recipes and cached under bench/cache/.

Paper recipe (Haim et al. 2022, with docs/kkt.md's second-round changes): inputs are pixels in [0, 1] minus the
training set's mean pixel (a scalar, std 1, so the auditor's Preprocess reproduces it); every layer starts at
PyTorch's default init x 0.1; only the first layer has a bias; float64 full-batch gradient descent on
cross-entropy with lr = 0.5 * min(1e4, max(1, 1e-3 / loss)), until the loss is below 1e-9 or the time cap.
Weight-decay variant: the same with weight decay 5e-4 and lr 0.5 (the loss cannot reach zero). Ordinary
recipe (the 10,000-image control): default init, float32 minibatch SGD (batch 128, lr 0.05, momentum 0.9).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from auditor.data.sets import AuditData, balanced_subset, load_images
from auditor.lab.presets import preset
from auditor.models.model import from_module

log = logging.getLogger("bench.kkt")


@dataclass(frozen=True)
class Recipe:
    name: str
    dataset: str
    arch: str          # mlp | cnn
    n: int
    training: str      # paper | paper_wd | sgd
    cap_s: float = 600.0
    weight_decay: float | None = None
    control: bool = False


ROWS = [
    Recipe("mnist-mlp-100", "mnist", "mlp", 100, "paper"),
    Recipe("mnist-mlp-50", "mnist", "mlp", 50, "paper"),
    Recipe("mnist-mlp-500", "mnist", "mlp", 500, "paper", cap_s=900),
    Recipe("mnist-mlp-100-wd", "mnist", "mlp", 100, "paper_wd", weight_decay=5e-4),
    Recipe("mnist-cnn-100", "mnist", "cnn", 100, "paper"),
    Recipe("fashion-mlp-100", "fashion-mnist", "mlp", 100, "paper"),
    Recipe("cifar10-mlp-100", "cifar10", "mlp", 100, "paper"),
    Recipe("control-mnist-mlp-2000", "mnist", "mlp", 2000, "paper", cap_s=900, control=True),
    Recipe("control-mnist-mlp-10000-sgd", "mnist", "mlp", 10000, "sgd", cap_s=900, control=True),
]


def build(arch: str, shape: tuple[int, int, int], classes: int = 10) -> nn.Module:
    c, h, w = shape
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 1000), nn.ReLU(), nn.Linear(1000, 1000, bias=False), nn.ReLU(),
                             nn.Linear(1000, classes, bias=False))
    side = (((h - 5) // 2 + 1) - 5) // 2 + 1  # two 5x5 convolutions with stride 2, no padding
    return nn.Sequential(nn.Conv2d(c, 16, 5, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 5, stride=2, bias=False), nn.ReLU(),
                         nn.Flatten(), nn.Linear(32 * side * side, classes, bias=False))


def audit_data(r: Recipe, n_reference: int = 3000, seed: int = 0) -> tuple[AuditData, float]:
    ds = preset(r.dataset)
    train, test = load_images(ds.train), load_images(ds.test)
    members = train.subset(balanced_subset(train.labels.numpy(), r.n, seed))
    smallest = int(torch.bincount(test.labels).min())
    reference = test.subset(balanced_subset(test.labels.numpy(), min(n_reference, 10 * smallest), seed))
    mean = float(members.images.mean())
    return AuditData(members, reference, 10, ds.class_names), mean


def train_paper(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cap_s: float, wd: float | None) -> dict[str, float]:
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.1)
    params = list(net.parameters())
    x = x.double()
    start, steps, loss = time.monotonic(), 0, torch.tensor(1.0)
    while time.monotonic() - start < cap_s:
        loss = F.cross_entropy(net(x), y)
        total = loss + (0.5 * wd * sum((p ** 2).sum() for p in params) if wd else 0.0)
        grads = torch.autograd.grad(total, params)
        lr = 0.5 if wd else 0.5 * min(1e4, max(1.0, 1e-3 / loss.item()))
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
        steps += 1
        if not wd and float(loss) < 1e-9:
            break
    return {"train_loss": float(loss), "train_steps": steps, "train_seconds": round(time.monotonic() - start, 1)}


def train_sgd(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cap_s: float, epochs: int = 30) -> dict[str, float]:
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    start, steps = time.monotonic(), 0
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(128):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        if time.monotonic() - start > cap_s:
            break
    with torch.no_grad():
        loss = F.cross_entropy(net(x), y)
    return {"train_loss": float(loss), "train_steps": steps, "train_seconds": round(time.monotonic() - start, 1)}


def target(r: Recipe, cache) -> tuple[object, AuditData, dict[str, float]]:
    """The trained classifier (float32, preprocessing = minus the members' mean pixel), its data, and training facts."""
    data, mean = audit_data(r)
    torch.manual_seed(0)
    net = build(r.arch, data.image_shape)
    path = cache / f"kkt-{r.name}.pt"
    if path.exists():
        blob = torch.load(path, weights_only=True)
        net.load_state_dict(blob["state"])
        facts = blob["facts"]
    else:
        x = data.members.images - mean
        facts = (train_sgd(net, x, data.members.labels, r.cap_s) if r.training == "sgd"
                 else train_paper(net, x, data.members.labels, r.cap_s, r.weight_decay))
        net.float()
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({"state": net.state_dict(), "facts": facts}, path)
    net.float().eval()
    model = from_module(net, num_classes=10, input_shape=data.image_shape, mean=(mean,) * data.image_shape[0],
                        std=(1.0,) * data.image_shape[0], source=f"bench:kkt-{r.name}")
    facts = {**facts, "train_accuracy": model.accuracy(data.members.images, data.members.labels),
             "test_accuracy": model.accuracy(data.reference.images, data.reference.labels)}
    return model, data, facts
