"""End to end: ``audit run`` wall time and peak memory per plugin, ONNX vs torch (torch.export), on the demo
model and MNIST CNN, MLP and ViT. Each run is a fresh ``audit`` process with a fixed number of steps, so
the time per plugin compares the ONNX path (onnx2pytorch gradients) with native torch.

    python bench/bench_e2e.py [--quick]
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, table, trained, write_json

PLUGIN_OPTIONS = {
    "inversion": ["--set", "inversion.steps=40", "--set", "inversion.train_seconds=600"],
    "tldr": ["--set", "tldr.inversion_steps=20", "--set", "tldr.reconstruction_steps=20", "--set", "tldr.inversion_seconds=600",
             "--set", "tldr.reconstruction_seconds=600"],
    "shortcut": [],
    "bnn_sat": [],
}


def export_pt2(model, path: Path) -> Path:
    """torch.export of the bare network with normalisation baked in, so both formats take pixels in [0, 1]."""
    if not path.exists():
        program = torch.export.export(model.module().eval(), (torch.rand(2, *model.input_shape),),
                                      dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
        torch.export.save(program, str(path))
    return path


def audit(source: str, plugin: str, members: str, reference: str, extra: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "auditor", "-q", "run", source, "--plugins", plugin, "--members", members, "--reference", reference,
           "--out", str(out), "--fail-on", "never", *extra, *PLUGIN_OPTIONS.get(plugin, [])]
    # A small launcher runs the audit and reports RUSAGE_CHILDREN: measuring the audit from this (large) process
    # directly would count the pages the fork copies from it (every row read the same ~1.26 GiB).
    launcher = [sys.executable, "-c", LAUNCHER, *cmd]
    start = time.monotonic()
    proc = subprocess.run(launcher, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    elapsed = time.monotonic() - start
    code, peak_kib = (int(v) for v in proc.stdout.split()[-2:])
    return {"seconds": round(elapsed, 1), "peak_mib": round(peak_kib / 1024, 0), "exit": code}


LAUNCHER = ("import resource, subprocess, sys; "
            "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
            "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--plugins", default="inversion,tldr,shortcut,bnn_sat")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import numpy as np

    from auditor.data.sets import balanced_subset, load_images
    from auditor.lab.presets import preset

    ds = preset("mnist")
    work = CACHE / "e2e"
    work.mkdir(parents=True, exist_ok=True)
    test = load_images(ds.test)
    ref_npz = work / "mnist-reference.npz"
    idx = balanced_subset(test.labels.numpy(), 1000, 0)
    np.savez(ref_npz, x=(test.images[idx] * 255).round().to(torch.uint8).numpy()[:, 0], y=test.labels[idx].numpy())
    archs = ["cnn"] if args.quick else ["cnn", "mlp", "vit"]
    plugins = [x for x in args.plugins.split(",") if x]
    rows = []
    targets: list[tuple[str, str, str, str, list[str]]] = []
    for arch in archs:
        model, onnx_path, data = trained("mnist", arch, 1000)
        members_npz = work / "mnist-members-1000.npz"
        if not members_npz.exists():
            np.savez(members_npz, x=(data.members.images * 255).round().to(torch.uint8).numpy()[:, 0], y=data.members.labels.numpy())
        pt2 = export_pt2(model, work / f"mnist-{arch}-1000.pt2")
        targets.append((f"mnist-{arch}", "onnx", str(onnx_path), str(members_npz), []))
        targets.append((f"mnist-{arch}", "torch", f"export:{pt2}", str(members_npz), ["--input-shape", "1,28,28"]))
    demo_onnx = work / "demo" / "model" / "digits-cnn.onnx"
    if not demo_onnx.exists():
        from auditor.lab.demo import train_demo_model

        train_demo_model(work / "demo" / "model")
    targets.insert(0, ("demo (digits CNN)", "onnx", str(demo_onnx), "digits:train", []))
    for name, fmt, source, members, extra in targets:
        reference = "digits:test" if members.startswith("digits") else str(ref_npz)
        for plugin in plugins:
            result = audit(source, plugin, members, reference, extra, work / "reports" / f"{name}-{fmt}-{plugin}".replace(" ", "_"))
            row = {"model": name, "format": fmt, "plugin": plugin, **result}
            rows.append(row)
            logging.info("%s", row)
    speed = []
    for name in {r["model"] for r in rows}:
        for plugin in plugins:
            o = next((r for r in rows if r["model"] == name and r["format"] == "onnx" and r["plugin"] == plugin), None)
            t = next((r for r in rows if r["model"] == name and r["format"] == "torch" and r["plugin"] == plugin), None)
            if o and t and t["seconds"]:
                speed.append({"model": name, "plugin": plugin, "onnx_s": o["seconds"], "torch_s": t["seconds"],
                              "onnx_over_torch": round(o["seconds"] / t["seconds"], 2)})
    print("\naudit run per plugin (fixed steps; fresh process each)")
    print(table(rows, ["model", "format", "plugin", "seconds", "peak_mib", "exit"]))
    print("\nONNX path vs torch (time ratio > 1: ONNX slower)")
    print(table(sorted(speed, key=lambda r: (r["model"], r["plugin"])), ["model", "plugin", "onnx_s", "torch_s", "onnx_over_torch"]))
    print(f"\nwrote {write_json('e2e', {'rows': rows, 'onnx_vs_torch': speed})}")
    from sections import write  # the docs sections rendered from the JSON just written

    write(['bench_e2e'])


if __name__ == "__main__":
    main()
