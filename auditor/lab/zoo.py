"""Small classifiers the project trains itself (demo, tests, studies, benchmarks).

Architectures of the studies' comparison: an MLP (Linear+BN+LeakyReLU+Dropout), a three-block CNN
(Conv3×3+BN+LeakyReLU+MaxPool+Dropout2d) and a small ViT from timm (patch 7 or 4, embed 64,
4 heads, 2 blocks), each taking float32 NCHW images (normalised by the classifier wrapper).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

import torch
from torch import nn

log = logging.getLogger(__name__)

Arch = Literal["mlp", "cnn", "vit", "vit_nopos", "tinycnn"]


class MLP(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (512, 256), dropout: float = 0.4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = image_shape[0] * image_shape[1] * image_shape[2]
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, channels: tuple[int, ...] = (32, 64, 128), hidden: int = 256) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in, side = image_shape[0], image_shape[1]
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2), nn.MaxPool2d(2), nn.Dropout2d(0.25)]
            c_in, side = c, side // 2
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in * side * side, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2), nn.Dropout(0.4),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(arch: Arch, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    if arch == "mlp":
        return MLP(image_shape, num_classes)
    if arch == "cnn":
        return CNN(image_shape, num_classes)
    if arch == "tinycnn":
        return CNN(image_shape, num_classes, channels=(16, 32), hidden=64)
    if arch in ("vit", "vit_nopos"):
        import timm

        side = image_shape[1]
        patch = 7 if side % 7 == 0 else 4
        net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, img_size=side, patch_size=patch,
                                in_chans=image_shape[0], embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0, drop_rate=0.1)
        if arch == "vit_nopos":
            net.pos_embed.data.zero_()
            net.pos_embed.requires_grad_(False)
        return net
    raise ValueError(f"unknown architecture {arch!r}; expected one of mlp, cnn, tinycnn, vit, vit_nopos")


def train(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, mean: tuple[float, ...], std: tuple[float, ...],
          epochs: int = 10, lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 1e-5, seed: int = 0,
          time_budget_s: float | None = None) -> nn.Module:
    """Adam + cross-entropy on pixels in [0, 1], normalised with ``mean``/``std`` inside the loop."""
    torch.manual_seed(seed)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    rng = torch.Generator().manual_seed(seed)
    start = time.monotonic()
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=rng)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2:
                continue
            loss = nn.functional.cross_entropy(net((images[idx] - m) / s), labels[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        log.debug("epoch %d loss %.4f", epoch, total / len(labels))
        if time_budget_s is not None and time.monotonic() - start > time_budget_s:
            break
    return net.eval()


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> float:
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        preds = torch.cat([net.eval()((images[i:i + 512] - m) / s).argmax(1) for i in range(0, len(images), 512)])
    return float((preds == labels).float().mean())


def export_onnx(net: nn.Module, image_shape: tuple[int, int, int], path: Path, *, mean: tuple[float, ...] | None = None,
                std: tuple[float, ...] | None = None) -> Path:
    """Export to a single ONNX file (no external data), dynamic batch; normalisation baked in when given."""
    import warnings

    module: nn.Module = net.eval()
    if mean is not None and std is not None:
        from auditor.models.model import Preprocess

        module = nn.Sequential(Preprocess((0.0, 1.0), mean, std, channels_last=False), net).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand((2, *image_shape))
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_shapes=({0: batch},), external_data=False, dynamo=True, verbose=False)
    return path
