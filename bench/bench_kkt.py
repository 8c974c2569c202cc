"""kkt against tldr and inversion at equal wall-clock budgets, on targets trained by documented recipes.

    OMP_NUM_THREADS=2 python bench/bench_kkt.py                       # every row, 1200 s per attack
    python bench/bench_kkt.py --rows mnist-mlp-100 --methods kkt      # one row, one attack
    python bench/bench_kkt.py --quick                                 # 60 s per attack, the 100-image MLP and the 2,000 control
    python bench/bench_kkt.py --device cuda --budget 180 --methods kkt   # where a GPU is lent

Without the shared datasets a row reads its members and references from bench/cache/kkt-data-<row>-s0.npz (written
on the first run that had them), so a lent GPU machine audits exactly the images the CPU runs did.

Targets and their recipes: bench/kkt_targets.py (cached in bench/cache/). Scoring goes through the core
(auditor.engine.runner.run_audit) with the affine comparison, for every method alike. Finished
(row, method, budget) entries in bench/results/kkt.json are skipped (``--force`` reruns them). Writes
bench/results/kkt.json and the generated kkt section of docs/benchmarks.md; prints the same table.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, table, write_json
from kkt_summary import summary
from kkt_targets import ROWS, Recipe, target

log = logging.getLogger("bench.kkt")
RESULTS = Path(__file__).resolve().parent / "results" / "kkt.json"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- kkt-bench:start -->", "<!-- kkt-bench:end -->"
COLUMNS = ["row", "method", "variant", "device", "concurrent", "budget_s", "status", "steps", "likely_copies", "distinct_members", "null_copy_rate", "p_value", "reconstructions",
           "train_loss", "test_acc", "seconds"]


def attack_options(method: str, budget: float, r: Recipe) -> dict[str, object]:
    """Equal wall-clock budgets: each method's own time limits add up to ``budget``."""
    if method == "kkt":
        opts: dict[str, object] = {"seconds": budget}
        if r.weight_decay:
            opts.update(form="auto", weight_decay=r.weight_decay)
        return opts
    if method == "tldr":
        return {"inversion_seconds": 0.4 * budget, "reconstruction_seconds": 0.6 * budget, "inversion_steps": 10**6,
                "reconstruction_steps": 10**6}
    return {"train_seconds": budget, "steps": 10**6}


COMPARISON = "affine"   # the core's contrast-invariant comparison (affine intensity fit before SSIM), for every method


def run_one(r: Recipe, method: str, budget: float, model, data, options: dict | None = None, device: str = "cpu") -> dict[str, object]:
    from auditor.engine.config import AuditConfig
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit
    from auditor.models.model import ModelSpec

    config = AuditConfig.model_validate({
        "model": ModelSpec(source=f"bench:kkt-{r.name}").model_dump(), "scoring": {"comparison": COMPARISON},
        "run": {"plugins": [method], "show_progress": False, "seed": 0, "device": device},
        "attacks": {method: {**attack_options(method, budget, r), **(options or {}), "time_budget_s": budget + 120}}})
    start = time.monotonic()
    report = run_audit(config, get_plugin_manager(), model=model, data=data)
    result = report.results[-1]
    s = result.scores
    samples = s.samples if s else []
    copies = [x for x in samples if x.likely_copy]
    return {"row": r.name, "method": method, "device": device, "budget_s": budget, "status": result.status, "reason": result.reason,
            "comparison": s.comparison if s else None,
            "reconstructions": len(samples), "likely_copies": len(copies),
            "distinct_members": len({x.nearest_member for x in copies}),
            "null_copy_rate": s.null_copy_rate if s else None,
            "p_value": s.copy_p_value if s else None,
            "alpha": s.alpha if s else None,
            "copy_ssims": sorted((round(x.nearest_member_ssim, 3) for x in copies), reverse=True),
            "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
            "seconds": round(time.monotonic() - start, 1)}


def key(e: dict) -> tuple[str, str, float, str, str]:
    return e["row"], e["method"], e["budget_s"], e.get("device", "cpu"), e.get("variant", "")


def gpu_name(device: str) -> dict[str, str]:
    return {"gpu": torch.cuda.get_device_name()} if device == "cuda" else {}


def markdown(payload: dict) -> str:
    rows = [{**e, "train_loss": e.get("train_loss"), "test_acc": e.get("test_accuracy")} for e in payload["entries"]]
    for e in rows:
        e["device"] = e.get("gpu", "cpu")
        e["variant"] = e.get("variant") or "default"
        e["concurrent"] = e.get("concurrent", 1)
        e["steps"] = int(e.get("metrics", {}).get("steps", 0)) if e["method"] == "kkt" else ""
        e["null_copy_rate"] = "" if e.get("null_copy_rate") is None else f"{e['null_copy_rate']:.3f}"
        e["p_value"] = "" if e.get("p_value") is None else f"{e['p_value']:.2g}"
        e["train_loss"] = "" if e["train_loss"] is None else f"{e['train_loss']:.1e}"
    head = (f"Comparison: {payload['comparison'] or 'plain SSIM'}; likely copies under the core's calibrated rule; "
            "distinct_members = members that at least one likely copy points to; null_copy_rate = held-out real non-members "
            "scored as reconstructions that the rule calls copies. Controls should show 0.\n\n")
    body = table(rows, COLUMNS)
    return f"{START}\n## kkt: reconstructing training images from the weights\n\n`python bench/bench_kkt.py` " \
           f"(generated from bench/results/kkt.json)\n\n{summary(payload)}\nEvery run:\n\n{head}```\n{body}\n```\n{END}\n"


def write_docs(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[:text.index(START)] + section.strip() + "\n" + text[text.index(END) + len(END):].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rows", help="comma-separated row names (default: all; --quick: the 100-image MLP and the 2,000 control)")
    p.add_argument("--methods", default="kkt,tldr,inversion")
    p.add_argument("--budget", type=float, help="seconds per attack (default 1200; --quick 60)")
    p.add_argument("--force", action="store_true", help="rerun finished entries")
    p.add_argument("--variant", default="", help="label of a non-default option set (part of an entry's key)")
    p.add_argument("--kkt-options", type=json.loads, default={}, help='kkt options over the defaults, as JSON: \'{"candidates_per_class": 100}\'')
    p.add_argument("--results", type=Path, default=RESULTS, help="results file (parallel processes: one each, merged afterwards)")
    p.add_argument("--merge", type=Path, nargs="+", help="only merge these results files' entries into --results (parallel processes)")
    p.add_argument("--concurrent", type=int, default=1, help="--merge: how many attack processes shared the machine when they ran")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where targets train and attacks run")
    p.add_argument("--no-docs", action="store_true", help="print the section only (run_all.py writes the document)")
    args = p.parse_args()
    if args.kkt_options and not args.variant:
        p.error("--kkt-options needs a --variant label: entries are keyed by it, and a default row must hold default options")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    budget = args.budget or (60.0 if args.quick else 1200.0)
    names = args.rows.split(",") if args.rows else (["mnist-mlp-100", "control-mnist-mlp-2000"] if args.quick else [r.name for r in ROWS])
    results = args.results
    payload = json.loads(results.read_text()) if results.exists() else {"entries": []}
    if args.merge:
        merged = [{**e, "concurrent": args.concurrent} for f in args.merge for e in json.loads(f.read_text())["entries"]
                  if e.get("device", "cpu") == args.device]
        keys = {key(e) for e in merged}
        payload["entries"] = [e for e in payload["entries"] if key(e) not in keys] + merged
        write_json("kkt", {k: v for k, v in payload.items() if k not in ("machine", "created")}, results)
        log.info("merged %d entries from %d files into %s", len(merged), len(args.merge), results)
        return
    payload["comparison"] = COMPARISON
    done = {key(e) for e in payload["entries"] if e.get("status") == "completed"}
    for r in (x for x in ROWS if x.name in names):
        model, data, facts = target(r, CACHE, args.device)
        log.info("%s: %s", r.name, facts)
        for method in args.methods.split(","):
            if (r.name, method, budget, args.device, args.variant) in done and not args.force:
                continue
            options = args.kkt_options if method == "kkt" else {}
            entry = {**run_one(r, method, budget, model, data, options, device=args.device), **facts, "control": r.control,
                     "threads": torch.get_num_threads(), **gpu_name(args.device),
                     **({"variant": args.variant, "options": options} if args.variant else {})}
            if results.exists():  # other bench_kkt processes may have written rows meanwhile: merge, don't overwrite
                payload["entries"] = json.loads(results.read_text())["entries"]
            payload["entries"] = [e for e in payload["entries"] if key(e) != key(entry)]
            payload["entries"].append(entry)
            write_json("kkt", {k: v for k, v in payload.items() if k not in ("machine", "created")}, results)
            log.info("%s %s: %d likely copies, %d distinct members (null rate %s)", r.name, method, entry["likely_copies"],
                     entry["distinct_members"], entry["null_copy_rate"])
    payload = json.loads(results.read_text()) if results.exists() else payload
    section = markdown(payload)
    print(section)
    if not args.no_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
