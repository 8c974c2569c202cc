"""Does the choice of non-members move the membership verdict? The same models, the same attack, two reference sets.

    OMP_NUM_THREADS=1 python bench/bench_reference_shift.py            # every row, both reference sets, one thread
    OMP_NUM_THREADS=2 python bench/bench_reference_shift.py            # the same with two threads (rows are kept per thread count)
    python bench/bench_reference_shift.py --docs                       # only rewrite the docs section from the JSON

The membership plugin with two reference models (the verdict ladder's setting) audits each model twice:
against the MNIST test set, and against class-balanced MNIST training images that the model did not train on
(bench/verdict_ladder.py's ``reference_set``). MNIST's test digits were written by other people than its
training digits, so the first compares members with a shifted population: anything that separates the two
writer pools reads as membership. The second draws members and non-members from one pool, so only what the
model learned from its members separates them. The rows are ladder models (bench/verdict_ladder.py): two of
10,000 images (safe by the ladder's definition), the canary model and its control without canaries.
Writes bench/results/reference_shift.json and its section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402 - imported after OMP_NUM_THREADS is set
from common import table, write_json  # noqa: E402 - imported after sys.path is set

log = logging.getLogger("bench.reference_shift")
ROWS = ("mlp-10000", "cnn-10000", "mlp-1000", "canary-mlp")
OPTIONS = {"reference_models": 2}
KEYS = ("auc", "auc_ci_low", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low", "tpr_at_0.1pct_fpr", "tpr_at_0.1pct_fpr_ci_low",
        "members_above_heldout", "exposure_p_value", "members_scored", "heldout_scored")
START, END = "<!-- bench_reference_shift:start -->", "<!-- bench_reference_shift:end -->"


def audit_row(name: str) -> list[dict]:
    """The membership plugin on ladder row ``name``, against the test set and against unused training images."""
    from verdict_ladder import FULL, build

    from auditor.data.sets import AuditData, load_images
    from auditor.lab.presets import preset

    row = next(r for r in FULL if r.name == name)
    model, data, facts = build(row)
    test = AuditData(data.members, load_images(preset(row.dataset).test), 10, data.class_names)
    return [audit(model, name, "test", test, f"{row.dataset}-test"),
            audit(model, name, "unused-train", data, facts["reference_source"])]


def audit(model, name: str, which: str, data, source: str) -> dict:
    """One membership audit of ``model`` (ladder row ``name``) with ``data``'s non-members (``which``, from ``source``)."""
    from auditor.engine.config import AuditConfig
    from auditor.engine.plugins import get_plugin_manager
    from auditor.engine.runner import run_audit
    from auditor.models.model import ModelSpec

    config = AuditConfig.model_validate({"model": ModelSpec(source=f"bench:shift-{name}").model_dump(),
                                         "run": {"plugins": ["membership"], "show_progress": False, "seed": 0},
                                         "attacks": {"membership": OPTIONS}})
    start = time.monotonic()
    report = run_audit(config, get_plugin_manager(), model=model, data=data)
    (result,) = [r for r in report.results if r.attack == "membership"]
    (finding,) = result.findings
    entry = {"row": name, "reference": which, "threads": torch.get_num_threads(), "reference_source": source, "severity": finding.severity.value,
             "rule": finding.metric, "seconds": round(time.monotonic() - start, 1), **{k: result.metrics.get(k) for k in KEYS}}
    log.info("%s against %s: %s (%s), AUC %.3f, %s exposed", name, which, entry["severity"], entry["rule"], entry["auc"],
             entry["members_above_heldout"])
    return entry


def render(payload: dict) -> str:
    rows = payload["rows"]
    lines = [START, "## Membership against shifted and unshifted non-members", "",
             f"`python bench/bench_reference_shift.py` (generated from bench/results/reference_shift.json, {payload.get('created', '')}): "
             "the membership plugin with two reference models on ladder models, against the MNIST test set and against "
             "unused MNIST training images. Exposed: members above every held-out non-member (`p`: the chance of that many "
             "without leakage).", "",
             "Torch threads change the reference models' floating-point sums and so their training: rows that differ only "
             "in threads show how much of a level is that noise.", "",
             "| model | non-members | threads | AUC | TPR @ 1% FPR | TPR @ 0.1% FPR | exposed (p) | level (rule) | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (ROWS.index(r["row"]) if r["row"] in ROWS else len(ROWS), r["reference"], _threads(r))):
        lines.append(f"| {r['row']} | {r['reference']} | {_threads(r)} | {r['auc']:.3f} [{r['auc_ci_low']:.3f}] | {_pct(r, '1pct')} | {_pct(r, '0.1pct')} | "
                     f"{r['members_above_heldout']:.0f} of {r['members_scored']:,.0f} ({r['exposure_p_value']:.2g}) | "
                     f"**{r['severity']}** ({r['rule']}) | {r['seconds']:.0f} |")
    lines.append("")
    for threads in sorted({_threads(r) for r in rows}):
        alarms = {which: [r["row"] for r in rows if r["reference"] == which and _threads(r) == threads and r["row"].endswith("-10000")
                          and r["severity"] in ("medium", "high")] for which in ("test", "unused-train")}
        lines.append(f"Models of 10,000 images at MEDIUM or above, {threads} thread(s): {len(alarms['test'])} against the test set "
                     f"({', '.join(alarms['test']) or 'none'}), {len(alarms['unused-train'])} against unused training images "
                     f"({', '.join(alarms['unused-train']) or 'none'}).")
    lines.append(END)
    return "\n".join(lines) + "\n"


def _threads(r: dict) -> int:
    return r.get("threads", 1)   # the first rows were written by one-thread runs before the field existed


def _pct(r: dict, key: str) -> str:
    value, low = r.get(f"tpr_at_{key}_fpr"), r.get(f"tpr_at_{key}_fpr_ci_low")
    return "not supported" if value is None else f"{value:.1%} (≥ {low:.1%})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", action="store_true", help="only rewrite the docs section from the JSON")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    out = HERE / "results" / "reference_shift.json"
    if not args.docs:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        new = [entry for name in ROWS for entry in audit_row(name)]
        fresh = {(e["row"], e["reference"], e["threads"]) for e in new}
        kept = [e for e in (json.loads(out.read_text())["rows"] if out.exists() else [])
                if (e["row"], e["reference"], _threads(e)) not in fresh]
        write_json("reference_shift", {"options": OPTIONS, "rows": kept + new}, out)
    from sections import write

    payload = json.loads(out.read_text())
    print(table(payload["rows"], ["row", "reference", "threads", "auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "members_above_heldout",
                                  "exposure_p_value", "severity", "rule", "seconds"]))
    for line in write(["bench_reference_shift"]):
        log.info("wrote %s", line)


if __name__ == "__main__":
    main()
