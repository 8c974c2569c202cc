"""Speed and hit rate do not depend on how a file takes its pixels or gives its scores (issue 13).

The same MNIST MLP (1,000 training images) is exported twice:
* ``[0, 1] in, logits out``: normalisation inside the graph, as the project's own exports;
* ``0-255 in, softmax out``: as a Keras file (raw pixels, a final Softmax).
Each file is audited with ``inversion`` alone, with no preprocessing flags (the preflight chooses), at the
same fixed number of generator steps; the bench records steps per second and the per-class hit rates.

    python bench/bench_preprocessing.py [--quick] [--steps N]

Prints a table, writes bench/results/preprocessing.json and the generated section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, replace_section, table, trained, write_json

from auditor.engine.config import build_config
from auditor.engine.plugins import get_plugin_manager
from auditor.engine.runner import run_audit

START, END = "<!-- bench_preprocessing:start -->", "<!-- bench_preprocessing:end -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


class RawPixelsSoftmax(nn.Module):
    """The trained network behind a Keras-style interface: 0-255 pixels in, probabilities out."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((x / 255.0 - self.mean) / self.std), dim=1)


def export_softmax_255(net: nn.Module, ds, shape: tuple[int, int, int], path: Path) -> Path:
    if not path.exists():
        torch.onnx.export(RawPixelsSoftmax(net, ds.mean, ds.std).eval(), (torch.rand(2, *shape) * 255,), str(path),
                          input_names=["x"], output_names=["probabilities"], dynamic_axes={"x": {0: "n"}, "probabilities": {0: "n"}},
                          dynamo=False)
    return path


def audit(path: Path, data, steps: int, members: Path, reference: Path) -> dict:
    config = build_config({"model": {"source": str(path)}, "data": {"members": str(members), "reference": str(reference)},
                           "run": {"plugins": ["inversion"], "show_progress": False},
                           "attacks": {"inversion": {"steps": steps, "train_seconds": 100000.0}}, "report": {"fail_on": None}})
    report = run_audit(config, get_plugin_manager())
    result = report.results[-1]
    hit = next(t for t in result.tables if t.title.startswith("Per-class inversion"))
    return {"preprocessing": report.preflight.chosen, "member_accuracy": report.preflight.member_accuracy,
            "outputs": report.model.outputs_kind, "graph_edits": report.model.graph_edits, "steps": int(result.metrics["steps"]),
            "seconds": round(result.metrics["train_seconds"], 2), "steps_per_s": round(result.metrics["steps"] / result.metrics["train_seconds"], 2),
            "hit_rate_mean": round(result.metrics["hit_rate_mean"], 3), "hit_rate_min": round(result.metrics["hit_rate_min"], 3),
            "hit_rates": [row[2] for row in hit.rows]}


def render(payload: dict) -> str:
    rows = payload["rows"]
    ratio = payload["steps_per_s_ratio"]
    lines = [START, f"Generated from bench/results/preprocessing.json (`python bench/bench_preprocessing.py{' --quick' if payload['quick'] else ''}`, "
             f"{payload['created']}): the same MNIST MLP (1,000 images) as two files, `inversion` at {payload['steps']} generator steps, "
             "no preprocessing flags.", "",
             "| file | preflight chose | member accuracy | scores read as | steps/s | mean hit rate | lowest class hit rate |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['preprocessing']} | {r['member_accuracy']:.3f} | {r['outputs']} | {r['steps_per_s']:.1f} | "
              f"{r['hit_rate_mean']:.3f} | {r['hit_rate_min']:.3f} |" for r in rows]
    lines += ["", f"Steps per second, 0-255/softmax over [0, 1]/logits: **{ratio:.2f}×** (goal: within 1.5×); per-class hit rates "
              f"{'equal' if payload['hit_rates_equal'] else 'differ'} (largest per-class difference {payload['hit_rate_max_diff']:.3f}).", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps instead of 600")
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    steps = args.steps or (200 if args.quick else 600)
    model, logits_path, data = trained("mnist", "mlp", 1000)
    from auditor.lab.presets import preset

    ds = preset("mnist")
    softmax_path = export_softmax_255(model.network(), ds, data.image_shape, CACHE / "mnist-mlp-1000-s0-softmax255.onnx")
    import numpy as np

    members, reference = CACHE / "preprocessing-members.npz", CACHE / "preprocessing-reference.npz"
    for path, images in ((members, data.members), (reference, data.reference)):
        np.savez(path, x=(images.images.numpy() * 255).round().astype(np.uint8), y=images.labels.numpy())
    rows = [{"file": "[0, 1] in, logits out", **audit(logits_path, data, steps, members, reference)},
            {"file": "0-255 in, softmax out", **audit(softmax_path, data, steps, members, reference)}]
    print(table(rows, ["file", "preprocessing", "member_accuracy", "outputs", "steps", "steps_per_s", "hit_rate_mean", "hit_rate_min"]))
    diffs = [abs(a - b) for a, b in zip(rows[0]["hit_rates"], rows[1]["hit_rates"])]
    payload = {"quick": args.quick, "steps": steps, "rows": rows,
               "steps_per_s_ratio": round(rows[1]["steps_per_s"] / rows[0]["steps_per_s"], 3),
               "hit_rate_max_diff": round(max(diffs), 3), "hit_rates_equal": max(diffs) <= 0.05}
    out = write_json("preprocessing", payload)
    import json

    replace_section(DOC, START, END, render(json.loads(out.read_text())))
    print(f"steps/s ratio {payload['steps_per_s_ratio']:.2f}x, largest hit-rate difference {payload['hit_rate_max_diff']:.3f}")


if __name__ == "__main__":
    main()
