"""Run every benchmark in one go and write docs/benchmarks.md (tables from this run, plots as PNGs).

    python bench/run_all.py            # defaults: under 90 minutes on 2 cores
    python bench/run_all.py --quick    # under 10 minutes

Each benchmark runs in its own process, prints its table and writes bench/results/<name>.json; this
runner copies the printed tables into the document and draws the plots from the JSON.
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
    args = p.parse_args()
    only = set(args.only.split(",")) if args.only else None
    sections, total = [], time.monotonic()
    for script, title, extra in BENCHES:
        if only and script not in only:
            continue
        if not (HERE / script).exists():
            sections.append(f"## {title}\n\nNot run: `{script}` is not present.\n")
            continue
        print(f"running {script} ...", flush=True)
        output, seconds, code = run(script, args.quick, extra)
        print(output, flush=True)
        flags = " --quick" if args.quick else "".join(f" {a}" for a in extra)
        body = f"## {title}\n\n`python bench/{script}{flags}` ({seconds:.0f} s, exit {code})\n\n```\n{output.strip()}\n```\n"
        results = HERE / "results"
        plot = None
        if script == "bench_compare.py" and (results / "compare.json").exists():
            plot = plot_compare(results / "compare.json")
            keys = json.loads((results / "compare.json").read_text()).get("grids", {})
            grids = [DOCS / "img" / f"compare-{k}.png" for k in keys if (DOCS / "img" / f"compare-{k}.png").exists()]
            if grids:
                body += "\nReconstruction grids (one row per class; same model, seed and budget):\n\n" + "\n".join(
                    f"* {g.stem.removeprefix('compare-')}: ![{g.stem}](img/{g.name})" for g in grids) + "\n"
        if script == "bench_e2e.py" and (results / "e2e.json").exists():
            plot = plot_e2e(results / "e2e.json")
        if script == "bench_membership.py" and (results / "membership.json").exists():
            sys.path.insert(0, str(HERE))
            from bench_membership import render  # the generated section, from the JSON

            body += "\n" + render(json.loads((results / "membership.json").read_text()), heading=False)
        if script == "bench_batch.py" and (results / "batch.json").exists():
            sys.path.insert(0, str(HERE))
            from bench_batch import render as render_batch  # the generated section, from the JSON

            body += "\n" + render_batch(json.loads((results / "batch.json").read_text()), heading=False)
        if script == "bench_verdict.py" and (results / "verdict.json").exists():
            sys.path.insert(0, str(HERE))
            from verdict_checks import render as render_verdict  # the generated section, from the JSON

            verdict = json.loads((results / "verdict.json").read_text())
            profile = "quick" if args.quick else "full"
            body += "\n" + render_verdict(verdict, profile, f"<!-- bench_verdict{'_quick' if args.quick else ''}:start -->",
                                           f"<!-- bench_verdict{'_quick' if args.quick else ''}:end -->", heading=False)
        if script == "bench_preprocessing.py" and (results / "preprocessing.json").exists():
            sys.path.insert(0, str(HERE))
            from bench_preprocessing import render as render_preprocessing  # the generated section, from the JSON

            body += "\n" + render_preprocessing(json.loads((results / "preprocessing.json").read_text()))
        if plot:
            body += f"\n![{title}]({plot})\n"
        sections.append(body)
    header = (f"# Benchmarks\n\nMeasured by `python bench/run_all.py{' --quick' if args.quick else ''}` on this project's 2-core CPU machine "
              f"({time.strftime('%Y-%m-%d')}; total {time.monotonic() - total:.0f} s). Every figure compared with another was measured in the "
              "same run, on the same model, data and seed. Raw numbers: `bench/results/*.json`.\n\n"
              "Goals: SSIM equal to scikit-image within 1e-4 and at least 50× faster on batches of 1,000 pairs or more; nearest-member "
              "search of 1,000 reconstructions against the 60,000 MNIST training images under 60 s; `tldr` more training-like than MIFace "
              "at every budget (higher matched SSIM, a gap whose CI lies above zero, likely copies above zero on the 100-image model).\n")
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.md").write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
