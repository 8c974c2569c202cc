"""The verdict ladder: models with known leakage, audited by every builtin attack, scored by one leakage score.

    OMP_NUM_THREADS=2 python bench/bench_verdict.py            # the full ladder, each attack at its default budget
    OMP_NUM_THREADS=2 python bench/bench_verdict.py --quick    # 5 models, smaller budgets (under 20 minutes on 2 cores)
    python bench/bench_verdict.py --rows mlp-50,cnn-50         # some rows only
    python bench/bench_verdict.py --docs                       # only rewrite the docs section from the JSON

Recipes and seeds: bench/verdict_ladder.py; the audit and the leakage score: bench/verdict_audit.py; the bars
(Spearman per architecture, no false alarms, known leaks flagged): bench/verdict_checks.py. Attacks: every
installed plugin of the ``auditor`` distribution (``audit plugins``), so a new builtin plugin is picked up and
the rows audited without it are redone, as are rows of an older ``LADDER_VERSION`` (verdict_ladder.py).
Results are written row by row to bench/results/verdict.json; a re-run skips finished rows of the same profile
(``--force`` redoes them). ``--workers N`` (N > 1) runs rows as Ray tasks through ``auditor.batch.engine.run_cells``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch  # noqa: E402 - imported after sys.path and OMP_NUM_THREADS are set
from common import table, write_json  # noqa: E402 - imported after sys.path and OMP_NUM_THREADS are set
from verdict_audit import audit_row, builtin_attacks, refresh_scores  # noqa: E402 - imported after sys.path and OMP_NUM_THREADS are set
from verdict_checks import checks, render  # noqa: E402 - imported after sys.path and OMP_NUM_THREADS are set
from verdict_ladder import FULL, LADDER_VERSION, QUICK  # noqa: E402 - imported after sys.path and OMP_NUM_THREADS are set

log = logging.getLogger("bench.verdict")
RESULTS = HERE / "results" / "verdict.json"
DOCS = HERE.parent / "docs" / "benchmarks.md"
START, END = "<!-- bench_verdict:start -->", "<!-- bench_verdict:end -->"
COLUMNS = ["row", "n_train", "test_accuracy", "score", "distinct_members", "membership_auc", "reconstruction_score", "score_attack",
           "membership_tpr_at_1pct_fpr", "highest",
           "fails_gate", "audit_seconds"]


def load() -> dict:
    """The results file, each row's derived scores recomputed (so that a change of the score's definition reaches every row)."""
    payload = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"entries": []}
    return payload | {"entries": [refresh_scores(e) for e in payload["entries"]]}


def save(payload: dict) -> None:
    write_json("verdict", {k: v for k, v in payload.items() if k not in ("machine", "created")})


def write_docs(payload: dict) -> None:
    sections = [render(payload, p, f"<!-- bench_verdict_{p}:start -->" if p == "quick" else START,
                       f"<!-- bench_verdict_{p}:end -->" if p == "quick" else END)
                for p in ("full", "quick") if p == "full" or any(e["profile"] == p for e in payload["entries"])]
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    for section in sections:
        start, end = section.splitlines()[0], section.rstrip("\n").splitlines()[-1]
        if start in text and end in text:
            text = text[:text.index(start)] + section.rstrip("\n") + text[text.index(end) + len(end):]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller ladder and budgets")
    p.add_argument("--rows", help="comma-separated row names (default: the whole ladder of the profile)")
    p.add_argument("--force", action="store_true", help="redo finished rows")
    p.add_argument("--workers", type=int, default=1, help="rows audited at a time (> 1: Ray tasks via run_cells)")
    p.add_argument("--docs", action="store_true", help="only recompute the derived scores in the JSON and regenerate the docs section")
    p.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    payload = load()
    profile = "quick" if args.quick else "full"
    ladder = QUICK if args.quick else FULL
    if not args.docs:
        from auditor.batch.engine import Cell, run_cells

        attacks = builtin_attacks()
        names = args.rows.split(",") if args.rows else [r.name for r in ladder]
        unknown = sorted(set(names) - {r.name for r in FULL})
        if unknown:
            raise SystemExit(f"unknown rows {unknown}; expected some of {[r.name for r in FULL]}")
        done = {e["row"] for e in payload["entries"]
                if e["profile"] == profile and sorted(e["attacks_run"]) == attacks and e.get("ladder_version") == LADDER_VERSION}
        todo = [n for n in names if args.force or n not in done]
        log.info("attacks %s; %d rows to run: %s", attacks, len(todo), todo)
        threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
        torch.set_num_threads(threads)
        if args.workers > 1:  # Ray workers import verdict_audit from bench/
            os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cells = [Cell(key=n, fn=audit_row, payload={"row": n, "quick": args.quick, "attacks": attacks, "threads": threads},
                      num_cpus=float(threads)) for n in todo]

        mine: dict[tuple[str, str], dict] = {}

        def merge_save() -> None:
            """Merge this run's rows into the file as it is now (another run may have written rows meanwhile)."""
            current = load()
            current["entries"] = [e for e in current["entries"] if (e["row"], e["profile"]) not in mine] + list(mine.values())
            finished = {e["row"] for e in current["entries"] if e["profile"] == profile}
            current["missing"] = {**current.get("missing", {}), profile: [r.name for r in ladder if r.name not in finished]}
            save(current)

        def done_one(outcome) -> None:
            if not outcome.ok:
                log.error("%s failed: %s", outcome.key, outcome.error)
                return
            entry = {**outcome.value, "profile": profile}
            mine[(entry["row"], profile)] = entry
            merge_save()
            log.info("%s: score %s (%s distinct members, membership AUC %s), highest %s, %s; %.0f s", entry["row"], entry["score"],
                     entry["distinct_members"], entry["membership_auc"], entry["highest"], entry["verdict"], entry["audit_seconds"])

        run_cells(cells, workers=args.workers, on_done=done_one, local_cpus=float(args.workers * threads) if args.workers > 1 else None)
        merge_save()
    else:
        save(payload)   # the derived scores, recomputed by load()
    payload = load()
    entries = [e for e in payload["entries"] if e["profile"] == profile]
    if entries:
        print(table(entries, COLUMNS))
    for c in checks(entries):
        print(f"{'pass' if c['passed'] else 'MISS'}: {c['check']}: {c['value']} (target {c['target']}; covers {c['covers']}) {c['aside']}")
    if not args.no_docs:
        write_docs(payload)
        print(f"wrote the verdict sections of {DOCS} from {RESULTS}")


if __name__ == "__main__":
    main()
