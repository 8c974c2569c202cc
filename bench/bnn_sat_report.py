"""The measured section of docs/bnn_sat.md, from bench/results/bnn_sat.json only (registered in bench/sections.py)."""
from __future__ import annotations

START, END = "<!-- bench_bnn_sat:start -->", "<!-- bench_bnn_sat:end -->"


def _size(s: dict) -> str:
    if "skipped" in s:
        return f"{s['cells'] / 1e6:.1f} M counter cells (refused)" if "cells" in s else f"skipped: {s['skipped']}"
    return f"{s['variables']:,} / {s['clauses']:,} / {s['native_constraints']:,}"


def _config(c: dict) -> str:
    budget = f" (conflict budget {c['conflict_budget']})" if c.get("conflict_budget") else ""
    return f"{c['label']}{budget}"


def render(payload: dict) -> str:
    nets = payload["nets"]
    first = next(iter(nets.values()))
    lines = [START, f"`python bench/bench_bnn_sat.py{' --quick' if payload.get('quick') else ''}` (generated from "
             f"bench/results/bnn_sat.json, run {payload.get('started', '?')} to {payload.get('finished', '?')}). Scratch queries "
             f"limited to {payload['scratch_limit_s']:g} s per class, seeded queries to {first['seeded_limit_s']:g} s; seeded "
             "phases come from the first test image the model puts in the class. Times are per class query, including the "
             "relaxation when one is used.", "",
             "**Accuracy and agreement** (integer form and onnxruntime against torch on the test images; SAT inference mode on a few):",
             "", "| net | epochs | test accuracy | integer = torch | onnxruntime = torch | SAT inference agrees |",
             "|---|---|---|---|---|---|"]
    for name, n in nets.items():
        inf = n["inference"]
        lines.append(f"| {name} | {n['meta']['epochs']} | {n['meta']['test_accuracy']:.1%} | {inf['integer_vs_torch']:.1%} of "
                     f"{inf['images']:,} | {inf['onnx_vs_torch']:.1%} | {inf['sat_inference_agree']}/{inf['sat_inference_images']} "
                     f"(median {inf['sat_inference_median_s']:.2f} s) |")
    lines += ["", "**Formula size** (variables / clauses / native constraints) and the median first-layer bound D:", "",
              "| net | native | hybrid | cnf | median D |", "|---|---|---|---|---|"]
    for name, n in nets.items():
        s = n["sizes"]
        lines.append(f"| {name} | {_size(s['native'])} | {_size(s['hybrid'])} | {_size(s['cnf'])} | {n['first_layer_median_D']:g} |")
    lines += ["", "**Per-class query times in seconds** (\"answered\": a verified preimage or an UNSAT proof):", "",
              "| net | mode | configuration | answered | median | max |", "|---|---|---|---|---|---|"]
    for name, n in nets.items():
        for mode in ("scratch", "seeded"):
            for c in n.get(mode, []):
                if "skipped" in c:
                    lines.append(f"| {name} | {mode} | {_config(c)} | skipped: {c['skipped']} | | |")
                    continue
                lines.append(f"| {name} | {mode} | {_config(c)} | {c['answered']}/{len(c['classes'])} | {c['median_s']:.3f} | "
                             f"{c['max_s']:.3f} |")
    enum = payload.get("enumeration") or []
    if enum:
        lines += ["", f"**Enumeration** (class {enum[0]['class']}, {enum[0]['seconds']:g} s per mode; every preimage verified by "
                  "torch):", "", "| mode | distinct preimages | per minute | longest gap (s) | verified |", "|---|---|---|---|---|"]
        lines += [f"| {e['mode']} | {e['distinct']:,} | {e['per_minute']:,} | {e['longest_gap_s']:.2f} | {e['verified']} |" for e in enum]
    lines += ["", "**Goals** (the bench's goal keys; `[sat_only]` leaves out the relaxation phases):", "",
              "| goal | configuration | measured | met |", "|---|---|---|---|"]
    for key, g in payload["goals"].items():
        if g is None:
            lines.append(f"| {key} | – | not measured | – |")
        elif "config" in g:
            measured = ", ".join(f"{k} {g[k]:.3f}" if isinstance(g[k], float) else f"{k} {g[k]}"
                                 for k in ("answered", "median_s", "max_s") if k in g)
            lines.append(f"| {key} | {g['config']} | {measured} | {'yes' if g['met'] else '**no**'} |")
        elif "best" in g:
            lines.append(f"| {key} | best mode | {g['best']:,} per minute | {'yes' if g['met'] else '**no**'} |")
        else:
            worst = max((v["max_s"], n) for n, v in g.items() if isinstance(v, dict))
            lines.append(f"| {key} | best per net | slowest net {worst[1]}: max {worst[0]:.3f} s | {'yes' if g['met'] else '**no**'} |")
    lines.append(END)
    return "\n".join(lines)
