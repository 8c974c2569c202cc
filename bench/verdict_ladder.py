"""The ladder of bench_verdict.py: models whose leakage is known by construction, with their recipes and seeds.

Every model is trained by the project's own code and cached under bench/cache/ (gitignored):

* ``mlp-N`` / ``cnn-N``: the zoo's MLP and CNN (auditor/zoo.py: BatchNorm, dropout, Adam, weight decay 1e-5) on
  ``N`` class-balanced MNIST training images (``balanced_subset(seed 0)``), trained by bench/common.py's
  ``trained`` (40 epochs up to 1,000 images, then ``max(5, 40,000 // N)``); ``mlp-60000`` is the whole training
  set with the same rule (5 epochs). Leakage is expected to fall as ``N`` grows. ``mlp-1000`` is also the
  canary model's control: the same 1,000 images and optimiser steps, without the canaries.
* ``fashion-mlp-N``: the same MLP recipe on ``N`` class-balanced Fashion-MNIST training images (the issue's
  repeat on a second dataset; MLP only, for time).
* ``kkt-mlp-100`` / ``kkt-mlp-100-wd``: bench/kkt_targets.py's paper recipe (Haim et al. 2022) on 100 images,
  without and with weight decay 5e-4. The first is a known leak (its weights are a combination of its
  training points' gradients).
* ``dp-tinycnn-5000``: bench/bench_membership.py's DP-SGD control (Opacus, GroupNorm tinycnn, ε = 8 at
  δ = 1e-5, 5,000 images): a safe control.
* ``canary-mlp``: the zoo's MLP on 1,000 ordinary images plus ``CANARIES`` distinctive ones, each repeated
  ``REPEATS`` times: a known leak of those canaries. A canary is a Fashion-MNIST training image labelled as a
  digit (class k's first Fashion-MNIST image of class k): nothing in the reference set resembles it, so a
  reconstruction that matches it can only come from the weights. (An earlier design used, per class, the
  unused MNIST digit with the most ink; those are ordinary digits to the model, with ordinary margins, and
  no attack singled them out.)

Members given to the audit are each model's exact training set (the canary model's without its repeats). The
reference (non-member) set is ``REFERENCE_SIZE`` class-balanced MNIST *training* images that the model did not
train on (compared by pixels; seed 0), so that members and non-members come from one distribution: MNIST's
test set was written by other people, and against it the membership AUC of every model audited was higher by
0.004-0.017 (bench/bench_reference_shift.py; with one torch thread that also lifted mlp-10000 to MEDIUM, with
two it did not: a level that close to a boundary moves with the reference models' training noise). ``mlp-60000``
trains on every training image and keeps the MNIST test set; its entry says so (``reference_source``).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, trained

from auditor.data.sets import AuditData, LabeledImages, balanced_subset, load_images
from auditor.lab import zoo
from auditor.lab.presets import preset
from auditor.models.model import from_module

log = logging.getLogger("bench.verdict")
CANARIES, REPEATS, CANARY_BASE = 10, 100, 1000


@dataclass(frozen=True)
class Row:
    name: str
    arch: str          # mlp | cnn | kkt-mlp | tinycnn-dp
    n: int             # distinct training images
    kind: str          # ladder | known_leak | control
    recipe: str
    dataset: str = "mnist"   # a preset of auditor.lab.presets


def _ladder(arch: str, sizes: tuple[int, ...], dataset: str = "mnist") -> list[Row]:
    prefix, what = ("", "MNIST") if dataset == "mnist" else (f"{dataset.split('-')[0]}-", "Fashion-MNIST")
    return [Row(f"{prefix}{arch}-{n}", arch, n, "ladder", f"zoo {arch}, {n:,} balanced {what} images, bench/common.py trained()", dataset)
            for n in sizes]


FULL = [*_ladder("mlp", (50, 100, 500, 1000, 2000, 10000, 60000)), *_ladder("cnn", (50, 100, 500, 2000, 10000)),
        Row("kkt-mlp-100", "kkt-mlp", 100, "known_leak", "bench/kkt_targets.py paper recipe (mnist-mlp-100)"),
        Row("kkt-mlp-100-wd", "kkt-mlp", 100, "ladder_wd", "bench/kkt_targets.py paper recipe with weight decay 5e-4 (mnist-mlp-100-wd)"),
        Row("dp-tinycnn-5000", "tinycnn-dp", 5000, "control", "bench/bench_membership.py dp_model(): Opacus DP-SGD, ε = 8, δ = 1e-5"),
        Row("canary-mlp", "mlp", CANARY_BASE + CANARIES, "known_leak",
            f"zoo mlp, {CANARY_BASE:,} images + {CANARIES} Fashion-MNIST canaries labelled as digits x {REPEATS} repeats, 20 epochs"),
        *_ladder("mlp", (50, 100, 500, 2000, 10000), "fashion-mnist")]
QUICK = [r for r in FULL if r.name in ("mlp-50", "mlp-500", "mlp-10000", "kkt-mlp-100", "canary-mlp")]


REFERENCE_SIZE = 10_000
LADDER_VERSION = 2   # 2: reference set from unused training images, membership with reference models


def reference_set(members: LabeledImages, dataset: str = "mnist") -> tuple[LabeledImages, str]:
    """``REFERENCE_SIZE`` class-balanced training images of ``dataset`` that are not members (by pixels), and where they
    came from; its test set when fewer than that are left."""
    ds = preset(dataset)
    train = load_images(ds.train)
    used = {image.numpy().tobytes() for image in members.images}
    free = np.array([i for i, image in enumerate(train.images) if image.numpy().tobytes() not in used])
    if len(free) < REFERENCE_SIZE:
        return load_images(ds.test), f"{dataset}-test ({len(free):,} unused training images, fewer than {REFERENCE_SIZE:,})"
    pick = free[balanced_subset(train.labels.numpy()[free], REFERENCE_SIZE, 0)]
    return train.subset(torch.from_numpy(np.sort(pick))), f"{dataset}-train-unused ({len(free):,} free, {REFERENCE_SIZE:,} drawn, seed 0)"


def _project(row: Row):
    ds = preset(row.dataset)
    if row.n < 60000:
        model, _, data = trained(row.dataset, row.arch, row.n)
        return model, data.members, ds
    train = load_images(ds.train)
    path = CACHE / f"{row.dataset}-{row.arch}-{row.n}-s0.pt"
    net = zoo.build(row.arch, train.image_shape, 10)
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
    else:
        zoo.train(net, train.images, train.labels, mean=ds.mean, std=ds.std, epochs=max(5, 40_000 // row.n), seed=0)
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    model = from_module(net.eval(), num_classes=10, input_shape=train.image_shape, mean=ds.mean, std=ds.std, source=f"bench:{path.stem}")
    return model, train, ds


def canary_set() -> tuple[LabeledImages, np.ndarray]:
    """``CANARIES`` Fashion-MNIST training images, the j-th one of class j % 10 (its (j // 10)-th), labelled as digit j % 10."""
    fashion = load_images(preset("fashion-mnist").train)
    labels = fashion.labels.numpy()
    picks = np.array([int(np.flatnonzero(labels == j % 10)[j // 10]) for j in range(CANARIES)])
    images = fashion.images[torch.from_numpy(picks)]
    return LabeledImages(images, torch.arange(CANARIES) % 10, f"fashion-mnist:train{picks.tolist()}"), picks


def _canary(row: Row):
    ds = preset("mnist")
    train = load_images(ds.train)
    base = train.subset(balanced_subset(train.labels.numpy(), CANARY_BASE, 0))
    canaries, picks = canary_set()
    members = LabeledImages(torch.cat([base.images, canaries.images]), torch.cat([base.labels, canaries.labels]), "mnist+canaries")
    repeat = torch.arange(CANARIES).repeat(REPEATS)
    fit = LabeledImages(torch.cat([base.images, canaries.images[repeat]]), torch.cat([base.labels, canaries.labels[repeat]]), "fit")
    path = CACHE / f"verdict-canary-mlp-{CANARY_BASE}+fashion{CANARIES}x{REPEATS}-s0.pt"
    net = zoo.build("mlp", train.image_shape, 10)
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
    else:
        zoo.train(net, fit.images, fit.labels, mean=ds.mean, std=ds.std, epochs=20, seed=0)
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    model = from_module(net.eval(), num_classes=10, input_shape=train.image_shape, mean=ds.mean, std=ds.std, source=f"bench:{path.stem}")
    return model, members, ds, {"canary_fashion_indices": picks.tolist(), "canary_repeats": REPEATS,
                                "canary_members": list(range(len(base), len(members)))}


def build(row: Row) -> tuple[object, AuditData, dict]:
    """The trained classifier, its audit data (exact training set, unused training images) and training facts."""
    sidecar = CACHE / f"verdict-{row.name}.json"
    known = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    start = time.monotonic()
    extra: dict = {}
    if row.arch == "kkt-mlp":
        from kkt_targets import ROWS, target

        recipe = next(r for r in ROWS if r.name == ("mnist-mlp-100-wd" if row.name.endswith("-wd") else "mnist-mlp-100"))
        model, kdata, facts = target(recipe, CACHE)
        members, ds = kdata.members, preset("mnist")
        extra = {k: facts[k] for k in ("train_loss", "train_steps", "train_seconds") if k in facts}
    elif row.arch == "tinycnn-dp":
        from bench_membership import dp_model

        model, members, info = dp_model()
        ds = preset("mnist")
        extra = {"epsilon": info["epsilon"], "delta": info["delta"], "noise_multiplier": info["noise_multiplier"],
                 "train_seconds": round(info["train_s"], 1)}
    elif row.name.startswith("canary"):
        model, members, ds, extra = _canary(row)
    else:
        model, members, ds = _project(row)
    elapsed = round(time.monotonic() - start, 1)
    if "train_seconds" not in extra:
        extra["train_seconds"] = known.get("train_seconds", elapsed if elapsed > 15 else None)
    if not sidecar.exists() and extra["train_seconds"] is not None:
        CACHE.mkdir(parents=True, exist_ok=True)
        sidecar.write_text(json.dumps({"train_seconds": extra["train_seconds"]}))
    reference, source = reference_set(members, row.dataset)
    extra["reference_source"] = source
    data = AuditData(members, reference, 10, ds.class_names)
    test = load_images(ds.test)
    facts = {**extra, "train_accuracy": model.accuracy(members.images, members.labels),
             "test_accuracy": model.accuracy(test.images, test.labels),
             "reference_accuracy": model.accuracy(reference.images, reference.labels)}
    return model, data, facts
