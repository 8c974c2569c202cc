"""Benchmark of the bnn_sat plugin: formula sizes, per-class query times, enumeration rate.

Usage::

    python bench/bench_bnn_sat.py [--quick] [--work /tmp/auditor-bnn-bench] [--limit 10]

Trains (or reuses from ``--work``) BNNs 100-100-10 (10x10 inputs), 784-100-10,
784-100-100-10, 784-200-100-100-100-10 and a SAT-friendly sparse 784-100-10 on sign-binarised
MNIST, then times one query per class for each strategy / solver / encoding / phase setting,
from scratch (no data) and seeded (phases from one *test* image of the class). Prints a table
and writes ``bench/results/bnn_sat.json``. Needs MNIST under ``auditor.core.paths.datasets_dir()``.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from auditor.core.paths import datasets_dir
from auditor_bnn_sat.encode import Encoder, formula_size
from auditor_bnn_sat.fold import extract_network
from auditor_bnn_sat.phases import relaxed_bits
from auditor_bnn_sat.solve import Engine
from auditor_bnn_sat.train import accuracy, export_onnx, input_shape_for, load_bnn, load_mnist, train_bnn

log = logging.getLogger("bench_bnn_sat")
ROOT = Path(__file__).resolve().parent

NETS = [("100-100-10", 0.0), ("784-100-10", 0.0), ("784-100-100-10", 0.0), ("784-200-100-100-100-10", 0.0),
        ("784-100-10", 0.9)]
# (label, solver, encoding, strategy, phases, conflict budget); phases: none | random | relax | seed
SCRATCH = [
    ("mc/native/direct", "mc", "native", "direct", "none", None),
    ("mc/hybrid/direct", "mc", "hybrid", "direct", "none", None),
    ("mc/native/direct+restarts", "mc", "native", "direct", "random", 2000),
    ("mc/native/decompose+restarts", "mc", "native", "decompose", "random", 2000),
    ("g4/cnf/direct", "g4", "cnf", "direct", "none", None),
    ("mcb/cnf/direct", "mcb", "cnf", "direct", "none", None),
    ("gc4/native/direct", "gc4", "native", "direct", "none", None),
    ("mc/native/direct+relax", "mc", "native", "direct", "relax", None),
]
# which scratch configurations each net gets (None: all), to keep the default run near 20 minutes
SCRATCH_PICK = {
    "784-100-10": ("mc/native/direct", "mc/native/direct+restarts", "mc/native/decompose+restarts",
                   "mc/native/direct+relax"),
    "784-100-100-10": ("mc/native/direct+restarts", "mc/native/direct+relax"),
    "784-200-100-100-100-10": ("mc/native/direct+restarts", "mc/native/direct+relax"),
    "784-100-10-sparse0.9": ("mc/native/direct", "mc/hybrid/direct", "mc/native/direct+restarts",
                             "mcb/cnf/direct", "mc/native/direct+relax"),
}
SEEDED = [
    ("mc/native/direct", "mc", "native", "direct", "seed", None),
    ("mc/hybrid/direct", "mc", "hybrid", "direct", "seed", None),
    ("mc/native/decompose", "mc", "native", "decompose", "seed", 2000),
    ("gc4/native/direct", "gc4", "native", "direct", "seed", None),
]


def net_name(arch: str, sparsity: float) -> str:
    return arch + (f"-sparse{sparsity:g}" if sparsity else "")


def get_net(work: Path, arch_text: str, sparsity: float, epochs: int) -> tuple[torch.nn.Module, dict]:
    """Train or load a BNN; returns the model and its meta data."""
    folder = work / net_name(arch_text, sparsity)
    arch = [int(a) for a in arch_text.split("-")]
    shape = input_shape_for(arch[0])
    if (folder / "model.pt").is_file() and (folder / "meta.json").is_file():
        return load_bnn(folder / "model.pt"), json.loads((folder / "meta.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    x, y = load_mnist("train", shape[1])
    xt, yt = load_mnist("test", shape[1])
    start = time.time()
    model = train_bnn(arch, x, y, epochs=epochs, sparsity=sparsity)
    torch.save({"arch": arch, "input_shape": shape, "sparsity": sparsity, "threshold": float(model[1].threshold),
                "state_dict": model.state_dict()}, folder / "model.pt")
    export_onnx(model, folder / "model.onnx", shape)
    meta = {"arch": arch, "sparsity": sparsity, "epochs": epochs, "test_accuracy": accuracy(model, xt, yt),
            "train_seconds": round(time.time() - start, 1)}
    (folder / "meta.json").write_text(json.dumps(meta))
    return model, meta


def check_inference(model: torch.nn.Module, net, folder: Path, xt: torch.Tensor) -> dict:
    """Integer form vs torch vs onnxruntime on test images; SAT inference mode on a few."""
    import onnxruntime as ort

    with torch.no_grad():
        torch_pred = model(xt).argmax(1).numpy()
    int_pred = net.predict_bits(net.to_bits(xt))
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_pred = sess.run(None, {sess.get_inputs()[0].name: xt.numpy()})[0].argmax(1)
    agree, undecided, times = 0, 0, []
    with Engine(net, solver="mc", encoding="hybrid") as engine:
        for b, want in zip(net.to_bits(xt[:5]), torch_pred[:5]):
            start = time.perf_counter()
            try:
                agree += int(engine.infer(b, time_limit=20) == want)
            except TimeoutError:
                undecided += 1
            times.append(time.perf_counter() - start)
    return {"images": len(xt), "integer_vs_torch": float((int_pred == torch_pred).mean()),
            "onnx_vs_torch": float((onnx_pred == torch_pred).mean()),
            "sat_inference_images": 5, "sat_inference_agree": agree, "sat_inference_undecided_20s": undecided,
            "sat_inference_median_s": round(statistics.median(times), 3)}


def sizes(net) -> dict:
    out = {}
    for enc in ("native", "hybrid", "cnf"):
        e = Encoder(net, enc)
        if enc == "cnf" and e.estimate_cells() > 5_000_000:
            out[enc] = {"cells": e.estimate_cells(), "skipped": "over 5M counter cells"}
            continue
        t0 = time.perf_counter()
        out[enc] = formula_size(e.full(), e.top) | {"encode_s": round(time.perf_counter() - t0, 2)}
    return out


def run_config(net, cfg: tuple, classes: list[int], limit: float, seeds: dict[int, np.ndarray]) -> dict:
    label, solver, enc, strategy, phases, budget = cfg
    t0 = time.perf_counter()
    try:
        engine = Engine(net, solver=solver, encoding=enc, strategy=strategy, seed=0)
    except ValueError as exc:
        return {"label": label, "skipped": str(exc)}
    build = time.perf_counter() - t0
    rows = []
    with engine:
        for t in classes:
            start = time.perf_counter()
            ph = None
            if phases == "seed":
                ph = seeds[t]
            elif phases == "random":
                ph = engine.random_bits()
            elif phases == "relax":
                ph, _ = relaxed_bits(net, t, time_limit=min(5.0, limit))
            r = engine.query(t, time_limit=max(0.1, limit - (time.perf_counter() - start)), phases=ph,
                             conflict_budget=budget)
            rows.append({"class": t, "status": r.status, "time_s": round(time.perf_counter() - start, 4)})
            log.info("  %-28s class %d: %-7s %.3fs", label, t, r.status, rows[-1]["time_s"])
    times = [r["time_s"] for r in rows]
    answered = [r for r in rows if r["status"] != "timeout"]
    return {"label": label, "solver": solver, "encoding": enc, "strategy": strategy, "phases": phases,
            "conflict_budget": budget, "build_s": round(build, 2), "size": engine.size, "classes": rows,
            "answered": len(answered), "median_s": statistics.median(times), "max_s": max(times)}


def enumeration(net, model, seed_bits: np.ndarray, target: int, seconds: float) -> list[dict]:
    """Distinct verified preimages per minute for one class, three ways."""
    out = []
    modes = (("blocking, phase saving, no restarts", {}),
             ("blocking, restarts near found inputs", {"conflict_budget": 1000}),
             ("blocking, random phases per input", {"randomize": True, "conflict_budget": 1000}),
             ("Hamming ball d=40 around seed", {"hamming": (seed_bits, 40), "conflict_budget": 1000}))
    for label, kwargs in modes:
        with Engine(net, solver="mc", encoding="native") as engine:
            r = engine.query(target, count=10**7, time_limit=seconds, phases=seed_bits, **kwargs)
        found = np.array(r.found)
        with torch.no_grad():
            ok = (model(net.to_images(found)).argmax(1) == target).all().item() if len(found) else True
        distinct = len({f.tobytes() for f in found})
        gaps = np.diff([0.0] + r.times + [r.time_s])  # the tail counts: a stall at the end is a stall
        out.append({"mode": label, "class": target, "seconds": round(r.time_s, 2), "found": len(found),
                    "distinct": distinct, "verified": bool(ok), "per_minute": round(distinct / r.time_s * 60),
                    "longest_gap_s": round(float(gaps.max()), 3), "status": r.status})
        log.info("  enumeration %-30s %d distinct in %.1fs (longest gap %.3fs)", label, distinct, r.time_s,
                 float(gaps.max()))
    return out


def print_table(results: dict) -> None:
    print(f"\n{'net':32} {'mode':8} {'config':30} {'answered':>8} {'median s':>9} {'max s':>8}  size (vars/clauses/native)")
    for name, res in results["nets"].items():
        for mode in ("scratch", "seeded"):
            for c in res.get(mode, []):
                if "skipped" in c:
                    print(f"{name:32} {mode:8} {c['label']:30} skipped: {c['skipped'][:60]}")
                    continue
                s = c["size"]
                print(f"{name:32} {mode:8} {c['label']:30} {c['answered']:>5}/{len(c['classes']):<2} "
                      f"{c['median_s']:>9.3f} {c['max_s']:>8.3f}  {s['variables']}/{s['clauses']}/{s['native_constraints']}")
    for e in results.get("enumeration", []):
        print(f"enumeration 784-100-10 class {e['class']} {e['mode']:32} {e['per_minute']:>8} /min "
              f"({e['distinct']} in {e['seconds']}s, longest gap {e['longest_gap_s']}s, verified {e['verified']})")


def goals(results: dict) -> dict:
    nets = results["nets"]

    def best(name: str, mode: str, pred) -> dict | None:
        cands = [c for c in nets.get(name, {}).get(mode, []) if "skipped" not in c and pred(c)]
        return min(cands, key=lambda c: (-c["answered"], c["median_s"])) if cands else None

    out = {}
    def sat_only(c):
        return c["phases"] != "relax"
    for label, pred in (("sat_only", sat_only), ("any", lambda c: True)):
        b = best("100-100-10", "scratch", pred)
        out[f"10x10_scratch_median_lt_1s[{label}]"] = b and {"config": b["label"], "median_s": b["median_s"],
                                                               "met": b["median_s"] < 1 and b["answered"] == len(b["classes"])}
        b = best("784-100-10", "scratch", pred)
        out[f"784-100-10_scratch_all_answered_median_lt_10s_max_lt_120s[{label}]"] = b and {
            "config": b["label"], "answered": b["answered"], "median_s": b["median_s"], "max_s": b["max_s"],
            "met": b["answered"] == len(b["classes"]) and b["median_s"] < 10 and b["max_s"] < 120}
    seeded = {n: best(n, "seeded", lambda c: True) for n in nets}
    out["seeded_lt_0.1s_all_nets"] = {n: b and {"config": b["label"], "max_s": b["max_s"], "median_s": b["median_s"]}
                                      for n, b in seeded.items()}
    out["seeded_lt_0.1s_all_nets"]["met"] = all(b and b["max_s"] < 0.1 for b in seeded.values())
    enum = results.get("enumeration", [])
    out["enumeration_ge_1000_per_min"] = {"best": max((e["per_minute"] for e in enum), default=0),
                                          "met": any(e["per_minute"] >= 1000 and e["verified"] for e in enum)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 classes, 2 s limits, 2 training epochs, 10 s enumeration")
    parser.add_argument("--work", type=Path, default=Path("/tmp/auditor-bnn-bench"), help="trained nets are cached here")
    parser.add_argument("--limit", type=float, default=None,
                        help="seconds per scratch query (default 5 on 10x10, 10 on 28x28; quick 2); seeded: at most 2")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bnn_sat.json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nets", default=None, help="comma-separated subset of nets to run, e.g. 784-100-10")
    parser.add_argument("--merge", action="store_true", help="keep the other nets' results already in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("auditor_bnn_sat").setLevel(logging.ERROR)
    if datasets_dir() is None:
        print("MNIST not found (set AUDITOR_DATASETS); nothing to benchmark", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    limit = args.limit or (2.0 if args.quick else 10.0)
    epochs = 2 if args.quick else 10
    work = args.work / ("quick" if args.quick else "full")
    classes = [0, 1, 2] if args.quick else list(range(10))
    results: dict = {"quick": args.quick, "scratch_limit_s": limit, "nets": {}, "started": time.strftime("%F %T")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and args.out.is_file():
        results["nets"] = json.loads(args.out.read_text()).get("nets", {})
        results["enumeration"] = json.loads(args.out.read_text()).get("enumeration", [])
    for arch, sparsity in NETS:
        name = net_name(arch, sparsity)
        if args.nets and name not in args.nets.split(","):
            continue
        log.info("net %s", name)
        model, meta = get_net(work, arch, sparsity, epochs)
        net = extract_network(model)
        side = model.input_shape[1]
        xt, yt = load_mnist("test", side)
        with torch.no_grad():
            pred = model(xt).argmax(1)
        seeds = {}  # first test image the model classifies as t (correctly labelled when possible)
        for t in classes:
            idx = ((yt == t) & (pred == t)).nonzero().flatten().tolist() or (pred == t).nonzero().flatten().tolist()
            seeds[t] = net.to_bits(xt[idx[:1]])[0] if idx else None
        res = {"meta": meta, "summary": net.summary(), "exact": net.exact, "notes": net.notes,
               "first_layer_median_D": float(np.median((net.layers[0].threshold + np.abs(net.layers[0].weight).sum(1)) / 2)),
               "inference": check_inference(model, net, work / name, xt[:2000]), "sizes": sizes(net)}
        pick = SCRATCH_PICK.get(name)
        scratch = [c for c in SCRATCH if pick is None or c[0] in pick]
        net_limit = limit if args.limit or args.quick else (5.0 if arch == "100-100-10" else 10.0)
        res["scratch_limit_s"], res["seeded_limit_s"] = net_limit, min(net_limit, 2.0)
        res["scratch"] = [run_config(net, cfg, classes, net_limit, seeds) for cfg in scratch]
        res["seeded"] = [run_config(net, cfg, classes, min(net_limit, 2.0), seeds) for cfg in SEEDED]
        results["nets"][name] = res
        if arch == "784-100-10" and not sparsity:
            results["enumeration"] = enumeration(net, model, seeds[classes[0]], classes[0], 10.0 if args.quick else 30.0)
        results["goals"] = goals(results)
        args.out.write_text(json.dumps(results, indent=1))
    results["finished"] = time.strftime("%F %T")
    args.out.write_text(json.dumps(results, indent=1))
    print_table(results)
    print(json.dumps(results["goals"], indent=1))
    from sections import write  # the docs sections rendered from the JSON just written

    write(['bench_bnn_sat'])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
