"""Train a BNN on sign-binarised MNIST (28x28 or downsampled) and export it to ONNX.

Usage::

    python -m auditor_bnn_sat.train --arch 784-100-10 --out DIR [--epochs 10] [--sparsity 0.5]
    python -m auditor_bnn_sat.train --arch 100-100-10 --out DIR      # 10x10 inputs

``arch[0]`` fixes the input: 784 -> 28x28, 100 -> 10x10 (area-downsampled MNIST), any square.
Writes ``DIR/model.onnx`` (the exact deploy form: Sign nodes, integer thresholds as
half-integer biases), ``DIR/model.pt`` (state dict and architecture), ``DIR/meta.json``
(accuracies, sizes) and, with ``--save-data``, ``DIR/train.npz``/``DIR/test.npz`` (the
downsampled images as uint8, for auditing a 10x10 model).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from auditor import DataError, datasets_dir, load_images
from auditor_bnn_sat.bnn import BNN, deploy_module

log = logging.getLogger(__name__)


def input_shape_for(n_inputs: int) -> tuple[int, int, int]:
    """784 -> (1, 28, 28); any square number n -> (1, sqrt n, sqrt n)."""
    side = math.isqrt(n_inputs)
    if side * side != n_inputs:
        raise ValueError(f"arch[0] must be a square number of pixels (784, 100, ...), got {n_inputs}")
    return (1, side, side)


def parse_arch(text: str) -> list[int]:
    try:
        arch = [int(part) for part in text.split("-")]
    except ValueError as exc:
        raise ValueError(f"--arch expects widths joined by '-', like 784-100-10, got {text!r}") from exc
    if len(arch) < 3 or min(arch) < 1:
        raise ValueError(f"--arch needs input, hidden and output widths, got {text!r}")
    return arch


def load_mnist(split: str, side: int = 28, limit: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images [N, 1, side, side] in [0, 1] (area-downsampled when side < 28) and labels."""
    root = datasets_dir()
    if root is None:
        raise DataError("MNIST not found: set AUDITOR_DATASETS to the folder holding mnist/ (nothing is downloaded)")
    data = load_images(f"{root / 'mnist'}:{split}", limit=limit, subset_seed=seed)
    x = data.images
    if side != x.shape[-1]:
        x = F.interpolate(x, size=(side, side), mode="area")
        x = (x * 255).round() / 255  # keep the uint8 grid so saved data reproduces the bits
    return x, data.labels


def default_threshold(side: int) -> float:
    """Pixel binarisation threshold: 0.5 at 28x28; 0.25 for downsampled images, whose strokes
    area-averaging has thinned (10x10 test accuracy ~87% instead of ~77% at 0.5)."""
    return 0.5 if side >= 28 else 0.25


def train_bnn(arch: list[int], x: torch.Tensor, y: torch.Tensor, *, epochs: int = 10, lr: float = 1e-2,
              batch_size: int = 256, sparsity: float = 0.0, seed: int = 0, threshold: float | None = None) -> BNN:
    """Train a :class:`BNN` with Adam and latent-weight clipping; returns it in eval mode.

    Args:
        arch: Layer widths, input first.
        x: Images [N, C, H, W] in [0, 1].
        y: Labels.
        epochs: Passes over ``x``.
        lr: Adam step size (cosine-annealed).
        batch_size: Batch size.
        sparsity: Zero weights per hidden row (see :class:`BinaryLinear`).
        seed: Seed of initialisation and batch order.
        threshold: Pixel binarisation threshold; :func:`default_threshold` when None.
    """
    torch.manual_seed(seed)
    if threshold is None:
        threshold = default_threshold(x.shape[-1])
    model = BNN(arch, tuple(x.shape[1:]), sparsity=sparsity, threshold=threshold)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * math.ceil(len(x) / batch_size)))
    temperature = 1.0 / math.sqrt(arch[-2])  # logits are sums of +-1 terms
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total, correct, start = 0.0, 0, time.time()
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            logits = model(x[idx])
            loss = F.cross_entropy(logits * temperature, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            model.clip_weights()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        log.info("epoch %d: loss %.4f, train acc %.4f (%.1fs)", epoch + 1, total / len(x), correct / len(x),
                 time.time() - start)
    return model.eval()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 2048]).argmax(1) for i in range(0, len(x), 2048)])
    return float((pred == y).float().mean())


def export_onnx(model: torch.nn.Module, path: Path, input_shape: tuple[int, int, int], fold: bool = True) -> Path:
    """Export ``model`` to ONNX with ``Sign`` nodes.

    Args:
        model: A :class:`BNN` (eval mode) or any module.
        path: Output ``.onnx`` file.
        input_shape: C, H, W.
        fold: Export the deploy form (batch norm folded into half-integer biases, exact);
            False exports the module as is (a :class:`BNN` then keeps its BatchNormalization).
    """
    from auditor_bnn_sat.fold import extract_network

    module = deploy_module(extract_network(model, input_shape)) if fold else model.eval()
    if not fold and isinstance(model, BNN):
        module = _with_plain_signs(model)
    dummy = (torch.rand(2, *input_shape),)
    names = dict(input_names=["pixels"], output_names=["logits"], dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}})
    try:
        torch.onnx.export(module, dummy, str(path), dynamo=False, **names)
    except Exception as exc:  # noqa: BLE001 - older/newer exporters differ; the dynamo exporter is the fallback
        log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", exc)
        torch.onnx.export(module, dummy, str(path), dynamo=True, external_data=False)
    return path


def _with_plain_signs(model: BNN) -> torch.nn.Sequential:
    """A copy of a BNN for export as is: ``torch.sign`` activations (ONNX ``Sign``), batch norm kept,
    binary weights (and quantised biases) stored as plain ``Linear`` constants."""
    import copy

    from auditor_bnn_sat.bnn import BinaryLinear, SignActivation

    clone = copy.deepcopy(model).eval()
    for i, layer in enumerate(clone):
        if isinstance(layer, SignActivation):
            clone[i] = SignActivation("sign")
        elif isinstance(layer, BinaryLinear):
            lin = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
            with torch.no_grad():
                lin.weight.copy_(layer.binary_weight())
                if layer.bias is not None:
                    lin.bias.copy_(layer.quantised_bias())
            clone[i] = lin
    return clone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditor_bnn_sat.train", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", required=True, help="widths, input first: 784-100-10, 100-100-10, ...")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sparsity", type=float, default=0.0, help="fraction of zero hidden weights (SAT-friendly)")
    parser.add_argument("--limit", type=int, default=None, help="train on a class-balanced subset of this many images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=None,
                        help="pixel binarisation threshold (default 0.5 at 28x28, 0.25 when downsampled)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--save-data", action="store_true", help="also write train.npz/test.npz at the model's resolution")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = parse_arch(args.arch)
    shape = input_shape_for(arch[0])
    x, y = load_mnist("train", shape[1], args.limit, args.seed)
    xt, yt = load_mnist("test", shape[1])
    start = time.time()
    model = train_bnn(arch, x, y, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                      sparsity=args.sparsity, seed=args.seed, threshold=args.threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "input_shape": shape, "sparsity": args.sparsity,
                "threshold": float(model[1].threshold), "state_dict": model.state_dict()}, args.out / "model.pt")
    export_onnx(model, args.out / "model.onnx", shape)
    meta = {"arch": arch, "input_shape": list(shape), "sparsity": args.sparsity, "epochs": args.epochs,
            "train_accuracy": accuracy(model, x, y), "test_accuracy": accuracy(model, xt, yt),
            "train_images": len(x), "limit": args.limit, "seed": args.seed, "train_seconds": time.time() - start}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2))
    if args.save_data:
        for name, (xs, ys) in (("train", (x, y)), ("test", (xt, yt))):
            np.savez_compressed(args.out / f"{name}.npz", x=(xs[:, 0] * 255).round().to(torch.uint8).numpy(), y=ys.numpy())
    log.info("test accuracy %.4f; wrote %s", meta["test_accuracy"], args.out)
    return 0


def load_bnn(path: Path) -> BNN:
    """Rebuild a :class:`BNN` saved by :func:`main` (``model.pt``), in eval mode."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = BNN(saved["arch"], tuple(saved["input_shape"]), sparsity=saved.get("sparsity", 0.0),
                threshold=saved.get("threshold", 0.5))
    model.load_state_dict(saved["state_dict"])
    return model.eval()


if __name__ == "__main__":
    raise SystemExit(main())
