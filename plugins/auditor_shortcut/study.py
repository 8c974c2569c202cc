"""``audit study shortcut``: how much do MLP, CNN and ViT (with/without positional embedding) rely on a planted shortcut?

For every architecture × learning rate: train on a shortcut training set, then measure accuracy on
the test split with every image carrying its class's shortcut, without any shortcut, and with the
shortcut of a *wrong* class. Reliance is the drop (with − without). Each model is also probed with
the audit's patch probe, and one model per architecture is inverted to show whether the patch appears.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from auditor import Figure, Table, UsageError, auto_scale
from auditor.lab import StudyReport, bar_chart_png, write_study_report
from auditor_shortcut.experiment import (
    CellResult,
    InversionCell,
    ProbeSettings,
    invert_cell,
    load_study_data,
    probe_cell,
    train_cell,
)
from auditor_shortcut.figures import marked_reconstructions_figure
from auditor_shortcut.planting import Shortcut, ShortcutSpec
from auditor_shortcut.verdicts import study_findings

log = logging.getLogger(__name__)

ARCHS = ("mlp", "cnn", "vit", "vit_nopos")
PROFILES = {  # defaults (about 15 min on 2 busy cores, single thread) and --quick (about 2 min)
    "default": {"train_size": 10000, "test_size": 2000, "epochs": 5, "lrs": "1e-4,1e-3,1e-2", "inversion_seconds": 90.0,
                "probe_stride": 2, "probe_search": 5},
    "quick": {"train_size": 2000, "test_size": 1000, "epochs": 2, "lrs": "1e-3,1e-2", "inversion_seconds": 15.0,
              "probe_stride": 3, "probe_search": 4},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audit study shortcut", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10, digits, or a core data source (with --test-source)")
    p.add_argument("--test-source", default=None, help="test data source when --dataset is a source string")
    p.add_argument("--quick", action="store_true", help="small budgets: " + str(PROFILES["quick"]))
    p.add_argument("--out", type=Path, default=Path("study-shortcut"), help="folder for study.html and study.json")
    p.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset of " + ", ".join(ARCHS))
    p.add_argument("--lrs", default=None, help="comma-separated Adam learning rates (default " + PROFILES["default"]["lrs"] + ")")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--train-size", type=int, default=None, help="class-balanced training images")
    p.add_argument("--test-size", type=int, default=None, help="class-balanced test images")
    p.add_argument("--mode", choices=("position", "intensity", "both"), default="both", help="what codes the class")
    p.add_argument("--patch-size", type=int, default=3)
    p.add_argument("--fraction", type=float, default=1.0, help="share of training images that carry the shortcut")
    p.add_argument("--intensity-low", type=float, default=0.2)
    p.add_argument("--intensity-high", type=float, default=1.0)
    p.add_argument("--inversion-seconds", type=float, default=None, help="generator budget per architecture (0: no inversion)")
    p.add_argument("--inversion-lr", type=float, default=None,
                   help="learning rate of the model inverted per architecture (default: the one most accurate with the shortcut)")
    p.add_argument("--inversion-samples", type=int, default=8)
    p.add_argument("--no-probe", action="store_true", help="skip the audit probe of each model")
    p.add_argument("--probe-stride", type=int, default=None, help="probe grid step in pixels (default 2; --quick 3)")
    p.add_argument("--probe-search", type=int, default=None, help="clean test images per class in the probe's grid search (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these small models on a busy machine)")
    p.add_argument("--workers", type=int, default=1, help="architectures trained at a time as Ray tasks (1: in this process)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local instance")
    return p


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise UsageError(f"--{name}: expected comma-separated numbers, got {text!r}") from exc
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"--{name}: expected positive numbers, got {text!r}")
    return values


def study_main(argv: list[str]) -> int:
    """Entry point of ``audit study shortcut``; returns the exit code."""
    args = build_parser().parse_args(argv)
    profile = PROFILES["quick" if args.quick else "default"]
    for key, value in profile.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = sorted(set(archs) - set(ARCHS))
    if unknown or not archs:
        raise UsageError(f"--archs: expected a subset of {', '.join(ARCHS)}, got {args.archs!r}")
    _floats(args.lrs, "lrs")  # validated here, parsed again in each cell
    torch.set_num_threads(max(1, args.threads))
    start = time.monotonic()
    data, shortcut = _setup(vars(args))
    log.info("shortcut study on %s: %s", args.dataset, shortcut.describe())
    from auditor.lab import Cell, run_cells

    parallel = args.workers != 1 or args.ray_address is not None
    payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    cells = [Cell(key=arch, fn=shortcut_cell, payload={**payload, "arch": arch, "threads": 1 if parallel else args.threads})
             for arch in archs]
    rows: list[CellResult] = []
    inversions: list[InversionCell] = []
    failures = []
    for outcome in run_cells(cells, args.workers, args.ray_address):  # in the order of the cells
        if not outcome.ok:
            failures.append(f"the {outcome.key} models could not be trained or probed: {outcome.error}")
            log.error("%s", failures[-1])
            continue
        rows += outcome.value["rows"]
        inversions += [outcome.value["inversion"]] if outcome.value["inversion"] is not None else []
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.update({"shortcut": shortcut.describe(), "mean": data.mean, "std": data.std, "torch_threads": torch.get_num_threads(),
                     "train_images": len(data.train), "test_images": len(data.test), "inverted": {inv.arch: inv.lr for inv in inversions}})
    report = build_report(args.dataset, shortcut, rows, inversions, settings, probe=not args.no_probe)
    report.duration_s = time.monotonic() - start
    path = write_study_report(report, args.out)
    sys.stdout.write(summary_text(report) + f"\nreport: {path}\n" + "".join(f"failed: {f}\n" for f in failures))
    return 3 if failures else 0


def _setup(settings: dict) -> tuple:  # (StudyData, Shortcut)
    data = load_study_data(settings["dataset"], train_size=settings["train_size"], test_size=settings["test_size"],
                           seed=settings["seed"], test_source=settings["test_source"])
    spec = ShortcutSpec(mode=settings["mode"], patch_size=settings["patch_size"], fraction=settings["fraction"],
                        intensity_low=settings["intensity_low"], intensity_high=settings["intensity_high"])
    return data, Shortcut(spec, data.num_classes, data.train.image_shape)


def shortcut_cell(cell: dict) -> dict:
    """One architecture of the grid: every learning rate, the probe, and the inversion of one of its models.

    Runs in this process or in a Ray worker (``auditor.lab.run_cells``); the worker loads the dataset itself.
    """
    torch.set_num_threads(max(1, cell["threads"]))
    data, shortcut = _setup(cell)
    rows: list[CellResult] = []
    chosen: tuple[torch.nn.Module, CellResult] | None = None
    for lr in _floats(cell["lrs"], "lrs"):
        net, row = train_cell(cell["arch"], lr, data, shortcut, epochs=cell["epochs"], seed=cell["seed"])
        if not cell["no_probe"]:
            probe_cell(net, row, data, shortcut, ProbeSettings(stride=cell["probe_stride"], search_per_class=cell["probe_search"]))
        rows.append(row)
        wanted = abs(lr - cell["inversion_lr"]) < 1e-12 if cell["inversion_lr"] is not None else (
            chosen is None or row.acc_with > chosen[1].acc_with)
        if wanted:
            chosen = (net, row)
    inversion = None
    if cell["inversion_seconds"] > 0 and chosen is not None:
        inversion = invert_cell(chosen[0], cell["arch"], chosen[1].lr, data, shortcut, seconds=cell["inversion_seconds"],
                                samples=cell["inversion_samples"], seed=cell["seed"])
    return {"rows": rows, "inversion": inversion}


def build_report(dataset: str, shortcut: Shortcut, rows: list[CellResult], inversions: list[InversionCell],
                 settings: dict, *, probe: bool) -> StudyReport:
    k = shortcut.num_classes
    table = Table(title="Accuracy with and without the shortcut",
                  columns=["arch", "lr", "acc with shortcut", "acc without", "drop", "relative drop", "acc, wrong-class shortcut",
                           "follows wrong patch", "train acc", "probe max pull", f"probe: classes hijacked / {k}",
                           f"probe: planted spot found / {k}", "train s", "probe s"],
                  rows=[[r.arch, r.lr, r.acc_with, r.acc_without, r.drop, r.relative_drop, r.acc_conflict, r.follows_patch,
                         r.acc_train, r.probe_max_pull if probe else "-", r.probe_hijacked if probe else "-",
                         r.probe_found if probe else "-", round(r.train_seconds, 1), round(r.probe_seconds, 1)] for r in rows],
                  caption="Drop = accuracy with shortcut − without: the model's reliance on the shortcut (relative drop: drop / "
                          "accuracy with shortcut). 'Follows wrong patch': "
                          "share of test images carrying another class's patch that are predicted as that class. Probe: the "
                          "audit's patch search on clean test images (high when a patch pulls ≥ 50% of other classes' images).")
    archs = list(dict.fromkeys(r.arch for r in rows))
    lrs = sorted(dict.fromkeys(r.lr for r in rows))
    cell = {(r.arch, r.lr): r for r in rows}
    by_arch = Table(title="Reliance by architecture (mean over learning rates)",
                    columns=["arch", "mean drop", "min drop", "max drop", "mean relative drop", "mean follows wrong patch",
                             "mean acc without"],
                    rows=[[a, _mean([cell[a, lr].drop for lr in lrs if (a, lr) in cell]),
                           min(cell[a, lr].drop for lr in lrs if (a, lr) in cell), max(cell[a, lr].drop for lr in lrs if (a, lr) in cell),
                           _mean([cell[a, lr].relative_drop for lr in lrs if (a, lr) in cell]),
                           _mean([cell[a, lr].follows_patch for lr in lrs if (a, lr) in cell]),
                           _mean([cell[a, lr].acc_without for lr in lrs if (a, lr) in cell])] for a in archs])
    by_lr = Table(title="Drop by learning rate", columns=["lr", *archs, "mean"],
                  rows=[[lr, *[cell[a, lr].drop if (a, lr) in cell else "-" for a in archs],
                         _mean([cell[a, lr].drop for a in archs if (a, lr) in cell])] for lr in lrs])
    tables = [table, by_arch, by_lr]
    figures = [Figure(title="Accuracy drop (with − without shortcut)",
                      png_base64=bar_chart_png("Reliance on the shortcut", archs,
                                               {f"lr {lr:g}": [cell[a, lr].drop if (a, lr) in cell else 0.0 for a in archs] for lr in lrs},
                                               "accuracy drop"),
                      caption="Higher bars: the model leans more on the patch than on the object."),
               Figure(title="Accuracy with and without the shortcut",
                      png_base64=bar_chart_png("Test accuracy", [f"{r.arch} {r.lr:g}" for r in rows],
                                               {"with shortcut": [r.acc_with for r in rows],
                                                "without": [r.acc_without for r in rows],
                                                "wrong-class shortcut": [r.acc_conflict for r in rows]}, "accuracy"))]
    if inversions:
        tables.append(Table(title="Inversion: does the planted patch appear?",
                            columns=["arch", "lr", "generator steps", "hit rate", "patch presence (own spot)",
                                     "presence at other classes' spots", f"classes with presence ≥ 0.5 / {k}",
                                     f"most localised difference on the patch / {k}", "lift vs real"],
                            rows=[[inv.arch, inv.lr, inv.steps, inv.hit_rate, _mean(inv.presence), _mean(inv.control),
                                   sum(p >= 0.5 for p in inv.presence), inv.at_planted, inv.lift_ratio_mean] for inv in inversions],
                            caption="Patch presence: the reconstructions' contrast at the class's planted square (square mean minus "
                                    "the surrounding ring's) over the contrast of the planted patch on real images of the class: "
                                    "1 = drawn as planted, 0 = no square. The other-spots column is the control (no patch expected "
                                    "there). Most localised difference: the patch-sized window where reconstructions differ most "
                                    "from the class's mean real image lies within 1 px of the planted patch."))
        boxes = {j: (r, c, shortcut.size) for j, (r, c) in enumerate(shortcut.positions)}
        for inv in inversions:
            figures.append(marked_reconstructions_figure(
                inv.images, inv.labels, k, boxes, title=f"Inversion of {inv.arch} (lr {inv.lr:g})",
                caption=f"Row k: generator samples for class k; red box: where class k's patch was planted "
                        f"(patch presence {_mean(inv.presence):.2f}; hit rate {inv.hit_rate:.0%}; {inv.steps} steps). "
                        f"Images ×{auto_scale(inv.images.shape[-1])}."))
    return StudyReport(title=f"Shortcut learning study ({dataset})",
                       summary=f"{shortcut.describe()}. Architectures {', '.join(archs)} at learning rates "
                               f"{', '.join(f'{lr:g}' for lr in lrs)}; each tested with, without and with a wrong-class shortcut.",
                       settings=settings, findings=study_findings(rows, inversions, k), tables=tables, figures=figures,
                       rows=[r.as_dict() for r in rows])


def summary_text(report: StudyReport) -> str:
    table = report.tables[0]
    keep = [0, 1, 2, 3, 4, 7, 10, 11]
    lines = [report.title, "  ".join(f"{table.columns[i][:18]:>18}" for i in keep)]
    for row in table.rows:
        lines.append("  ".join(f"{_fmt(row[i]):>18}" for i in keep))
    lines += ["", *[f"- {f}" for f in report.findings], f"duration: {report.duration_s:.0f} s"]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and abs(value) >= 1e-3 else (f"{value:g}" if isinstance(value, float) else str(value))


def _mean(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")
