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

from auditor.data.sets import load_images
from auditor.lab import zoo
from auditor.lab.presets import PRESETS, preset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", choices=sorted(PRESETS))
    p.add_argument("--arch", default="cnn", choices=["mlp", "cnn", "tinycnn", "vit", "vit_nopos"])
    p.add_argument("--n", type=int, default=1000, help="class-balanced training subset size")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("models"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ds = preset(args.dataset)
    members = load_images(ds.train, limit=args.n, subset_seed=args.seed)
    test = load_images(ds.test)
    mean, std = ds.mean, ds.std
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
