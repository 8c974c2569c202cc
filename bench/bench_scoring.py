"""Benchmark auditor.scoring.reconstructions on MNIST: SSIM agreement/speed vs scikit-image and nearest-member search.

Usage: ``python bench/bench_scoring.py [--quick] [--out bench/results/scoring.json]``

1. SSIM of pairs of MNIST images (test image i vs train image i): max |ours - skimage| and
   the speed ratio of the batched torch SSIM over a scikit-image loop.
2. Exact nearest-member SSIM of 100 MNIST test images per class ("reconstructions") against
   the same-class members among all 60,000 training images: wall time, plus a spot check of
   a few reconstructions against a scikit-image loop over their whole class.
3. (full run only) ``score_reconstructions`` end to end with 200 reference images per class.

Wall and process CPU time are both reported: on a machine shared with other busy processes,
torch's OpenMP threads wait on each other and wall time balloons (``--threads 1`` helps).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from skimage.metrics import structural_similarity

from auditor.core.paths import datasets_dir
from auditor.data.sets import AuditData, LabeledImages, load_images
from auditor.scoring import ScoringConfig, score_reconstructions, ssim, ssim_matrix


def _skimage(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(structural_similarity(a[0].double().numpy(), b[0].double().numpy(), data_range=1.0,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def bench_pairs(test: LabeledImages, train: LabeledImages, n: int) -> dict[str, float]:
    a, b = test.images[:n], train.images[:n]
    start = time.perf_counter()
    ref = np.array([_skimage(a[i], b[i]) for i in range(n)])
    t_ref = time.perf_counter() - start
    ssim(a[:8], b[:8])  # warm-up
    start = time.perf_counter()
    ours = ssim(a, b).numpy()
    t_ours = time.perf_counter() - start
    return {"pairs": n, "max_abs_diff": float(np.abs(ours - ref).max()), "skimage_s": t_ref,
            "torch_s": t_ours, "speedup": t_ref / max(t_ours, 1e-9)}


def bench_nearest(test: LabeledImages, train: LabeledImages, per_class: int, spot: int) -> dict[str, float]:
    recon_idx = np.concatenate([np.flatnonzero(test.labels.numpy() == c)[:per_class] for c in range(10)])
    recon, labels = test.images[recon_idx], test.labels[recon_idx]
    ssim_matrix(recon[:4], train.images[:64])  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    nearest: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    pairs = 0
    for c in range(10):
        members = np.flatnonzero(train.labels.numpy() == c)
        sim = ssim_matrix(recon[labels == c], train.images[members])
        best = sim.max(dim=1)
        nearest[c] = (members, best.indices.numpy(), best.values.numpy())
        pairs += sim.numel()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    worst, agree = 0.0, 0
    for c in range(spot):  # first reconstruction of the first `spot` classes, whole class by skimage
        members, idx, val = nearest[c]
        row = np.array([_skimage(recon[labels == c][0], train.images[j]) for j in members])
        worst = max(worst, abs(float(row.max()) - float(val[0])))
        agree += int(members[int(row.argmax())] == members[int(idx[0])])
    return {"reconstructions": len(recon_idx), "pairs": pairs, "wall_s": wall, "cpu_s": cpu, "pairs_per_s": pairs / wall,
            "spot_checked": spot, "spot_argmax_agree": agree, "spot_max_abs_diff": worst}


def bench_end_to_end(test: LabeledImages, train: LabeledImages, per_class: int, ref_per_class: int) -> dict[str, float]:
    lab = test.labels.numpy()
    recon_idx = np.concatenate([np.flatnonzero(lab == c)[:per_class] for c in range(10)])
    ref_idx = np.concatenate([np.flatnonzero(lab == c)[per_class:per_class + ref_per_class] for c in range(10)])
    data = AuditData(train, test.subset(ref_idx), 10, tuple(str(i) for i in range(10)))
    start, cpu = time.perf_counter(), time.process_time()
    scores = score_reconstructions(test.images[recon_idx], test.labels[recon_idx], data, config=ScoringConfig(), seed=0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"reconstructions": len(recon_idx), "reference_per_class": ref_per_class, "wall_s": wall, "cpu_s": cpu,
            "best_ssim_mean": scores.best_ssim_mean, "gap": scores.gap, "gap_ci_low": scores.gap_ci_low,
            "gap_ci_high": scores.gap_ci_high, "likely_copy_share": scores.likely_copy_share}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs and reconstructions (smoke run)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/scoring.json"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = datasets_dir()
    if root is None:
        print("no datasets folder with mnist/ found: set AUDITOR_DATASETS or put ../shared/datasets beside the checkout",
              file=sys.stderr)
        return 2
    train = load_images(str(root / "mnist") + ":train")
    test = load_images(str(root / "mnist") + ":test")
    result: dict[str, object] = {
        "quick": args.quick, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "loadavg_before": os.getloadavg()[0],
    }
    cpu0 = time.process_time()
    sections = {
        "ssim_pairs": lambda: bench_pairs(test, train, 200 if args.quick else 1000),
        "nearest_member": lambda: bench_nearest(test, train, 10 if args.quick else 100, 1 if args.quick else 3),
    }
    if not args.quick:
        sections["score_reconstructions"] = lambda: bench_end_to_end(test, train, 100, 200)
    for name, run in sections.items():
        result[name] = run()
    result["loadavg_after"] = os.getloadavg()[0]
    result["process_cpu_s"] = time.process_time() - cpu0
    nearest = result["nearest_member"]
    rows = [("SSIM max |torch - skimage|", f"{result['ssim_pairs']['max_abs_diff']:.2e}"),
            ("SSIM speed-up over skimage loop", f"{result['ssim_pairs']['speedup']:.0f}x"),
            ("nearest-member search", f"{nearest['wall_s']:.1f} s wall, {nearest['cpu_s']:.1f} s CPU, "
             f"{nearest['reconstructions']} recon, {nearest['pairs']:,} pairs"),
            ("spot check vs skimage", f"argmax agree {result['nearest_member']['spot_argmax_agree']}/"
             f"{result['nearest_member']['spot_checked']}, max diff {result['nearest_member']['spot_max_abs_diff']:.1e}")]
    if "score_reconstructions" in result:
        e2e = result["score_reconstructions"]
        rows.append(("score_reconstructions end to end", f"{e2e['wall_s']:.1f} s wall, {e2e['cpu_s']:.1f} s CPU"))
    rows.append(("load average before / after", f"{result['loadavg_before']:.2f} / {result['loadavg_after']:.2f} "
                 "(other processes slow torch's OpenMP threads badly)"))
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    from sections import write  # the docs sections rendered from the JSON just written

    write(['bench_scoring', 'bench_headline'])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
