"""Generated docs sections for the benchmarks that print their tables (scoring, compare, e2e, inversion), from their JSON only.

Each ``render_*`` takes the parsed bench/results/<name>.json and returns the section with its markers
(``bench/sections.py`` registers them); nothing here runs a benchmark.
"""
from __future__ import annotations


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _when(payload: dict) -> str:
    return payload.get("created") or "date not recorded in the JSON"


def render_scoring(payload: dict) -> str:
    start, end = _markers("bench_scoring")
    s, n, e = payload["ssim_pairs"], payload["nearest_member"], payload["score_reconstructions"]
    lines = [start, f"`python bench/bench_scoring.py{' --quick' if payload.get('quick') else ''}` (generated from "
             f"bench/results/scoring.json, {_when(payload)}; {payload['threads']} torch threads, load average "
             f"{payload['loadavg_before']:.2f} before, {payload['loadavg_after']:.2f} after).", "",
             "| measure | value |", "|---|---|",
             f"| SSIM max \\|torch − scikit-image\\| over {s['pairs']:,} pairs | {s['max_abs_diff']:.2e} |",
             f"| SSIM time, torch vs scikit-image loop | {s['torch_s'] * 1000:.1f} ms vs {s['skimage_s']:.2f} s: "
             f"**{s['speedup']:.0f}×** (goal ≥ 50×) |",
             f"| nearest-member search, {n['reconstructions']:,} reconstructions, {n['pairs']:,} pairs | {n['wall_s']:.1f} s wall, "
             f"{n['cpu_s']:.1f} s CPU (goal < 60 s wall) |",
             f"| spot check against scikit-image | argmax agrees {n['spot_argmax_agree']}/{n['spot_checked']}, max difference "
             f"{n['spot_max_abs_diff']:.1e} |",
             f"| `score_reconstructions` end to end ({e['reconstructions']:,} reconstructions, {e['reference_per_class']} reference "
             f"per class) | {e['wall_s']:.1f} s wall, {e['cpu_s']:.1f} s CPU |", end]
    return "\n".join(lines)


COMPARE_COLUMNS = ("train_size", "budget_s", "method", "seconds", "matched_ssim", "best_ssim", "gap", "gap_ci", "likely_copies",
                   "hit_rate")


def _cell(v: object) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def render_compare(payload: dict) -> str:
    start, end = _markers("bench_compare")
    lines = [start, f"`python bench/bench_compare.py` (generated from bench/results/compare.json, {_when(payload)}): reconstruction "
             "quality at equal wall-clock budgets (MNIST CNN, seed 0).", "",
             "| " + " | ".join(COMPARE_COLUMNS) + " |", "|" + "---|" * len(COMPARE_COLUMNS)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in COMPARE_COLUMNS) + " |" for r in payload["rows"]]
    lines.append(end)
    return "\n".join(lines)


def render_e2e(payload: dict) -> str:
    start, end = _markers("bench_e2e")
    lines = [start, f"`python bench/bench_e2e.py` (generated from bench/results/e2e.json, {_when(payload)}): one `audit run` "
             "process per plugin.", "", "| model | format | plugin | seconds | peak MiB | exit |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['format']} | {r['plugin']} | {_cell(r.get('seconds'))} | {_cell(r.get('peak_mib'))} | "
              f"{r.get('exit')} |" for r in payload["rows"]]
    speed = payload.get("onnx_vs_torch") or []
    if speed:
        lines += ["", "ONNX (onnx2pytorch) against torch.export, same model and fixed steps:", "",
                  "| model | plugin | ONNX s | torch s | ONNX / torch |", "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['plugin']} | {_cell(r['onnx_s'])} | {_cell(r['torch_s'])} | {_cell(r['onnx_over_torch'])} |"
                  for r in speed]
    lines.append(end)
    return "\n".join(lines)


def render_inversion(payload: dict) -> str:
    """The ablation, torch-vs-ONNX and CIFAR tables (docs/benchmarks.md and docs/inversion.md show the same section)."""
    start, end = _markers("bench_inversion")
    ab = payload["ablation"]
    default = ab[0]
    lines = [start, f"`python bench/bench_inversion.py` (generated from bench/results/inversion.json, {_when(payload)}; budget "
             f"{payload['seconds']:.0f} s per variant, seed 0). Best SSIM: the mean over samples of the best SSIM to the class's "
             "training images; for scale, the same measure for a class average (the mean of the class's members) and for real "
             "unseen digits.", "",
             "| variant | steps | seconds | hit rate, worst class | hit rate, mean | within-class SSIM | feature cosine | "
             "best SSIM to members |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['steps']} | {r['seconds']:.0f} | {r['hit_min']:.2f} | {r['hit_mean']:.3f} | "
              f"{r['diversity_ssim']:.3f} | {r['feature_cos']:.3f} | {r['best_ssim']:.3f} |" for r in ab]
    lines += ["", f"For scale: a class average scores {default['class_average_ssim']:.3f}, a real unseen digit "
              f"{default['unseen_real_ssim']:.3f}."]
    tv = payload.get("torch_vs_onnx") or []
    if tv:
        worst_same = max(abs(r["same_images_diff_pp"]) for r in tv)
        worst_own = max(abs(r["own_generator_diff_pp"]) for r in tv)
        lines += ["", f"**Torch vs ONNX** (same model exported with `torch.onnx.export`; same seed and {payload['onnx_steps']} "
                  f"steps; the ONNX run took {payload['onnx_seconds']:.0f} s): the torch generator's samples classified through "
                  f"the ONNX path differ by at most {worst_same:.0f} pp per class; a generator trained on the ONNX path itself "
                  f"by at most {worst_own:.0f} pp.", "",
                  "| class | torch hit | ONNX, same images | ONNX, own generator |", "|---|---|---|---|"]
        lines += [f"| {r['class']} | {r['torch_hit']:.2f} | {r['onnx_hit_same_images']:.2f} | {r['onnx_hit_own_generator']:.2f} |"
                  for r in tv]
    cifar = payload.get("cifar10") or []
    if cifar:
        div = [r["diversity_ssim"] for r in cifar]
        lines += ["", f"**3-channel 32×32** (CIFAR-10 subset CNN, same budget): hit rate {min(r['hit_rate'] for r in cifar):.2f} "
                  f"in the worst class, within-class SSIM {min(div):.2f}–{max(div):.2f}."]
    lines.append(end)
    return "\n".join(lines)


def render_headline(payloads: dict) -> str:
    """The goal rows of docs/benchmarks.md from scoring.json and compare.json."""
    start, end = _markers("bench_headline")
    s, n = payloads["scoring"]["ssim_pairs"], payloads["scoring"]["nearest_member"]
    rows = payloads["compare"]["rows"]

    def yes(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [start, "| goal | measured | met? | source |", "| --- | --- | --- | --- |",
             f"| SSIM equal to scikit-image within 1e-4 | max difference {s['max_abs_diff']:.2e} over {s['pairs']:,} pairs | "
             f"{yes(s['max_abs_diff'] <= 1e-4)} | scoring.json |",
             f"| SSIM at least 50× faster than a scikit-image loop ({s['pairs']:,} pairs) | {s['speedup']:.0f}× | "
             f"{yes(s['speedup'] >= 50)} | scoring.json |",
             f"| nearest-member search of {n['reconstructions']:,} reconstructions under 60 s | {n['wall_s']:.1f} s wall "
             f"({n['cpu_s']:.1f} s CPU) | {yes(n['wall_s'] < 60)} | scoring.json |"]
    cells = sorted({(r["train_size"], r["budget_s"]) for r in rows})
    by = {(r["train_size"], r["budget_s"], r["method"]): r for r in rows}
    pairs = [(k, by.get((*k, "tldr")), by.get((*k, "miface"))) for k in cells]
    pairs = [(k, t, m) for k, t, m in pairs if t and m]
    if pairs:
        text = "; ".join(f"n={k[0]}, {k[1]:.0f} s: {t['matched_ssim']:.3f} vs {m['matched_ssim']:.3f}" for k, t, m in pairs)
        lines.append(f"| tldr: higher matched member SSIM than MIFace at every budget | {text} | "
                     f"{yes(all(t['matched_ssim'] > m['matched_ssim'] for _, t, m in pairs))} | compare.json |")
        small = [(k, t) for k, t, _ in pairs if k[0] == min(c[0] for c in cells)]
        gaps = "; ".join(f"{k[1]:.0f} s: {t['gap']:+.3f} [{t['gap_ci']}]" for k, t in small)
        above = [k for k, t in small if t.get("gap_ci_low") is not None and t["gap_ci_low"] > 0]
        lines.append(f"| tldr: gap CI above zero on the {small[0][0][0]}-image model | {gaps} | "
                     f"{'yes' if len(above) == len(small) else ('**' + ', '.join(f'{k[1]:.0f} s' for k in above) + ' only**') if above else '**no**'} "
                     f"| compare.json |")
        copies = "; ".join(f"{k[1]:.0f} s: {t['likely_copies']:.0f}" for k, t in small)
        lines.append(f"| tldr: likely copies above zero on the {small[0][0][0]}-image model | {copies} | "
                     f"{yes(all((t['likely_copies'] or 0) > 0 for _, t in small))} | compare.json |")
    lines.append(end)
    return "\n".join(lines)
