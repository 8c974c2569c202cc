"""kkt against tldr and inversion at equal wall-clock budgets, on targets trained by documented recipes.

    OMP_NUM_THREADS=2 python bench/bench_kkt.py                       # every row, 1200 s per attack
    python bench/bench_kkt.py --rows mnist-mlp-100 --methods kkt      # one row, one attack
    python bench/bench_kkt.py --quick                                 # 60 s per attack, the 100-image MLP and the 2,000 control

Targets and their recipes: bench/kkt_targets.py (cached in bench/cache/). Scoring goes through the core
(auditor.engine.runner.run_audit) with the affine comparison when the core has it, for every method alike. Finished
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
from kkt_targets import ROWS, Recipe, target

log = logging.getLogger("bench.kkt")
RESULTS = Path(__file__).resolve().parent / "results" / "kkt.json"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- kkt-bench:start -->", "<!-- kkt-bench:end -->"
COLUMNS = ["row", "method", "budget_s", "status", "steps", "likely_copies", "distinct_members", "null_copy_rate", "p_value", "reconstructions",
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


def comparison() -> str | None:
    from auditor.scoring import ScoringConfig

    return "affine" if "comparison" in ScoringConfig.model_fields else None


def run_one(r: Recipe, method: str, budget: float, model, data, options: dict | None = None) -> dict[str, object]:
    from auditor.engine.config import AuditConfig
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit
    from auditor.models.model import ModelSpec

    scoring = {"comparison": comparison()} if comparison() else {}
    config = AuditConfig.model_validate({
        "model": ModelSpec(source=f"bench:kkt-{r.name}").model_dump(), "scoring": scoring,
        "run": {"plugins": [method], "show_progress": False, "seed": 0},
        "attacks": {method: {**attack_options(method, budget, r), **(options or {}), "time_budget_s": budget + 120}}})
    start = time.monotonic()
    report = run_audit(config, get_plugin_manager(), model=model, data=data)
    result = report.results[-1]
    s = result.scores
    samples = s.samples if s else []
    copies = [x for x in samples if x.likely_copy]
    return {"row": r.name, "method": method, "budget_s": budget, "status": result.status, "reason": result.reason,
            "comparison": getattr(s, "comparison", "ssim") if s else None,
            "reconstructions": len(samples), "likely_copies": len(copies),
            "distinct_members": len({x.nearest_member for x in copies}),
            "null_copy_rate": getattr(s, "null_copy_rate", None) if s else None,
            "p_value": getattr(s, "copy_p_value", None) if s else None,
            "alpha": getattr(s, "alpha", None) if s else None,
            "copy_ssims": sorted((round(x.nearest_member_ssim, 3) for x in copies), reverse=True),
            "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
            "seconds": round(time.monotonic() - start, 1)}


def markdown(payload: dict) -> str:
    rows = [{**e, "train_loss": e.get("train_loss"), "test_acc": e.get("test_accuracy")} for e in payload["entries"]]
    for e in rows:
        e["steps"] = int(e.get("metrics", {}).get("steps", 0)) if e["method"] == "kkt" else ""
        e["null_copy_rate"] = "" if e.get("null_copy_rate") is None else f"{e['null_copy_rate']:.3f}"
        e["p_value"] = "" if e.get("p_value") is None else f"{e['p_value']:.2g}"
        e["train_loss"] = "" if e["train_loss"] is None else f"{e['train_loss']:.1e}"
    head = (f"Comparison: {payload['comparison'] or 'plain SSIM'}; likely copies under the core's calibrated rule; "
            "distinct_members = members that at least one likely copy points to; null_copy_rate = held-out real non-members "
            "scored as reconstructions that the rule calls copies. Controls should show 0.\n\n")
    body = table(rows, COLUMNS)
    return f"{START}\n## kkt: reconstructing training images from the weights\n\n`python bench/bench_kkt.py` " \
           f"(generated from bench/results/kkt.json)\n\n{head}```\n{body}\n```\n{END}\n"


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
    p.add_argument("--no-docs", action="store_true", help="print the section only (run_all.py writes the document)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    budget = args.budget or (60.0 if args.quick else 1200.0)
    names = args.rows.split(",") if args.rows else (["mnist-mlp-100", "control-mnist-mlp-2000"] if args.quick else [r.name for r in ROWS])
    payload = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"entries": []}
    payload["comparison"] = comparison()
    done = {(e["row"], e["method"], e["budget_s"]) for e in payload["entries"] if e.get("status") == "completed"}
    for r in (x for x in ROWS if x.name in names):
        model, data, facts = target(r, CACHE)
        log.info("%s: %s", r.name, facts)
        for method in args.methods.split(","):
            if (r.name, method, budget) in done and not args.force:
                continue
            entry = {**run_one(r, method, budget, model, data), **facts, "control": r.control, "threads": torch.get_num_threads()}
            if RESULTS.exists():  # other bench_kkt processes may have written rows meanwhile: merge, don't overwrite
                payload["entries"] = json.loads(RESULTS.read_text())["entries"]
            payload["entries"] = [e for e in payload["entries"] if (e["row"], e["method"], e["budget_s"]) != (r.name, method, budget)]
            payload["entries"].append(entry)
            write_json("kkt", {k: v for k, v in payload.items() if k not in ("machine", "created")})
            log.info("%s %s: %d likely copies, %d distinct members (null rate %s)", r.name, method, entry["likely_copies"],
                     entry["distinct_members"], entry["null_copy_rate"])
    payload = json.loads(RESULTS.read_text()) if RESULTS.exists() else payload
    section = markdown(payload)
    print(section)
    if not args.no_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
