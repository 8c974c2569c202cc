"""``audit demo``: train a small CNN on scikit-learn's digits (upsampled to 32×32), export it to ONNX,
and audit that file with every installed plugin. Nothing to bring; nothing is downloaded."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from auditor import zoo
from auditor.config import build_config
from auditor.data import load_images
from auditor.plugins import get_plugin_manager
from auditor.report import write_report
from auditor.runner import run_audit

log = logging.getLogger(__name__)

DIGITS_MEAN, DIGITS_STD = (0.3,), (0.35,)


def train_demo_model(out_dir: Path, *, seed: int = 0, epochs: int = 20) -> Path:
    """Train the demo CNN on digits:train and export ``out_dir/digits-cnn.onnx``; returns its path."""
    members = load_images("digits:train")
    reference = load_images("digits:test")
    torch.manual_seed(seed)
    net = zoo.build("tinycnn", members.image_shape, 10)
    zoo.train(net, members.images, members.labels, mean=DIGITS_MEAN, std=DIGITS_STD, epochs=epochs, seed=seed)
    log.info("demo CNN: train accuracy %.3f, held-out accuracy %.3f",
             zoo.accuracy(net, members.images, members.labels, DIGITS_MEAN, DIGITS_STD),
             zoo.accuracy(net, reference.images, reference.labels, DIGITS_MEAN, DIGITS_STD))
    return zoo.export_onnx(net, members.image_shape, out_dir / "digits-cnn.onnx", mean=DIGITS_MEAN, std=DIGITS_STD)


def run_demo(out: Path = Path("audit-report"), *, quick: bool = False, seed: int = 0) -> int:
    model_path = train_demo_model(out / "model", seed=seed, epochs=10 if quick else 25)
    budget = 15.0 if quick else 45.0
    raw = {
        "model": {"source": str(model_path)},
        "data": {"members": "digits:train", "reference": "digits:test"},
        "run": {"seed": seed},
        "report": {"out": str(out)},
        "attacks": {"inversion": {"train_seconds": budget}},
    }
    pm = get_plugin_manager()
    from auditor.plugins import collect_attacks

    installed = collect_attacks(pm)
    for name, budgets in (("tldr", {"inversion_seconds": budget * 2 / 3, "reconstruction_seconds": budget}),
                          ("shortcut", {"inversion_seconds": budget / 2}), ("kkt", {"seconds": budget})):
        if name in installed:
            raw["attacks"][name] = {k: v for k, v in budgets.items() if k in installed[name].Config.model_fields}
    config = build_config(raw)
    report = run_audit(config, pm)
    html = write_report(report, config.report.out)
    from auditor.cli import _summary

    sys.stdout.write(_summary(report) + f"\nmodel: {model_path}\nreport: {html}\n")
    return report.exit_code
