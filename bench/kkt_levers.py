"""One kkt lever at a time on one bench target: short runs scored by the core, recorded in bench/results/kkt_levers.json.

    OMP_NUM_THREADS=2 python bench/kkt_levers.py --name prototype --seconds 240 \\
        --opts '{"optimizer": "sgd", "lr_x": 0.5, "lambda_per_class": false, "layer_normalised": false, "float64": "off"}'

Each run: the named option set on top of the plugin's defaults, ``--seconds`` of optimisation, the core's
calibrated likely-copy rule (affine comparison). The entry keeps the distinct members recovered, the final
normalised residual (share of ||theta||^2 unexplained) and the steps; a rerun of a name replaces its entry.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kkt import run_one
from common import CACHE, write_json
from kkt_targets import ROWS, target

log = logging.getLogger("bench.kkt_levers")
RESULTS = Path(__file__).resolve().parent / "results" / "kkt_levers.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="label of this option set in the JSON")
    p.add_argument("--row", default="mnist-mlp-100")
    p.add_argument("--seconds", type=float, default=240.0)
    p.add_argument("--opts", default="{}", help="kkt options (JSON) on top of the defaults")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = next(x for x in ROWS if x.name == args.row)
    model, data, facts = target(r, CACHE)
    opts = json.loads(args.opts)
    entry = run_one(r, "kkt", args.seconds, model, data, options=opts)
    m = entry["metrics"]
    row = {"name": args.name, "row": r.name, "options": opts, "seconds": args.seconds, "threads": torch.get_num_threads(),
           "distinct_members": entry["distinct_members"], "likely_copies": entry["likely_copies"],
           "reconstructions": entry["reconstructions"], "null_copy_rate": entry["null_copy_rate"], "p_value": entry["p_value"],
           "normalised_residual": m.get("normalised_residual"), "steps": m.get("steps"),
           "layer_residuals": [m[k] for k in sorted(m) if k.startswith("residual_layer")],
           "copy_ssims": entry["copy_ssims"], "status": entry["status"], "reason": entry["reason"],
           "train_loss": facts.get("train_loss")}
    payload = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"entries": []}
    payload["entries"] = [e for e in payload["entries"] if (e["name"], e["row"]) != (args.name, r.name)] + [row]
    write_json("kkt_levers", {"entries": payload["entries"]})
    log.info("%s", json.dumps({k: row[k] for k in ("name", "distinct_members", "likely_copies", "normalised_residual", "steps")}))


if __name__ == "__main__":
    main()
