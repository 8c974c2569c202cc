"""Targets of bench_membership.py that the zoo does not train: an honestly overfitted MNIST CNN and the DP-SGD control.

**Overfitted CNN ("plain CNN").** The zoo's three-block CNN geometry (Conv3×3 32/64/128 + LeakyReLU + MaxPool, then
Linear 256 + LeakyReLU + Linear 10) with every regulariser removed: no dropout, no batch norm, no data augmentation,
no weight decay. Adam (lr 1e-3, batch 64), seed 0, trained until the mean cross-entropy on its own training images
(eval mode, full pass, checked every epoch) is at most ``TARGET_LOSS`` = 1e-4, or ``max_epochs``. This is how a
model is overfitted in practice (the issue's published MNIST CNN: member loss 0.0003 vs 0.034 held out).

**DP-SGD control.** The zoo's tinycnn with BatchNorm replaced by GroupNorm (Opacus' validator), DP-SGD to ε = 8,
δ = 1e-5 (RDP accountant), clipping 1.0, 15 epochs.

Both are cached under bench/cache/ with a JSON of their recipe and training statistics beside the weights.
"""
from __future__ import annotations

import json
import logging
import time

import numpy as np
import torch
from common import CACHE
from torch import nn

from auditor.data.sets import balanced_subset, load_images
from auditor.lab import zoo
from auditor.lab.presets import preset
from auditor.models.model import from_module

log = logging.getLogger("bench.membership")
TARGET_LOSS = 1e-4
DP_EPSILON, DP_DELTA, DP_N = 8.0, 1e-5, 5000


class PlainCNN(nn.Module):
    """The zoo CNN's geometry without batch norm or dropout."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, channels: tuple[int, ...] = (32, 64, 128),
                 hidden: int = 256) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in, side = image_shape[0], image_shape[1]
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2)]
            c_in, side = c, side // 2
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in * side * side, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def plain_cnn(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Reference-model factory (``reference_factory = "membership_targets:plain_cnn"``, with bench/ on the path)."""
    return PlainCNN(image_shape, num_classes)


@torch.no_grad()
def _losses(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-example cross-entropy (float64) and correctness of normalised images ``x``."""
    logits = torch.cat([net(x[i:i + 1000]) for i in range(0, len(x), 1000)]).double()
    return nn.functional.cross_entropy(logits, y, reduction="none").numpy(), (logits.argmax(1) == y).numpy()


def train_plain(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, max_epochs: int, seed: int = 0, lr: float = 1e-3,
                batch_size: int = 64, target_loss: float = TARGET_LOSS) -> dict:
    """Adam, no weight decay, until the mean member loss reaches ``target_loss`` (checked after every epoch): the plugin's own
    reference-model loop (``auditor_membership.reference.fit``), so the targets and the reference models train alike."""
    from auditor_membership.reference import fit

    start = time.monotonic()
    facts = fit(net, x, y, epochs=max_epochs, lr=lr, batch_size=batch_size, seed=seed, deadline=float("inf"), target_loss=target_loss)
    return {"epochs": int(facts["epochs"]), "train_s": round(time.monotonic() - start, 1),
            "reached_target_loss": facts["train_loss"] <= target_loss}


def _cached(net: nn.Module, path, train) -> dict:
    """Weights and their JSON facts from ``path`` (and ``path.json``), or ``train(net)`` (trains ``net`` in place and
    returns the facts), then both are written there."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        return json.loads(meta.read_text())
    info = train(net)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    meta.write_text(json.dumps(info, indent=1))
    return info


def overfitted_cnn(n: int, max_epochs: int, seed: int = 0):
    """The plain CNN trained to a member loss of at most 1e-4 on ``n`` class-balanced MNIST training images (cached)."""
    ds = preset("mnist")
    train, test = load_images(ds.train), load_images(ds.test)
    members = train.subset(balanced_subset(train.labels.numpy(), n, seed))
    mean, std = torch.tensor(ds.mean).view(1, -1, 1, 1), torch.tensor(ds.std).view(1, -1, 1, 1)
    net = PlainCNN(members.image_shape, 10)
    path = CACHE / f"mnist-plaincnn-{n}-s{seed}.pt"

    def train(net: nn.Module) -> dict:
        info = {"recipe": f"plain CNN (no dropout, batch norm, augmentation or weight decay), Adam lr 1e-3, batch 64, seed {seed}, "
                          f"until member loss <= {TARGET_LOSS:g} (at most {max_epochs} epochs)"}
        info |= train_plain(net, (members.images - mean) / std, members.labels, max_epochs=max_epochs, seed=seed)
        net.eval()
        for part, images in (("member", members), ("test", test)):
            loss, correct = _losses(net, (images.images - mean) / std, images.labels)
            info |= {f"{part}_mean_loss": float(loss.mean()), f"{part}_median_loss": float(np.median(loss)),
                     f"{part}_accuracy": float(correct.mean())}
        return info

    info = _cached(net, path, train)
    net.eval()
    model = from_module(net, num_classes=10, input_shape=members.image_shape, mean=ds.mean, std=ds.std, source=f"bench:{path.stem}")
    return model, members, info


def dp_model(epochs: int = 15):
    """The zoo's tinycnn with BatchNorm replaced by GroupNorm (Opacus' validator), trained with DP-SGD to ε = 8, δ = 1e-5."""
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    ds = preset("mnist")
    train = load_images(ds.train)
    members = train.subset(balanced_subset(train.labels.numpy(), DP_N, 0))
    net = ModuleValidator.fix(zoo.build("tinycnn", members.image_shape, 10))
    path = CACHE / f"mnist-tinycnn-gn-dp{DP_EPSILON:g}-{DP_N}-s0.pt"

    def train(net: nn.Module) -> dict:
        torch.manual_seed(0)
        mean, std = torch.tensor(ds.mean).view(1, -1, 1, 1), torch.tensor(ds.std).view(1, -1, 1, 1)
        x = (members.images - mean) / std
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, members.labels), batch_size=256, shuffle=True,
                                             generator=torch.Generator().manual_seed(0))
        optimiser = torch.optim.SGD(net.parameters(), lr=1.0, momentum=0.9)
        engine = PrivacyEngine(accountant="rdp")
        model, optimiser, loader = engine.make_private_with_epsilon(module=net.train(), optimizer=optimiser, data_loader=loader,
                                                                    target_epsilon=DP_EPSILON, target_delta=DP_DELTA, epochs=epochs,
                                                                    max_grad_norm=1.0)
        start = time.monotonic()
        for _ in range(epochs):
            for xb, yb in loader:
                if len(yb) == 0:
                    continue
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return {"epsilon": float(engine.get_epsilon(DP_DELTA)), "delta": DP_DELTA, "epochs": epochs,
                "noise_multiplier": float(optimiser.noise_multiplier), "max_grad_norm": 1.0, "train_s": time.monotonic() - start}

    info = _cached(net, path, train)  # Opacus wraps net (GradSampleModule._module is net itself): net holds the weights
    net.eval()
    classifier = from_module(net, num_classes=10, input_shape=members.image_shape, mean=ds.mean, std=ds.std, source=f"bench:{path.stem}")
    return classifier, members, info
