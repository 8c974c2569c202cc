"""Targets for bench_kkt.py, trained by documented recipes and cached under bench/cache/.

Paper recipe (Haim et al. 2022, with docs/kkt.md's second-round changes): inputs are pixels in [0, 1] minus the
training set's mean pixel (a scalar, std 1, so the auditor's Preprocess reproduces it); every layer starts at
PyTorch's default init x 0.1; only the first layer has a bias; float64 full-batch gradient descent on
cross-entropy with lr = 0.5 * min(1e4, max(1, 1e-3 / loss)), until the loss is below 1e-9, 4,000 steps or the time
cap, whichever comes first (the step cap makes a GPU train the same model a CPU would: every CPU-trained target so far
stopped before 4,000 steps). Weight-decay variant: the same with weight decay 5e-4 and lr 0.5 (the loss cannot reach zero). Ordinary
recipe (the 10,000-image control): default init, float32 minibatch SGD (batch 128, lr 0.05, momentum 0.9).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from auditor.data.sets import AuditData, LabeledImages, balanced_subset, load_images
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
    max_steps: int = 4000
    weight_decay: float | None = None
    control: bool = False
    labels: str = "digit"  # digit (10 classes) | parity (2 classes: even/odd digit, the same images: Buzaglo et al.'s multiclass claim)

    @property
    def classes(self) -> int:
        return 2 if self.labels == "parity" else 10


ROWS = [
    Recipe("mnist-mlp-100", "mnist", "mlp", 100, "paper"),
    Recipe("mnist-mlp-50", "mnist", "mlp", 50, "paper"),
    Recipe("mnist-mlp-500", "mnist", "mlp", 500, "paper", cap_s=900),
    Recipe("mnist-mlp-100-wd", "mnist", "mlp", 100, "paper_wd", weight_decay=5e-4),
    Recipe("mnist-mlp-100-parity", "mnist", "mlp", 100, "paper", labels="parity"),
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


def audit_data(r: Recipe, cache: Path, n_reference: int = 3000, seed: int = 0) -> tuple[AuditData, float]:
    """Members (a balanced subset of the training file) and references (of the test file), cached as 8-bit pixels in
    ``kkt-data-<row>.npz`` so that a machine without the datasets (a lent GPU) audits exactly the same images."""
    path = cache / f"kkt-data-{r.name}-s{seed}.npz"
    if path.exists():
        blob = np.load(path, allow_pickle=False)
        sets = [LabeledImages(torch.from_numpy(blob[f"{k}_x"]).float() / 255, torch.from_numpy(blob[f"{k}_y"]).long(), f"{path}:{k}")
                for k in ("members", "reference")]
        names = tuple(str(n) for n in blob["class_names"])
    else:
        ds = preset(r.dataset)
        train, test = load_images(ds.train), load_images(ds.test)
        members = train.subset(balanced_subset(train.labels.numpy(), r.n, seed))
        smallest = int(torch.bincount(test.labels).min())
        reference = test.subset(balanced_subset(test.labels.numpy(), min(n_reference, 10 * smallest), seed))
        sets, names = [members, reference], tuple(ds.class_names)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, class_names=np.array(names), **{
            f"{k}_{a}": (s.images * 255).round().to(torch.uint8).numpy() if a == "x" else s.labels.numpy()
            for k, s in zip(("members", "reference"), sets) for a in ("x", "y")})
    members, reference = sets
    mean = float(members.images.mean())
    if r.labels == "parity":
        members, reference = (LabeledImages(s.images, s.labels % 2, s.source) for s in (members, reference))
        names = ("even", "odd")
    return AuditData(members, reference, r.classes, names), mean


def train_paper(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cap_s: float, wd: float | None, max_steps: int) -> dict[str, float]:
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.1)
    params = list(net.parameters())
    x = x.double()
    start, steps, loss = time.monotonic(), 0, torch.tensor(1.0)
    while time.monotonic() - start < cap_s and steps < max_steps:
        loss = F.cross_entropy(net(x), y)
        total = loss + (0.5 * wd * sum((p ** 2).sum() for p in params) if wd else 0.0)
        grads = torch.autograd.grad(total, params)
        lr = 0.5 if wd else 0.5 * min(1e4, max(1.0, 1e-3 / loss.item()))
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
        steps += 1
        if not wd and loss.item() < 1e-9:
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


def target(r: Recipe, cache: Path, device: str = "cpu") -> tuple[object, AuditData, dict[str, float]]:
    """The trained classifier (float32, preprocessing = minus the members' mean pixel), its data, and training facts.

    Trained on ``device`` when not cached (the recipe's step cap keeps a GPU's model the CPU's); returned on the CPU."""
    data, mean = audit_data(r, cache)
    torch.manual_seed(0)
    net = build(r.arch, data.image_shape, r.classes)
    path = cache / f"kkt-{r.name}.pt"
    if path.exists():
        blob = torch.load(path, weights_only=True)
        net.load_state_dict(blob["state"])
        facts = blob["facts"]
    else:
        net.to(device)
        x, y = (data.members.images - mean).to(device), data.members.labels.to(device)
        facts = (train_sgd(net, x, y, r.cap_s) if r.training == "sgd"
                 else train_paper(net, x, y, r.cap_s, r.weight_decay, r.max_steps))
        facts["train_device"] = device
        net.float().cpu()
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({"state": net.state_dict(), "facts": facts}, path)
    net.float().eval()
    model = from_module(net, num_classes=r.classes, input_shape=data.image_shape, mean=(mean,) * data.image_shape[0],
                        std=(1.0,) * data.image_shape[0], source=f"bench:kkt-{r.name}")
    facts = {**facts, "train_accuracy": model.accuracy(data.members.images, data.members.labels),
             "test_accuracy": model.accuracy(data.reference.images, data.reference.labels)}
    return model, data, facts
