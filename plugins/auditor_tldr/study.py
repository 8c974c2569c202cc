"""``audit study privacy``: which architectures leak their training data, and how that depends on training-set size.

Trains MLP, CNN and ViT classifiers on class-balanced subsets of a dataset at several sizes, runs
``tldr`` on each with the same budget and seed, and writes one comparison report (table, charts and
reconstruction grids side by side). The papers' claim under test: the MLP leaks most, the CNN least,
and smaller training sets leak more. The report states what was measured, whichever way it falls.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from functools import lru_cache
from pathlib import Path

import torch

from auditor import AuditData, Figure, Table, balanced_subset, from_module, load_images
from auditor.lab import (
    Study,
    StudyReport,
    bar_chart_png,
    build_config,
    get_plugin_manager,
    preset,
    run_audit,
    write_report,
    write_study_report,
    zoo,
)

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audit study privacy", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10 or digits")
    p.add_argument("--archs", default="mlp,cnn,vit")
    p.add_argument("--sizes", default="100,1000,10000", help="training-set sizes (class-balanced)")
    p.add_argument("--attacks", default="tldr", help="attacks to run on each model (e.g. tldr,inversion)")
    p.add_argument("--inversion-seconds", type=float, help="tldr phase 1 budget per model (default 45; --quick 10)")
    p.add_argument("--reconstruction-seconds", type=float, help="tldr phase 2 budget per model (default 60; --quick 15)")
    p.add_argument("--epochs", type=int, help="training epochs (default: by training-set size)")
    p.add_argument("--reference", type=int, default=1000, help="non-member test images used as the reference set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="sizes 100, short budgets (a few minutes)")
    p.add_argument("--out", type=Path, default=Path("study-privacy"))
    p.add_argument("--workers", type=int, default=1, help="models trained and audited at a time as Ray tasks (1: in this process)")
    p.add_argument("--ray-address", help="run the cells on this Ray cluster (docs/scale.md)")
    return p


def epochs_for(size: int, quick: bool) -> int:
    if quick:
        return 15 if size <= 1000 else 3
    return max(5, min(40, int(40_000 / max(size, 1)))) if size > 1000 else 40


@lru_cache(maxsize=2)
def _study_data(dataset: str, n_reference: int, seed: int) -> tuple:
    ds = preset(dataset)
    train_all, test = load_images(ds.train), load_images(ds.test)
    reference = test.subset(balanced_subset(test.labels.numpy(), n_reference, seed)) if n_reference < len(test) else test
    return ds, train_all, test, reference


def privacy_cell(cell: dict) -> dict:
    """One model of the grid: train it, audit it, write its report; returns its rows and figures (no images of members).

    Runs in-process or in a Ray worker (``auditor.batch.engine.run_cells``); the worker reads the dataset from disk.
    """
    ds, train_all, test, reference = _study_data(cell["dataset"], cell["reference"], cell["seed"])
    size, arch, seed, out = cell["size"], cell["arch"], cell["seed"], Path(cell["out"])
    if cell.get("threads"):
        torch.set_num_threads(cell["threads"])
    members = train_all.subset(balanced_subset(train_all.labels.numpy(), size, seed))
    data = AuditData(members, reference, 10, ds.class_names)
    name = f"{cell['dataset']}-{arch}-{size}"
    log.info("training %s", name)
    torch.manual_seed(seed)
    net = zoo.build(arch, members.image_shape, 10)
    t0 = time.monotonic()
    zoo.train(net, members.images, members.labels, mean=ds.mean, std=ds.std, epochs=cell["epochs"], seed=seed)
    train_s = time.monotonic() - t0
    model = from_module(net, num_classes=10, input_shape=members.image_shape, mean=ds.mean, std=ds.std, source=f"study:{name}")
    test_acc = model.accuracy(test.images, test.labels)
    attacks, inv_s, rec_s = cell["attacks"], cell["inversion_seconds"], cell["reconstruction_seconds"]
    options = {"tldr": {"inversion_seconds": inv_s, "reconstruction_seconds": rec_s}, "inversion": {"train_seconds": inv_s + rec_s}}
    config = build_config({"model": {"source": f"study:{name}"}, "run": {"plugins": attacks, "seed": seed, "show_progress": False},
                           "report": {"out": str(out / name)}, "attacks": {a: options.get(a, {}) for a in attacks}})
    report = run_audit(config, get_plugin_manager(), model=model, data=data)
    write_report(report, out / name)
    rows, figures = [], []
    for result in report.results:
        s = result.scores
        rows.append({"model": name, "arch": arch, "size": size, "attack": result.attack, "status": result.status,
                     "test_accuracy": test_acc, "train_seconds": train_s,
                     "matched_ssim": s.matched_ssim_mean if s else None, "best_ssim": s.best_ssim_mean if s else None,
                     "reference_best_ssim": s.reference_best_ssim_mean if s else None,
                     "gap": s.gap if s else None, "gap_ci_low": s.gap_ci_low if s else None, "gap_ci_high": s.gap_ci_high if s else None,
                     "likely_copies": s.likely_copy_share if s else None, "hit_rate": result.metrics.get("hit_rate_mean"),
                     "attack_seconds": result.duration_s})
        grid = next((f for f in result.figures if f.title.startswith("Reconstructions per class") or f.title.startswith("Generated samples")), None)
        if grid is not None:
            figures.append(Figure(title=f"{name} · {result.attack}", png_base64=grid.png_base64,
                                  caption=f"test accuracy {test_acc:.3f}; matched SSIM {rows[-1]['matched_ssim'] or float('nan'):.3f}; "
                                          f"gap {rows[-1]['gap'] if rows[-1]['gap'] is not None else float('nan'):+.3f}").model_dump())
    return {"name": name, "rows": rows, "figures": figures}


def run_study(args: argparse.Namespace) -> StudyReport:
    from auditor.lab import Cell, load_report, run_cells, write_comparison

    start = time.monotonic()
    sizes = [100] if args.quick and args.sizes == "100,1000,10000" else [int(s) for s in args.sizes.split(",")]
    archs = [a.strip() for a in args.archs.split(",")]
    attacks = [a.strip() for a in args.attacks.split(",")]
    inv_s = args.inversion_seconds if args.inversion_seconds is not None else (10.0 if args.quick else 45.0)
    rec_s = args.reconstruction_seconds if args.reconstruction_seconds is not None else (15.0 if args.quick else 60.0)
    parallel = args.workers != 1 or args.ray_address is not None
    cells = [Cell(key=f"{args.dataset}-{arch}-{size}", fn=privacy_cell, payload={
        "dataset": args.dataset, "size": size, "arch": arch, "seed": args.seed, "reference": args.reference,
        "epochs": args.epochs or epochs_for(size, args.quick), "attacks": attacks, "inversion_seconds": inv_s,
        "reconstruction_seconds": rec_s, "out": str(args.out.resolve()), "threads": 1 if parallel else None})
        for size in sizes for arch in archs]
    rows, figures, reports, paths, labels, failures = [], [], [], [], [], []
    for outcome in run_cells(cells, args.workers, args.ray_address):
        if not outcome.ok:
            failures.append(f"{outcome.key} could not be trained or audited: {outcome.error}")
            continue
        rows += outcome.value["rows"]
        figures += [Figure.model_validate(f) for f in outcome.value["figures"]]
        path = args.out / outcome.value["name"] / "report.json"
        reports.append(load_report(path))
        paths.append(path)
        labels.append(outcome.value["name"])
    if reports:
        write_comparison(reports, args.out, paths=paths, labels=labels, title=f"Privacy study: {args.dataset}, models ranked by leakage")
    report = _report(args, rows, figures, sizes, archs, attacks, time.monotonic() - start)
    report.findings[:0] = failures
    report.settings["failed_cells"] = str(len(failures))
    return report


def _fmt(v: object) -> object:
    return round(v, 4) if isinstance(v, float) else v


def _report(args, rows, figures, sizes, archs, attacks, seconds) -> StudyReport:
    table = Table(title="Leakage by architecture and training-set size",
                  columns=["model", "attack", "test acc", "matched SSIM", "best SSIM", "non-member best", "gap", "gap CI", "likely copies", "hit rate", "attack s"],
                  rows=[[r["model"], r["attack"], _fmt(r["test_accuracy"]), _fmt(r["matched_ssim"]), _fmt(r["best_ssim"]), _fmt(r["reference_best_ssim"]),
                         _fmt(r["gap"]), f"{r['gap_ci_low']:+.3f} … {r['gap_ci_high']:+.3f}" if r["gap_ci_low"] is not None else "–",
                         _fmt(r["likely_copies"]), _fmt(r["hit_rate"]), _fmt(r["attack_seconds"])] for r in rows])
    charts = []
    for attack in attacks:
        sel = [r for r in rows if r["attack"] == attack]
        groups = [f"n={s}" for s in sizes]
        for metric, label in (("matched_ssim", "mean matched SSIM"), ("gap", "member − non-member gap")):
            series = {a: [next((r[metric] or 0.0 for r in sel if r["arch"] == a and r["size"] == s), 0.0) for s in sizes] for a in archs}
            charts.append(Figure(title=f"{attack}: {label}", png_base64=bar_chart_png(f"{attack}: {label}", groups, series, label)))
        series = {a: [next((r["test_accuracy"] for r in sel if r["arch"] == a and r["size"] == s), 0.0) for s in sizes] for a in archs}
        charts.append(Figure(title=f"{attack}: test accuracy", png_base64=bar_chart_png("test accuracy", groups, series, "accuracy")))
    findings = _conclusions(rows, archs, sizes, attacks)
    return StudyReport(title=f"Privacy study: {args.dataset}", summary=(
        "Each model is trained on a class-balanced subset, then attacked with the same budget and seed; reconstructions are scored "
        "against its members and against non-member test images (equal pools). The gap is the headline leakage number."),
        settings={k: str(v) for k, v in vars(args).items()}, findings=findings, tables=[table], figures=charts + figures, rows=rows,
        duration_s=round(seconds, 1))


def _conclusions(rows, archs, sizes, attacks) -> list[str]:
    out = []
    for attack in attacks:
        sel = [r for r in rows if r["attack"] == attack and r["gap"] is not None]
        if not sel:
            continue
        present = [a for a in archs if any(r["arch"] == a for r in sel)]
        by_arch = {a: sum(r["gap"] for r in sel if r["arch"] == a) / sum(1 for r in sel if r["arch"] == a) for a in present}
        order = sorted(by_arch, key=lambda a: -by_arch[a])
        out.append(f"{attack}: mean gap by architecture " + ", ".join(f"{a} {by_arch[a]:+.3f}" for a in order)
                   + f" — most leakage: {order[0]}, least: {order[-1]} (the papers expect MLP most, CNN least).")
        if len(sizes) > 1:
            by_size = {s: sum(r["gap"] for r in sel if r["size"] == s) / max(1, sum(1 for r in sel if r["size"] == s)) for s in sizes
                       if any(r["size"] == s for r in sel)}
            out.append(f"{attack}: mean gap by training-set size " + ", ".join(f"n={s} {by_size[s]:+.3f}" for s in sizes)
                       + (" — smaller sets leak more." if list(by_size.values())[0] > list(by_size.values())[-1] else " — smaller sets do not leak more here."))
    return out


def study_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    report = run_study(args)
    html = write_study_report(report, args.out)
    for line in report.findings:
        sys.stdout.write(line + "\n")
    sys.stdout.write(f"study report: {html}\n")
    return 3 if report.settings.get("failed_cells", "0") != "0" else 0  # a model that could not be trained or audited


def privacy_study() -> Study:
    return Study(name="privacy", summary="Train MLP/CNN/ViT at several training-set sizes, run tldr on each, compare leakage.", main=study_main)
