"""The copy rule's null: held-out real MNIST test digits scored as if they were reconstructions.

Usage: ``python bench/bench_copy_null.py [--quick] [--seeds 5]``

For each member-set size and each comparison (``ssim``, ``affine``), and each seed (a different
reference subset and calibration/null split): members are class-balanced MNIST training digits, the
reference set is MNIST test digits, and the "reconstructions" are other MNIST test digits, disjoint
from the reference. None of them is a member, so every likely copy is a false positive. The table
shows their likely-copy rate against alpha, the binomial p-value, the null-centred gap and whether its
interval covers zero, the highest finding, and the time. Writes ``bench/results/copy_null.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from scipy.stats import binom

from auditor.core.results import AttackResult
from auditor.core.severity import reconstruction_findings
from auditor.data.sets import AuditData, balanced_subset, load_images
from auditor.lab.presets import preset
from auditor.scoring import ScoringConfig, score_reconstructions
from bench.common import table, write_json


def run_one(train, test, n_members: int, n_fresh: int, n_reference: int, comparison: str, seed: int) -> dict:
    members = train.subset(balanced_subset(train.labels.numpy(), n_members, seed))
    order = np.random.default_rng([seed, 99]).permutation(len(test))
    fresh_idx = np.concatenate([order[test.labels.numpy()[order] == c][:n_fresh // 10] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(test)), fresh_idx)
    reference = test.subset(rest[balanced_subset(test.labels.numpy()[rest], n_reference, seed)])
    data = AuditData(members, reference, 10, tuple(str(i) for i in range(10)))
    fresh = test.subset(fresh_idx)
    cfg = ScoringConfig(comparison=comparison, replicates=200)
    start = time.perf_counter()
    s = score_reconstructions(fresh.images, fresh.labels, data, config=cfg, seed=seed)
    wall = time.perf_counter() - start
    findings = reconstruction_findings("null", AttackResult(attack="null", status="completed", scores=s))
    top = max(findings, key=lambda f: f.severity.rank)
    return {"members": n_members, "comparison": comparison, "seed": seed, "fresh": len(fresh_idx), "alpha": s.alpha,
            "fresh_copies": s.likely_copies, "fresh_copy_rate": s.likely_copy_share, "held_out_null_rate": s.null_copy_rate,
            "null_count": s.null_count, "p_value": s.copy_p_value, "gap": s.gap, "gap_ci_low": s.gap_ci_low,
            "gap_ci_high": s.gap_ci_high, "raw_gap": s.raw_gap, "null_gap": s.null_gap,
            "tpr_at_1pct": s.copy_tpr_at_1pct_null_fpr, "top_finding": top.severity.value, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ds = preset("mnist")
    train, test = load_images(ds.train), load_images(ds.test)
    sizes = [100] if args.quick else [100, 2000]
    seeds = range(2 if args.quick else args.seeds)
    rows = [run_one(train, test, n, 1000, 3000, comp, seed) for n in sizes for comp in ("ssim", "affine") for seed in seeds]
    summary = []
    for n in sizes:
        for comp in ("ssim", "affine"):
            mine = [r for r in rows if r["members"] == n and r["comparison"] == comp]
            copies, total = sum(r["fresh_copies"] for r in mine), sum(r["fresh"] for r in mine)
            alpha = mine[0]["alpha"]
            summary.append({
                "members": n, "comparison": comp, "runs": len(mine), "fresh images": total,
                "fresh copy rate": copies / total, "alpha": alpha,
                "binomial 99% upper at alpha": binom.ppf(0.99, total, alpha) / total,
                "held-out null rate": float(np.mean([r["held_out_null_rate"] for r in mine])),
                "gap CI covers 0": sum(r["gap_ci_low"] <= 0 <= r["gap_ci_high"] for r in mine),
                "mean |gap|": float(np.mean([abs(r["gap"]) for r in mine])),
                "mean raw gap": float(np.mean([r["raw_gap"] for r in mine])),
                "findings > info": sum(r["top_finding"] != "info" for r in mine),
                "wall s / run": float(np.mean([r["wall_s"] for r in mine])),
            })
    print(table(summary, list(summary[0])))
    out = write_json("copy_null", {"quick": args.quick, "rows": rows, "summary": summary})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
