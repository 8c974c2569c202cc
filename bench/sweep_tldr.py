"""tldr settings side by side on one small MNIST model, with fixed step counts (so runs on any device compare).

    python bench/sweep_tldr.py [--arch cnn] [--size 100] [--phase1-steps 600] [--phase2-steps 400]
                               [--only base,grad0] [--workers 2] [--device cpu]

Every variant starts from the same trained model and seed; only the named settings change. Prints a
table (best-member SSIM, Hungarian-matched SSIM, member-reference gap with its CI, likely copies,
hit rate, diversity) and writes bench/results/sweep_tldr-<arch>-<size>-<steps>.json plus a grid PNG per variant.
This is how tldr's defaults were chosen; docs/tldr.md quotes the tables.

``--export-data F`` writes the members/reference tensors of the chosen dataset to F, and ``--data-file F``
reads them back, so the sweep can run on a machine without the dataset files.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, likeness_scale, table, trained, write_json

# Every variant is merged into BASE, the settings before this sweep (grad 2, no candidate selection, z unscaled),
# so the tables in docs/tldr.md stay reproducible whatever the current defaults are; "defaults" is the current config.
BASE: dict = {"grad": 2.0, "candidates": 1, "sample_latent_scale": 1.0}
VARIANTS: dict[str, dict] = {
    "base": {},
    "grad0": {"grad": 0.0},
    "grad10": {"grad": 10.0},
    "grad30": {"grad": 30.0},
    "no_sample_dropout": {"sample_dropout": False},
    "drop0.1_nosd": {"reconstruction_dropout": 0.1, "sample_dropout": False},
    "trunc0.5": {"sample_latent_scale": 0.5},
    "select4_grad": {"candidates": 4, "select_by": "grad"},
    "select4_robust": {"candidates": 4, "select_by": "robust"},
    "tv20_grad10": {"tv": 20.0, "grad": 10.0},
    "pert0.1": {"perturbation": 0.1},
    "cos0_ortho0": {"cosine": 0.0, "ortho": 0.0},
    "kl0": {"kl": 0.0, "kl_pert": 0.0},
    "lr3e-4": {"lr": 3e-4},
    "batch128": {"batch_size": 128},
    "combo": {"grad": 10.0, "candidates": 4, "select_by": "grad", "sample_latent_scale": 0.5},
    "sel16r": {"candidates": 16, "select_by": "robust"},
    "combo16r": {"grad": 10.0, "candidates": 16, "select_by": "robust", "sample_latent_scale": 0.5},
    "combo8g": {"grad": 10.0, "candidates": 8, "select_by": "grad", "sample_latent_scale": 0.5},
    "combo16r_nosd": {"grad": 10.0, "candidates": 16, "select_by": "robust", "sample_latent_scale": 0.5, "sample_dropout": False},
}


def load(args: argparse.Namespace):
    if args.data_file:
        from auditor.data.sets import AuditData, LabeledImages
        from auditor.lab import zoo
        from auditor.models.model import from_module
        blob = torch.load(args.data_file, weights_only=True)
        data = AuditData(LabeledImages(blob["members_x"], blob["members_y"], "members"),
                         LabeledImages(blob["reference_x"], blob["reference_y"], "reference"),
                         10, tuple(blob["class_names"]))
        net = zoo.build(args.arch, data.image_shape, 10)
        net.load_state_dict(torch.load(CACHE / f"{args.dataset}-{args.arch}-{args.size}-s0.pt", weights_only=True))
        net.eval()
        return from_module(net, num_classes=10, input_shape=data.image_shape, mean=tuple(blob["mean"]), std=tuple(blob["std"]),
                           source="sweep"), data
    model, _, data = trained(args.dataset, args.arch, args.size)
    return model, data


def run_variant(job: tuple[str, dict, argparse.Namespace]) -> dict:
    name, overrides, args = job
    torch.set_num_threads(args.threads)
    from auditor.core.attack import RunContext
    from auditor.report.images import make_grid, png_base64
    from auditor.scoring import ScoringConfig, score_reconstructions
    from auditor_inversion.attack import class_statistics
    from auditor_tldr.attack import TldrConfig, TrainingLikeDataReconstruction

    model, data = load(args)
    device = torch.device(args.device)
    model.to(device)
    settings = {} if name == "defaults" else {**BASE, **overrides}
    cfg = TldrConfig(inversion_steps=args.phase1_steps, reconstruction_steps=args.phase2_steps, inversion_seconds=1e6,
                     reconstruction_seconds=1e6, samples_per_class=args.per_class, **settings)
    start = time.monotonic()
    out = TrainingLikeDataReconstruction(cfg).run(model, data, RunContext(device=device, seed=args.seed, show_progress=False))
    seconds = time.monotonic() - start
    model.to("cpu")
    images, labels = out.reconstructions.cpu(), out.labels.cpu()
    scores = score_reconstructions(images, labels, data, config=ScoringConfig(replicates=500), seed=args.seed)
    stats = class_statistics(model, images, labels, 10)
    order = torch.argsort(labels, stable=True)
    grid = make_grid(images[order], ncol=args.per_class, scale=2)
    (args.out / f"{name}.png").write_bytes(__import__("base64").b64decode(png_base64(grid)))
    return {"variant": name, "settings": overrides, "seconds": round(seconds, 1), "best_ssim": scores.best_ssim_mean,
            "matched_ssim": scores.matched_ssim_mean, "gap": scores.gap, "gap_ci": f"[{scores.gap_ci_low:+.3f}, {scores.gap_ci_high:+.3f}]",
            "gap_ci_low": scores.gap_ci_low, "likely_copies": scores.likely_copy_share,
            "hit_min": min(s["hit_rate"] for s in stats), "diversity_ssim": sum(s["diversity_ssim"] for s in stats) / len(stats)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--arch", default="cnn")
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--phase1-steps", type=int, default=600)
    p.add_argument("--phase2-steps", type=int, default=400)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    p.add_argument("--set", action="append", default=[], help="extra variant NAME:key=value,key=value (values parsed as JSON)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-file", type=Path)
    p.add_argument("--export-data", type=Path)
    p.add_argument("--out", type=Path, default=Path("bench/results/sweep_tldr"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.export_data:
        model, data = load(args)
        torch.save({"members_x": data.members.images, "members_y": data.members.labels, "reference_x": data.reference.images,
                    "reference_y": data.reference.labels, "class_names": list(data.class_names),
                    "mean": model.preprocess.mean.flatten().tolist(), "std": model.preprocess.std.flatten().tolist()}, args.export_data)
        print(f"wrote {args.export_data}")
        return
    import json

    variants = {**VARIANTS, "defaults": {}}
    for spec in args.set:
        name, _, pairs = spec.partition(":")
        variants[name] = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in pairs.split(",") if kv)}
    names = [n for n in args.only.split(",") if n] or list(variants)
    _, data = load(args)  # trains and caches the model once, before any worker starts
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, variants[n], args) for n in names]
    if args.workers > 1:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            rows = pool.map(run_variant, jobs)
    else:
        rows = [run_variant(j) for j in jobs]
    print(f"\ntldr variants ({args.dataset} {args.arch}, {args.size} training images, {args.phase1_steps}+{args.phase2_steps} steps, "
          f"seed {args.seed}, {args.device})")
    print(table(rows, ["variant", "seconds", "best_ssim", "matched_ssim", "gap", "gap_ci", "likely_copies", "hit_min", "diversity_ssim"]))
    baselines = likeness_scale(data)
    print("for scale, best SSIM to the members of: the class average %.3f, a real unseen digit %.3f"
          % (baselines["class_average_ssim"], baselines["unseen_real_ssim"]))
    out = write_json(f"sweep_tldr-{args.arch}-{args.size}-{args.phase1_steps}+{args.phase2_steps}", {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                                             "baselines": baselines})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
