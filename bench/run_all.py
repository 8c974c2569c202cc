"""Run every benchmark in one go, then rewrite every generated section of docs/ from bench/results/*.json.

    python bench/run_all.py              # defaults: under 90 minutes on 2 cores
    python bench/run_all.py --quick      # under 10 minutes
    python bench/run_all.py --docs-only  # run nothing: rewrite every generated docs section from the JSON as it is

Each benchmark runs in its own process, prints its table and writes bench/results/<name>.json; this
runner then renders every section registered in bench/sections.py (section name -> JSON, render
function, documents) between its ``<!-- NAME:start -->`` / ``<!-- NAME:end -->`` markers, and draws the
plots from the JSON. Nothing in docs/ is copied from a bench's printed output.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
BENCHES = [  # (script, title, extra args for default mode)
    ("bench_scoring.py", "1. Scoring: SSIM against scikit-image, nearest-member search", []),
    ("bench_compare.py", "2. Reconstruction quality against ART's MIFace", []),
    ("bench_bnn_sat.py", "3. bnn_sat: formula size and time per query", ["--limit", "4"]),  # 4 s per query keeps the total under 90 min
    ("bench_e2e.py", "4. End to end: audit run per plugin, ONNX vs torch", []),
    ("bench_inversion.py", "Inversion: hit rates, diversity and the cosine/orthogonality ablation", []),
    ("bench_kkt.py", "kkt: training images reconstructed from the weights", ["--rows", "mnist-mlp-100,control-mnist-mlp-2000", "--budget", "1200", "--no-docs"]),
    ("bench_membership.py", "6. Membership inference: the `membership` plugin vs auditml's threshold attack", []),
    ("bench_batch.py", "7. Batch audits: sequential vs Ray workers", ["--docs"]),  # --docs: also the estimate in docs/scale.md
    ("bench_preprocessing.py", "Published-file conventions: [0, 1]/logits vs 0-255/softmax", []),
    # resumable: each run continues the ladder where the last stopped (the full ladder takes several runs)
    ("bench_verdict.py", "8. Verdict ladder: models with known leakage, every builtin attack", ["--no-docs"]),
    # the full shortcut bench (10,000 images, 5 epochs, 8 models) takes longer than the 90-minute budget allows
    ("bench_shortcut.py", "shortcut: planted vs clean models per architecture", ["--quick"]),
]


def run(script: str, quick: bool, extra: list[str]) -> tuple[str, float, int]:
    cmd = [sys.executable, str(HERE / script)] + (["--quick"] if quick else extra)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    return proc.stdout + (f"\n[stderr tail]\n{proc.stderr[-1500:]}" if proc.returncode else ""), time.monotonic() - start, proc.returncode


def plot_compare(path: Path) -> str | None:
    data = json.loads(path.read_text())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    keys = sorted({(r["train_size"], r["budget_s"]) for r in rows})
    methods = ["miface", "inversion", "tldr"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), dpi=110)
    for ax, metric, label in ((axes[0], "best_ssim", "mean best SSIM to members"), (axes[1], "gap", "member − non-member gap")):
        for i, m in enumerate(methods):
            vals = [next((r[metric] or 0 for r in rows if (r["train_size"], r["budget_s"]) == k and r["method"] == m), 0) for k in keys]
            ax.bar([j + (i - 1) * 0.27 for j in range(len(keys))], vals, 0.27, label=m)
        ax.set_xticks(range(len(keys)), [f"n={k[0]}, {int(k[1])} s" for k in keys])
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = DOCS / "img" / "compare.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return "img/compare.png"


def plot_e2e(path: Path) -> str | None:
    data = json.loads(path.read_text())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = data.get("onnx_vs_torch") or []
    if not speed:
        return None
    labels = [f"{r['model']}\n{r['plugin']}" for r in speed]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels)), 3.4), dpi=110)
    ax.bar([i - 0.2 for i in range(len(speed))], [r["onnx_s"] for r in speed], 0.4, label="ONNX (onnx2pytorch)")
    ax.bar([i + 0.2 for i in range(len(speed))], [r["torch_s"] for r in speed], 0.4, label="torch.export")
    ax.set_xticks(range(len(speed)), labels, fontsize=7)
    ax.set_ylabel("seconds (fixed steps)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = DOCS / "img" / "e2e.png"
    fig.savefig(out)
    plt.close(fig)
    return "img/e2e.png"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", help="comma-separated script names to run (default all)")
    p.add_argument("--docs-only", action="store_true", help="run no benchmark; rewrite every generated docs section from the JSON")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    from sections import stale, write

    if not args.docs_only:
        only = set(args.only.split(",")) if args.only else None
        total, results = time.monotonic(), HERE / "results"
        for script, _title, extra in BENCHES:
            if only and script not in only:
                continue
            if not (HERE / script).exists():
                print(f"not run: {script} is not present", flush=True)
                continue
            print(f"running {script} ...", flush=True)
            output, seconds, code = run(script, args.quick, extra)
            print(output, flush=True)
            print(f"{script}: {seconds:.0f} s, exit {code}", flush=True)
            if script == "bench_compare.py" and (results / "compare.json").exists():
                plot_compare(results / "compare.json")
            if script == "bench_e2e.py" and (results / "e2e.json").exists():
                plot_e2e(results / "e2e.json")
        print(f"total {time.monotonic() - total:.0f} s", flush=True)
    for line in write():
        print(f"wrote {line}")
    left = stale()
    if left:
        raise SystemExit("sections still differing from their JSON:\n" + "\n".join(left))


if __name__ == "__main__":
    main()
