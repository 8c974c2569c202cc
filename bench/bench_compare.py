"""Reconstruction quality side by side: ART's MIFace vs auditor's ``inversion`` and ``tldr``.

Same MNIST CNN (trained by this project on 100 and on 1,000 class-balanced images), same seed, same
wall-clock budgets, same scorer (the core's SSIM, Hungarian matching, calibrated likely copies,
member-minus-reference gap). ART is installed by the ``bench`` extra only.

    python bench/bench_compare.py [--quick] [--budgets 60,300] [--sizes 100,1000]
"""
from __future__ import annotations

import argparse
import base64
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, trained, write_json

from auditor.core.attack import RunContext
from auditor.report.images import make_grid, png_base64
from auditor.scoring import ScoringConfig, score_reconstructions

PER_CLASS = 10


def run_miface(model, seconds: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """MIFace (Fredrikson et al.) through ART, resumed in chunks of 10 iterations until the budget is spent."""
    from art.attacks.inference.model_inversion import MIFace
    from art.estimators.classification import PyTorchClassifier

    net = nn.Sequential(model.module(), nn.Softmax(dim=1))  # pixels -> probabilities (MIFace's cost is 1 - p)
    clf = PyTorchClassifier(model=net, loss=nn.CrossEntropyLoss(), input_shape=model.input_shape, nb_classes=10,
                            clip_values=(0.0, 1.0), device_type="cpu")
    attack = MIFace(clf, max_iter=10, window_length=100, threshold=0.99, learning_rate=0.1, batch_size=100, verbose=False)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), PER_CLASS)
    x = np.clip(0.5 + 0.05 * rng.standard_normal((len(labels), *model.input_shape)), 0, 1).astype(np.float32)
    start, chunks = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        x = attack.infer(x, y=labels)
        chunks += 1  # 10 iterations per chunk
    return torch.from_numpy(x), torch.from_numpy(labels), {"iterations": 10 * chunks}


def run_plugin(name: str, model, seconds: float, seed: int, data) -> tuple[torch.Tensor, torch.Tensor, dict]:
    ctx = RunContext(device=torch.device("cpu"), seed=seed, show_progress=False)
    if name == "inversion":
        from auditor_inversion.attack import InversionConfig, NetworkInversion

        attack = NetworkInversion(InversionConfig(train_seconds=seconds, samples_per_class=PER_CLASS))
    else:
        from auditor_tldr.attack import TldrConfig, TrainingLikeDataReconstruction

        attack = TrainingLikeDataReconstruction(TldrConfig(inversion_seconds=0.4 * seconds, reconstruction_seconds=0.6 * seconds,
                                                           samples_per_class=PER_CLASS))
    out = attack.run(model, data, ctx)
    return out.reconstructions, out.labels, {k: v for k, v in out.metrics.items() if "steps" in k}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--budgets", default="60,300")
    p.add_argument("--sizes", default="100,1000")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    budgets = [20.0] if args.quick else [float(b) for b in args.budgets.split(",")]
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows, grids = [], {}
    for size in sizes:
        model, _, data = trained("mnist", "cnn", size, seed=args.seed)
        for seconds in budgets:
            for method in ("miface", "inversion", "tldr"):
                torch.manual_seed(args.seed)
                start = time.monotonic()
                if method == "miface":
                    images, labels, extra = run_miface(model, seconds, args.seed)
                else:
                    images, labels, extra = run_plugin(method, model, seconds, args.seed, data)
                elapsed = time.monotonic() - start
                s = score_reconstructions(images, labels, data, config=ScoringConfig(replicates=500), seed=args.seed)
                hit = float((model.logits(images).argmax(1) == labels).float().mean())
                row = {"train_size": size, "budget_s": seconds, "method": method, "seconds": round(elapsed, 1),
                       "matched_ssim": s.matched_ssim_mean, "best_ssim": s.best_ssim_mean, "gap": s.gap,
                       "gap_ci": f"{s.gap_ci_low:+.3f}…{s.gap_ci_high:+.3f}", "gap_ci_low": s.gap_ci_low,
                       "likely_copies": s.likely_copy_share, "hit_rate": hit, "lpips": s.lpips_best_mean, **extra}
                rows.append(row)
                logging.info("%s", row)
                order = torch.argsort(labels, stable=True)
                grids[f"{size}-{int(seconds)}-{method}"] = png_base64(make_grid(images[order], ncol=PER_CLASS, scale=2))
    print("\nReconstruction quality at equal wall-clock budgets (MNIST CNN, seed %d)" % args.seed)
    print(table(rows, ["train_size", "budget_s", "method", "seconds", "matched_ssim", "best_ssim", "gap", "gap_ci", "likely_copies", "hit_rate"]))
    out = write_json("compare", {"rows": rows, "grids": grids, "per_class": PER_CLASS})
    images_dir = Path(__file__).resolve().parent.parent / "docs" / "img"
    images_dir.mkdir(parents=True, exist_ok=True)
    for key, b64 in grids.items():
        (images_dir / f"compare-{key}.png").write_bytes(base64.b64decode(b64))
    print(f"\nwrote {out}")
    from sections import write  # the docs sections rendered from the JSON just written

    write(['bench_compare', 'bench_headline'])


if __name__ == "__main__":
    main()
