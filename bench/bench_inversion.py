"""Inversion on an MNIST CNN trained on 1,000 images: hit rates, diversity, data-likeness, the cosine/ortho
ablation, torch vs ONNX, and a 3-channel 32×32 (CIFAR-10 subset) model.

    python bench/bench_inversion.py [--quick] [--seconds 120]

Prints tables and writes bench/results/inversion.json.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import likeness_scale, table, trained, write_json

from auditor.core.attack import RunContext
from auditor.models.loaders import load_model
from auditor.models.model import ModelSpec
from auditor.scoring import ssim_matrix
from auditor_inversion.attack import class_statistics
from auditor_inversion.engine import InversionSettings, build_generator, sample, train_generator


def run_inversion(model, settings: InversionSettings, seed: int = 0, n: int = 100):
    torch.manual_seed(seed)
    g = build_generator(model.num_classes, model.input_shape, settings)
    log = train_generator(model.module(), g, settings, RunContext(device=torch.device("cpu"), seed=seed, show_progress=False))
    labels = torch.arange(model.num_classes).repeat_interleave(n)
    images = sample(g, labels, settings, hot=True, seed=seed + 1)
    return images, labels, class_statistics(model, images, labels, model.num_classes), log


def data_likeness(images, labels, data) -> dict[str, float]:
    """Mean best SSIM to the class's members; the same for a blurry class average and for real unseen digits."""
    best = [ssim_matrix(images[labels == k][:20], data.members.of_class(k)).max(1).values.mean() for k in range(data.num_classes)]
    return {"best_ssim": float(torch.stack(best).mean()), **likeness_scale(data)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seconds", type=float, default=120.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    seconds = 20.0 if args.quick else args.seconds
    model, onnx_path, data = trained("mnist", "cnn", 1000)
    base = InversionSettings(train_seconds=seconds)
    rows, results = [], {}
    variants = {"default (cosine+ortho)": base, "no cosine": base.model_copy(update={"cosine": 0.0}),
                "no ortho": base.model_copy(update={"ortho": 0.0}), "neither": base.model_copy(update={"cosine": 0.0, "ortho": 0.0}),
                "default, dropout off when sampling": base.model_copy(update={"sample_dropout": False})}
    if args.quick:
        variants = dict(list(variants.items())[:2])
    for name, settings in variants.items():
        start = time.monotonic()
        images, labels, stats, log_ = run_inversion(model, settings)
        likeness = data_likeness(images, labels, data)
        row = {"variant": name, "steps": log_.steps, "seconds": round(time.monotonic() - start, 1),
               "hit_min": min(s["hit_rate"] for s in stats), "hit_mean": sum(s["hit_rate"] for s in stats) / 10,
               "diversity_ssim": sum(s["diversity_ssim"] for s in stats) / 10,
               "feature_cos": sum(s.get("feature_cosine", 0.0) for s in stats) / 10, **likeness}
        rows.append(row)
        results[name] = {"row": row, "per_class": stats, "samples": (images, labels)}
        logging.info("%s", row)
    # torch vs ONNX on the same model, seed and budget
    # the ONNX run gets exactly the torch run's number of steps, so the comparison isolates the model path
    onnx_model = load_model(ModelSpec(source=str(onnx_path)))
    torch_steps = results["default (cosine+ortho)"]["row"]["steps"]
    onnx_start = time.monotonic()
    torch_seconds = results["default (cosine+ortho)"]["row"]["seconds"]
    _, _, onnx_stats, onnx_log = run_inversion(onnx_model, base.model_copy(update={"steps": torch_steps, "train_seconds": 3 * torch_seconds}))
    onnx_seconds = time.monotonic() - onnx_start
    torch_stats = results["default (cosine+ortho)"]["per_class"]
    # the same images (from the torch-trained generator) classified through both model paths
    images0, labels0 = results["default (cosine+ortho)"]["samples"]
    same_images = class_statistics(onnx_model, images0, labels0, onnx_model.num_classes)
    parity = [{"class": k, "torch_hit": torch_stats[k]["hit_rate"], "onnx_hit_same_images": same_images[k]["hit_rate"],
               "same_images_diff_pp": 100 * abs(torch_stats[k]["hit_rate"] - same_images[k]["hit_rate"]),
               "onnx_hit_own_generator": onnx_stats[k]["hit_rate"],
               "own_generator_diff_pp": 100 * abs(torch_stats[k]["hit_rate"] - onnx_stats[k]["hit_rate"])} for k in range(10)]
    # a 3-channel 32×32 model
    cifar_rows = []
    try:
        cmodel, _, cdata = trained("cifar10", "cnn", 3000 if not args.quick else 1000, epochs=15 if not args.quick else 5)
        cimages, clabels, cstats, clog = run_inversion(cmodel, base)
        cifar_rows = [{"class": s["class"], "hit_rate": s["hit_rate"], "diversity_ssim": s["diversity_ssim"]} for s in cstats]
    except Exception as exc:  # noqa: BLE001 - the CIFAR subset may be absent
        logging.warning("CIFAR-10 run skipped: %s", exc)
    print("\nInversion ablation (MNIST CNN, 1,000 training images, %.0f s budget, seed 0)" % seconds)
    print(table(rows, ["variant", "steps", "seconds", "hit_min", "hit_mean", "diversity_ssim", "feature_cos", "best_ssim", "class_average_ssim", "unseen_real_ssim"]))
    print("\nTorch vs ONNX (same model, seed and %d steps; ONNX took %.0f s, torch %.0f s): hit rate per class"
          % (torch_steps, onnx_seconds, results["default (cosine+ortho)"]["row"]["seconds"]))
    print("(same images: the torch generator's samples classified through the ONNX path; own generator: a generator trained on the ONNX path)")
    print(table(parity, ["class", "torch_hit", "onnx_hit_same_images", "same_images_diff_pp", "onnx_hit_own_generator", "own_generator_diff_pp"]))
    if cifar_rows:
        print("\nCIFAR-10 subset CNN (3×32×32)")
        print(table(cifar_rows, ["class", "hit_rate", "diversity_ssim"]))
    out = write_json("inversion", {"seconds": seconds, "ablation": rows, "per_class": {k: v["per_class"] for k, v in results.items()},
                                   "torch_vs_onnx": parity, "onnx_steps": onnx_log.steps, "onnx_seconds": round(onnx_seconds, 1), "cifar10": cifar_rows})
    print(f"\nwrote {out}")
    from sections import write  # the docs sections rendered from the JSON just written

    write(['bench_inversion'])


if __name__ == "__main__":
    main()
