"""``audit batch``: 8 small models audited one after another vs as Ray tasks on 2 workers, wall clock.

    python bench/bench_batch.py [--quick] [--docs]

Each model is a small CNN (1×28×28, 10 classes) trained here for a few steps on seeded synthetic data; each
audit is ``inversion`` with a fixed number of steps (no time bound), so both runs do the same work. Every
run is a fresh ``audit batch`` process (start-up, Ray's start and stop included) with ``--force``:

* ``sequential``: ``--workers 1`` (in-process, one torch thread per audit);
* ``sequential, 2 threads`` (``--threads-baseline``): ``--workers 1 --cpus-per-task 2`` (one audit at a time on both cores);
* ``ray, 2 workers``: ``--workers 2`` (a local Ray instance, one CPU and one torch thread per task).

Writes bench/results/batch.json; ``--docs`` replaces the generated sections of docs/benchmarks.md and of
docs/scale.md (the paper estimate for 1,000 checkpoints on 64 nodes).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json

START, END = "<!-- bench_batch:start -->", "<!-- bench_batch:end -->"
SCALE_START, SCALE_END = "<!-- scale_estimate:start -->", "<!-- scale_estimate:end -->"
SHAPE = (1, 28, 28)


def build(root: Path, n_models: int) -> None:
    import numpy as np

    from auditor.lab.testing import export_tiny_onnx, make_audit_data, train_tiny

    data = make_audit_data(n_members=20, n_reference=20, image_shape=SHAPE, num_classes=10)
    np.savez(root / "members.npz", x=data.members.images.numpy(), y=data.members.labels.numpy())
    np.savez(root / "reference.npz", x=data.reference.images.numpy(), y=data.reference.labels.numpy())
    (root / "models").mkdir(exist_ok=True)
    for seed in range(n_models):
        export_tiny_onnx(train_tiny(data, seed=seed, steps=30), SHAPE, root / "models" / f"cnn{seed}.onnx")


def run_batch(root: Path, name: str, steps: int, extra: list[str]) -> dict:
    out = root / name
    cmd = ["audit", "-q", "batch", "--models", str(root / "models" / "*.onnx"), "--members", str(root / "members.npz"),
           "--reference", str(root / "reference.npz"), "--plugins", "inversion", "--set", "inversion.train_seconds=null",
           "--set", f"inversion.steps={steps}", "--out", str(out), "--force", *extra]
    load = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.monotonic() - start
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    batch = json.loads((out / "batch.json").read_text())
    audits = [e["audit_seconds"] for e in batch["entries"] if e["audit_seconds"] is not None]
    return {"run": name, "args": " ".join(extra), "wall_s": round(wall, 1), "models": len(batch["entries"]),
            "completed": batch["counts"]["completed"], "audit_s_mean": round(sum(audits) / len(audits), 2),
            "audit_s_sum": round(sum(audits), 1), "loadavg_before": round(load, 2), "loadavg_after": round(os.getloadavg()[0], 2)}


def ray_start_stop() -> dict:
    """Seconds to start and stop a quiet local instance (what every local batch pays once)."""
    code = ("import logging, time; t = time.monotonic(); import ray; "
            "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING); t1 = time.monotonic(); "
            "ray.shutdown(); print(t1 - t, time.monotonic() - t1)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    start, stop = (float(v) for v in proc.stdout.split())
    return {"ray_start_s": round(start, 2), "ray_stop_s": round(stop, 2)}


def estimate(per_audit_s: float, overhead_s: float, checkpoints: int = 1000, nodes: int = 64, cores: int = 16, cpus_per_task: int = 1) -> dict:
    """Paper estimate: waves of ``nodes × cores / cpus_per_task`` audits, each wave as long as one audit."""
    slots = nodes * cores // cpus_per_task
    waves = math.ceil(checkpoints / slots)
    return {"checkpoints": checkpoints, "nodes": nodes, "cores_per_node": cores, "cpus_per_task": cpus_per_task, "slots": slots,
            "waves": waves, "per_audit_s": round(per_audit_s, 1), "overhead_s": round(overhead_s, 1),
            "wall_s": round(overhead_s + waves * per_audit_s, 1), "sequential_s": round(checkpoints * per_audit_s, 1)}


def render(payload: dict, heading: bool = True) -> str:
    """The markdown section for docs/benchmarks.md, from the JSON only."""
    rows = {r["run"]: r for r in payload["rows"]}
    lines = [START] + (["## Batch audits: sequential vs Ray", ""] if heading else []) + [
        f"`python bench/bench_batch.py{' --quick' if payload['quick'] else ''}` ({payload['created']}): {payload['models']} small CNNs "
        f"(1×28×28, 10 classes), `inversion` with {payload['steps']} fixed steps each, every run a fresh `audit batch` process "
        f"(Ray {payload['ray_version']}; a local instance starts in {payload['ray']['ray_start_s']:.1f} s and stops in "
        f"{payload['ray']['ray_stop_s']:.1f} s). Load average of the shared 2-core machine before each run in the table.", "",
        "| run | wall (s) | mean audit (s) | sum of audits (s) | speed-up vs sequential | load before |", "|---|---|---|---|---|---|"]
    base = rows["sequential"]["wall_s"]
    for r in payload["rows"]:
        lines.append(f"| {r['run']} (`{r['args']}`) | {r['wall_s']:.1f} | {r['audit_s_mean']:.1f} | {r['audit_s_sum']:.1f} | "
                     f"{base / r['wall_s']:.2f}× | {r['loadavg_before']:.1f} |")
    lines += ["", f"Measured speed-up with 2 Ray workers: **{payload['speedup']:.2f}×** (target ≥ 1.6×). "
              f"{limits_text(payload['rows'][0], payload['rows'][-1])}", "",
              "Paper estimate for 1,000 checkpoints on 64 nodes: see docs/scale.md (generated from the same JSON).", END]
    return "\n".join(lines)


def render_estimate(payload: dict) -> str:
    """The estimate section of docs/scale.md, from the JSON only."""
    lines = [SCALE_START, f"Generated by `python bench/bench_batch.py --docs` ({payload['created']}) from bench/results/batch.json. "
             "Model: waves of `nodes × cores ÷ cpus_per_task` audits at once, each wave as long as one audit measured here with one "
             "thread, plus the start-up measured here (Ray's start and the workers' imports). It assumes the audits on a node do not slow "
             "each other down (on this 2-core machine two audits side by side took "
             f"{payload['rows'][-1]['audit_s_mean'] / payload['rows'][0]['audit_s_mean']:.2f}× as long each), that every node reads "
             "the models and data from a shared filesystem fast enough, and it ignores stragglers: the wall clock of the last wave is "
             "its slowest audit.", "",
             "| audit (measured) | seconds per audit | nodes × cores | slots | waves | estimated wall clock | one after another |",
             "|---|---|---|---|---|---|---|"]
    for label, est in payload["estimates"]:
        lines.append(f"| {label} | {est['per_audit_s']:.0f} | {est['nodes']} × {est['cores_per_node']} | {est['slots']:,} | {est['waves']} | "
                     f"**{est['wall_s'] / 60:.1f} min** | {est['sequential_s'] / 3600:.1f} h |")
    lines.append(SCALE_END)
    return "\n".join(lines)


def _replace(path: Path, start: str, end: str, section: str) -> None:
    text = path.read_text()
    text = text[:text.index(start)] + section + text[text.index(end) + len(end):] if start in text else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"updated {path}")


def limits_text(seq: dict, par: dict) -> str:
    slowdown = par["audit_s_mean"] / seq["audit_s_mean"]
    overhead = par["wall_s"] - par["audit_s_sum"] / 2
    return (f"What limits it: each audit took {slowdown:.2f}× as long inside the 2-worker batch as alone ({par['audit_s_mean']:.1f} s vs "
            f"{seq['audit_s_mean']:.1f} s), because the two workers share the machine's two cores with everything else running on it "
            f"(load average {par['loadavg_before']:.1f} before the run, {par['loadavg_after']:.1f} after), so two workers can be at most "
            f"{2 / slowdown:.2f}× faster here; Ray's start and stop and the workers' imports of torch and the plugins add "
            f"{overhead:.0f} s of wall clock to the Ray run. Each task runs one torch thread, so the workers do not over-subscribe the cores themselves.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4 models, 20 steps")
    p.add_argument("--steps", type=int)
    p.add_argument("--docs", action="store_true", help="update the generated sections of docs/benchmarks.md and docs/scale.md")
    p.add_argument("--threads-baseline", action="store_true", help="also time one audit at a time with 2 torch threads")
    p.add_argument("--from-json", action="store_true", help="only rewrite the docs sections from bench/results/batch.json")
    args = p.parse_args()
    if args.from_json:
        write_docs(json.loads((Path(__file__).resolve().parent / "results" / "batch.json").read_text()))
        return
    import ray

    n_models, steps = (4, 20) if args.quick else (8, args.steps or 120)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        build(root, n_models)
        runs = [("sequential", ["--workers", "1"]), ("ray, 2 workers", ["--workers", "2"])]
        if args.threads_baseline:
            runs.insert(1, ("sequential, 2 threads", ["--workers", "1", "--cpus-per-task", "2"]))
        rows = [run_batch(root, name, steps, extra) for name, extra in runs]
    ray_times = ray_start_stop()
    seq, par = rows[0], rows[-1]
    speedup = seq["wall_s"] / par["wall_s"]
    overhead = max(ray_times["ray_start_s"], par["wall_s"] - par["audit_s_sum"] / 2)  # the Ray run's wall clock beyond its audits
    estimates = [(f"this benchmark's audit (`inversion`, {steps} steps, tiny CNN)", estimate(seq["audit_s_mean"], overhead))]
    e2e = Path(__file__).resolve().parent / "results" / "e2e.json"
    if e2e.exists():  # every builtin plugin on the MNIST CNN (ONNX), fixed steps, as measured by bench_e2e (one process per plugin)
        measured = [r["seconds"] for r in json.loads(e2e.read_text())["rows"] if r["model"] == "mnist-cnn" and r["format"] == "onnx"]
        if measured:
            estimates.append((f"every builtin plugin on the MNIST CNN (bench_e2e settings, sum of {len(measured)} plugin runs)",
                              estimate(sum(measured), overhead)))
            estimates.append(("the same, 2 CPUs per audit (half the slots, same audit time assumed)",
                              estimate(sum(measured), overhead, cpus_per_task=2)))
    payload = {"quick": args.quick, "models": n_models, "steps": steps, "ray_version": ray.__version__, "ray": ray_times, "rows": rows,
               "speedup": round(speedup, 2), "estimates": estimates}
    path = write_json("batch", payload)
    print(table(rows, ["run", "args", "wall_s", "audit_s_mean", "audit_s_sum", "loadavg_before", "loadavg_after"]))
    print(f"speed-up with 2 Ray workers: {speedup:.2f}x; {limits_text(seq, par)}")
    print(f"wrote {path}")
    if args.docs:
        write_docs(json.loads(path.read_text()))


def write_docs(payload: dict) -> None:
    docs = Path(__file__).resolve().parents[1] / "docs"
    _replace(docs / "benchmarks.md", START, END, render(payload))
    _replace(docs / "scale.md", SCALE_START, SCALE_END, render_estimate(payload))


if __name__ == "__main__":
    main()
