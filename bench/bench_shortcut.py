"""Benchmark the shortcut probe on MNIST: planted vs clean models for every zoo architecture.

Usage: ``python bench/bench_shortcut.py [--quick] [--archs mlp,cnn,vit,vit_nopos]``
(``--docs-only``: only rewrite the generated section of docs/shortcut.md from bench/results/shortcut.json)

For each architecture, one model is trained with a 3×3 positional shortcut (white patch, class k on a
ring 1 px inside the border, every training image) and one on clean images; the audit's
``ShortcutProbe`` (inversion off) then runs on clean test images. Reported per model: finding
severity, max and mean pull, classes pulled ≥ pull_high, planted spots found within one grid cell,
clean accuracy, queries and probe wall time. This is the false-positive / detection check behind the
``pull_high`` and ``pull_medium`` defaults (read from ``ShortcutConfig``, recorded in the JSON). Writes
bench/results/shortcut.json and the generated section of docs/shortcut.md (``render``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

import torch
from common import write_json

from auditor.core.attack import RunContext
from auditor.core.paths import datasets_dir
from auditor.data.sets import AuditData, load_images
from auditor.lab import zoo
from auditor.models.model import from_module
from auditor_shortcut.attack import ShortcutConfig, ShortcutProbe
from auditor_shortcut.planting import Shortcut, ShortcutSpec
from auditor_shortcut.probe import within_cell

MEAN, STD = (0.1307,), (0.3081,)
START, END = "<!-- bench_shortcut:start -->", "<!-- bench_shortcut:end -->"


def _range(values: list[float], digits: int = 2) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if lo == hi else f"{lo:.{digits}f}–{hi:.{digits}f}"


def render(payload: dict) -> str:
    """The measured section of docs/shortcut.md, from bench/results/shortcut.json only."""
    rows = payload["rows"]
    by = {(r["arch"], r["model"]): r for r in rows}
    high, medium = payload["pull_high"], payload["pull_medium"]
    lines = [START, f"`python bench/bench_shortcut.py{' --quick' if payload['quick'] else ''}` (generated from "
             f"bench/results/shortcut.json, {payload['created']}; {payload['train_images']:,} training images, {payload['epochs']} "
             f"epochs, probe on {payload['probe_images']:,} clean test images, {payload['threads']} torch thread; thresholds "
             f"`pull_high` = {high}, `pull_medium` = {medium} as in `ShortcutConfig`):", "",
             f"| arch | planted: finding, max pull, classes ≥ {high:.0%}, spot found | clean: finding, max pull, clean accuracy | "
             "probe wall time (s) |", "|---|---|---|---|"]
    for arch in dict.fromkeys(r["arch"] for r in rows):
        p, c = by.get((arch, "planted")), by.get((arch, "clean"))
        planted = f"{p['severity']}, {p['max_pull']:.2f}, {p['hijacked']}, {p['found']}/10" if p else "–"
        clean = f"{c['severity']}, {c['max_pull']:.2f}, {c['clean_acc']:.2f}" if c else "–"
        times = [r["probe_s"] for r in (p, c) if r]
        lines.append(f"| {arch} | {planted} | {clean} | {_range(times, 1)} |")
    clean_pulls = [r["max_pull"] for r in rows if r["model"] == "clean"]
    planted_pulls = [r["max_pull"] for r in rows if r["model"] == "planted"]
    if clean_pulls and planted_pulls:
        above = "above" if medium > max(clean_pulls) else "**not above**"
        lines += ["", f"Clean models' max pull: {_range(clean_pulls)}; planted: {_range(planted_pulls)}. `pull_high` = {high} "
                  f"{'separates them' if max(clean_pulls) < high <= min(planted_pulls) else '**does not separate them**'}; "
                  f"`pull_medium` = {medium} is {above} every clean model measured here."]
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 2 epochs")
    parser.add_argument("--archs", default="mlp,cnn,vit,vit_nopos")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--docs-only", action="store_true", help="only rewrite docs/shortcut.md's section from the JSON")
    args = parser.parse_args()
    if args.docs_only:
        from sections import write

        write(["bench_shortcut"])
        return 0
    root = datasets_dir()
    if root is None:
        print("no datasets folder with mnist/ found: set AUDITOR_DATASETS or put ../shared/datasets beside the checkout",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    n_train, epochs = (2000, 2) if args.quick else (10000, 5)
    train = load_images(f"{root}/mnist:train", limit=n_train, subset_seed=0)
    n_probe = 1000
    test = load_images(f"{root}/mnist:test", limit=n_probe, subset_seed=1)
    data = AuditData(test, None, 10, tuple(str(i) for i in range(10)))
    shortcut = Shortcut(ShortcutSpec(mode="position", patch_size=3), 10, (1, 28, 28))
    planted_images, _ = shortcut.plant(train.images, train.labels, seed=0)
    rows = []
    for arch in args.archs.split(","):
        for kind, images in (("planted", planted_images), ("clean", train.images)):
            net = zoo.build(arch, (1, 28, 28), 10)  # type: ignore[arg-type]
            start = time.monotonic()
            zoo.train(net, images, train.labels, mean=MEAN, std=STD, epochs=epochs, lr=1e-3, seed=0)
            train_s = time.monotonic() - start
            model = from_module(net, num_classes=10, input_shape=(1, 28, 28), mean=MEAN, std=STD)
            start = time.monotonic()
            out = ShortcutProbe(ShortcutConfig(inversion=False)).run(
                model, data, RunContext(device=torch.device("cpu"), seed=0, show_progress=False))
            probe_s = time.monotonic() - start
            found = 0
            for row in out.tables[0].rows:
                k = int(row[0].split()[0])
                r, c = (int(v) for v in row[1].strip("()").split(","))
                found += within_cell((r, c), shortcut.positions[k], 2)
            rows.append({"arch": arch, "model": kind, "severity": out.findings[0].severity.value,
                         "max_pull": round(out.metrics["max_pull"], 3), "mean_pull": round(out.metrics["mean_pull"], 3),
                         "hijacked": int(out.metrics["classes_hijacked"]), "found": found if kind == "planted" else None,
                         "clean_acc": round(out.metrics["clean_accuracy"], 3), "queries": int(out.metrics["queries"]),
                         "train_s": round(train_s, 1), "probe_s": round(probe_s, 1)})
            print(json.dumps(rows[-1]), flush=True)
    keys = list(rows[0])
    print("  ".join(f"{k:>10}" for k in keys))
    for row in rows:
        print("  ".join(f"{str(row[k]):>10}" for k in keys))
    defaults = ShortcutConfig()
    out_path = write_json("shortcut", {"quick": args.quick, "train_images": n_train, "epochs": epochs, "probe_images": n_probe,
                                       "threads": args.threads, "pull_high": defaults.pull_high,
                                       "pull_medium": defaults.pull_medium, "rows": rows})
    print(f"wrote {out_path}")
    from sections import write

    write(["bench_shortcut"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
