"""Train a small classifier on a class-balanced subset of a dataset on disk and save it.

Writes ``<out>/<name>.onnx`` (normalisation baked in, input pixels in [0, 1]) and
``<out>/<name>.pt`` (a state dict; audit it with ``factory:auditor.zoo_factories:<arch>_<dataset>``
is not needed: the ONNX file is the artefact most users publish).

Example::

    python examples/train_classifier.py --dataset mnist --arch cnn --n 1000 --out models/
    audit run models/mnist-cnn-1000.onnx --members ../shared/datasets/mnist:train --members-limit 1000 \
        --reference ../shared/datasets/mnist:test --reference-limit 1000 --plugins inversion
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from auditor import zoo
from auditor.data import load_images
from auditor.paths import datasets_dir

STATS = {"mnist": ((0.1307,), (0.3081,)), "fashion-mnist": ((0.2860,), (0.3530,)), "digits": ((0.3,), (0.35,))}


def dataset_source(dataset: str, split: str) -> str:
    if dataset == "digits":
        return f"digits:{split}"
    root = datasets_dir()
    if root is None:
        raise SystemExit("datasets not found: set AUDITOR_DATASETS or place ../shared/datasets beside the checkout")
    return f"{root / dataset}:{split}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", choices=sorted(STATS))
    p.add_argument("--arch", default="cnn", choices=["mlp", "cnn", "tinycnn", "vit", "vit_nopos"])
    p.add_argument("--n", type=int, default=1000, help="class-balanced training subset size")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("models"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    members = load_images(dataset_source(args.dataset, "train"), limit=args.n, subset_seed=args.seed)
    test = load_images(dataset_source(args.dataset, "test"))
    mean, std = STATS[args.dataset]
    net = zoo.build(args.arch, members.image_shape, 10)
    zoo.train(net, members.images, members.labels, mean=mean, std=std, epochs=args.epochs, seed=args.seed)
    name = f"{args.dataset}-{args.arch}-{args.n}"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out / f"{name}.pt")
    zoo.export_onnx(net, members.image_shape, args.out / f"{name}.onnx", mean=mean, std=std)
    info = {"train_accuracy": zoo.accuracy(net, members.images, members.labels, mean, std),
            "test_accuracy": zoo.accuracy(net, test.images, test.labels, mean, std), "n": args.n, "arch": args.arch,
            "dataset": args.dataset, "subset_seed": args.seed, "mean": mean, "std": std}
    (args.out / f"{name}.json").write_text(json.dumps(info, indent=2))
    logging.info("%s: %s", name, info)


if __name__ == "__main__":
    main()
