"""Generated sections of docs/tldr.md: the settings sweeps (bench/sweep_tldr.py) and the privacy study, from their JSON only.

Each ``render_*`` takes what ``bench/sections.py`` hands it (``{file stem: parsed JSON}``) and returns the section with its
markers. Nothing here runs a sweep or a study; the only code consulted is ``BASE`` (the pre-sweep settings every variant is
merged into) and ``TldrConfig``'s current defaults, to say which variant runs the defaults.
"""
from __future__ import annotations

SWEEP_FIRST = ("sweep_tldr-cnn-100-600+400", "sweep_tldr-mlp-100-600+400", "sweep_tldr-vit-100-600+400")
SWEEP_SECOND = ("sweep_tldr-cnn-100-700+500", "sweep_tldr-mlp-100-700+500")
STUDY, STUDY_INVERSION = "study_privacy_mnist", "study_privacy_mnist_inversion100"
ARCH = {"mlp": "MLP", "cnn": "CNN", "vit": "ViT"}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _scoring_note(payloads: list[dict]) -> str:
    """Which scoring the gaps are: the JSON's own record of it when it has one, else the date it was scored."""
    rules = sorted({str(p["scoring"]) for p in payloads if p.get("scoring")})
    if rules:
        return f"gaps as scored by {'; '.join(rules)}"
    dates = sorted({str(p.get("created", "date not recorded"))[:10] for p in payloads})
    return f"the gaps are the core's scoring as it was on {', '.join(dates)} (the JSON records no scoring version)"


def describe(settings: dict) -> str:
    """A variant's settings in words, from the JSON's ``settings`` dict (empty: the pre-sweep ``BASE``)."""
    if not settings:
        from sweep_tldr import BASE
        return "the pre-sweep settings (`BASE`: " + ", ".join(f"{k} {v:g}" for k, v in BASE.items()) + ")"
    s, parts = dict(settings), []
    if "candidates" in s:
        by = {"grad": "gradient", "robust": "robustness"}.get(s.pop("select_by", "robust"), "?")
        parts.append(f"best of {s.pop('candidates')} by {by}")
    if "sample_latent_scale" in s:
        parts.append(f"z × {s.pop('sample_latent_scale'):g}")
    if "reconstruction_dropout" in s:
        parts.append(f"phase-2 dropout {s.pop('reconstruction_dropout'):g}")
    if s.pop("sample_dropout", True) is False:
        parts.append("dropout off when sampling")
    names = {"lr": "learning rate", "batch_size": "batch", "tv": "TV"}
    parts = [f"{names.get(k, k)} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in s.items()] + parts
    return ", ".join(parts)


def _is_default(settings: dict) -> bool:
    """True when BASE plus these settings equals the current TldrConfig defaults on every key they name."""
    from sweep_tldr import BASE

    from auditor_tldr.attack import TldrConfig
    cfg, merged = TldrConfig(), {**BASE, **settings}
    return all(hasattr(cfg, k) and getattr(cfg, k) == v for k, v in merged.items())


def _gap(r: dict | None) -> str:
    return "" if r is None else f"{r['gap']:+.3f} {r['gap_ci']}"


def _by_variant(payload: dict) -> dict[str, dict]:
    return {r["variant"]: r for r in payload["rows"]}


def _source(payloads: list[dict], stems: tuple[str, ...]) -> str:
    a = payloads[0]["args"]
    device = sorted({p["args"].get("device", "?") for p in payloads})
    return (f"`python bench/sweep_tldr.py --arch ARCH --phase1-steps {a['phase1_steps']} --phase2-steps {a['phase2_steps']}` "
            f"(generated from {', '.join(f'bench/results/{s}.json' for s in stems)}; seed {a['seed']}, {a['per_class']} "
            f"reconstructions per class, device {'/'.join(device)}; {_scoring_note(payloads)})")


def render_sweep_first(payloads: dict) -> str:
    start, end = _markers("tldr_sweep_first")
    cnn, mlp = (payloads[s] for s in SWEEP_FIRST[:2])
    vit = payloads.get(SWEEP_FIRST[2])
    m = _by_variant(mlp)
    lines = [start, _source([cnn, mlp] + ([vit] if vit else []), SWEEP_FIRST) + ".", "",
             "| variant | settings | CNN best | CNN gap [CI] | CNN div. | MLP best | MLP gap [CI] |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in cnn["rows"]:
        o = m.get(r["variant"])
        lines.append(f"| `{r['variant']}` | {describe(r['settings'])} | {r['best_ssim']:.3f} | {_gap(r)} | {r['diversity_ssim']:.2f} | "
                     f"{'' if o is None else format(o['best_ssim'], '.3f')} | {_gap(o)} |")
    gaps = [r["gap"] for r in cnn["rows"]]
    above = [r["variant"] for r in cnn["rows"] if r["gap_ci_low"] > 0]
    lines += ["", f"CNN gaps run from {min(gaps):+.3f} to {max(gaps):+.3f}; CI above zero: "
              f"{', '.join(f'`{v}`' for v in above) if above else 'none'}."]
    if vit:
        best = [r["best_ssim"] for r in vit["rows"]]
        lines.append(f"The ViT (same pass, bench/results/{SWEEP_FIRST[2]}.json) stays at best SSIM {min(best):.3f}–{max(best):.3f} "
                     f"in all {len(best)} variants.")
    lines.append(end)
    return "\n".join(lines)


def render_sweep_second(payloads: dict) -> str:
    start, end = _markers("tldr_sweep_second")
    cnn, mlp = (payloads[s] for s in SWEEP_SECOND)
    m = _by_variant(mlp)
    lines = [start, _source([cnn, mlp], SWEEP_SECOND) + "; **bold**: the variant that runs the current defaults.", "",
             "| variant | CNN best | CNN matched | CNN gap [CI] | CNN div. | MLP best | MLP gap [CI] |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    default = None
    for r in cnn["rows"]:
        o, name = m.get(r["variant"]), f"`{r['variant']}`" + (f": {describe(r['settings'])}" if r["settings"] else "")
        if _is_default(r["settings"]):
            name, default = f"**{name} (the defaults)**", r
        lines.append(f"| {name} | {r['best_ssim']:.3f} | {r['matched_ssim']:.3f} | {_gap(r)} | {r['diversity_ssim']:.2f} | "
                     f"{'' if o is None else format(o['best_ssim'], '.3f')} | {_gap(o)} |")
    base = _by_variant(cnn).get("base")
    if default and base:
        lines += ["", f"On the CNN the defaults move best SSIM from {base['best_ssim']:.3f} (`base`) to {default['best_ssim']:.3f}; "
                  f"the cost is diversity, within-class SSIM {default['diversity_ssim']:.2f} against {base['diversity_ssim']:.2f}."]
    lines.append(end)
    return "\n".join(lines)


def _ci(r: dict) -> str:
    return f"{r['gap']:+.3f} [{r['gap_ci_low']:+.3f}, {r['gap_ci_high']:+.3f}]"


def _minutes(s: float) -> str:
    return f"{int(s // 60)} min {int(round(s % 60))} s"


def render_study(payload: dict) -> str:
    start, end = _markers("tldr_study")
    rows = payload["rows"]
    lines = [start, f"`audit study privacy --dataset mnist` (generated from bench/results/{STUDY}.json; wall time "
             f"{_minutes(payload['duration_s'])} by the study's own clock, goal under 45 min; {_scoring_note([payload])}).", "",
             "| arch | n | test acc. | best SSIM | matched SSIM | gap [95% CI] | likely copies | hit rate | attack s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["size"], list(ARCH).index(r["arch"]))):
        gap = f"**{_ci(r)}**" if r["gap_ci_low"] > 0 else _ci(r)
        lines.append(f"| {ARCH[r['arch']]} | {r['size']:,} | {r['test_accuracy']:.3f} | {r['best_ssim']:.3f} | {r['matched_ssim']:.3f} | "
                     f"{gap} | {r['likely_copies']:.0f} | {r['hit_rate']:.2f} | {r['attack_seconds']:.0f} |")
    lines += ["", "Bold: gap CI above zero. The study's own findings (from the JSON):", ""]
    lines += [f"* {f}" for f in payload.get("findings", [])]
    lines.append(end)
    return "\n".join(lines)


def render_study_vs_inversion(payloads: dict) -> str:
    start, end = _markers("tldr_study_vs_inversion")
    study, inv, sweep = payloads[STUDY], payloads[STUDY_INVERSION], payloads[SWEEP_SECOND[0]]
    t = {r["arch"]: r for r in study["rows"] if r["size"] == 100}
    i = {r["arch"]: r for r in inv["rows"]}
    archs = [a for a in ARCH if a in t and a in i]
    lines = [start, f"`audit study privacy --dataset mnist --sizes 100 --attacks inversion` (generated from bench/results/"
             f"{STUDY_INVERSION}.json against the n = 100 rows of {STUDY}.json; {_scoring_note([study, inv])}).", "",
             "| arch (n = 100) | tldr best SSIM | inversion best SSIM | tldr gap [CI] | inversion gap [CI] | tldr likely copies |",
             "| --- | --- | --- | --- | --- | --- |"]
    def bold(x: float, y: float) -> tuple[str, str]:
        return (f"**{x:.3f}**", f"{y:.3f}") if x > y else (f"{x:.3f}", f"**{y:.3f}**") if y > x else (f"{x:.3f}", f"{y:.3f}")

    for a in archs:
        tb, ib = bold(t[a]["best_ssim"], i[a]["best_ssim"])
        lines.append(f"| {ARCH[a]} | {tb} | {ib} | {_ci(t[a])} | {_ci(i[a])} | {t[a]['likely_copies']:.0f} |")
    ratios = [t[a]["best_ssim"] / i[a]["best_ssim"] for a in archs]
    larger = [a for a in archs if t[a]["gap"] > i[a]["gap"]]
    b = sweep["baselines"]
    defaults = [r for r in sweep["rows"] if _is_default(r["settings"])]
    copies = max(r["likely_copies"] for r in study["rows"])
    lines += ["", f"* tldr's best SSIM is {min(ratios):.1f}× to {max(ratios):.1f}× inversion's; its gap is larger on "
              f"{len(larger)} of {len(archs)} architectures.",
              f"* For scale, against the same 100-image member set (bench/results/{SWEEP_SECOND[0]}.json, "
              f"{b.get('computed_by', 'baselines')}): the class average reaches best SSIM {b['class_average_ssim']:.3f}, a real "
              f"unseen test digit {b['unseen_real_ssim']:.3f}.",
              f"* The CNN reaches {t['cnn']['best_ssim']:.3f} in the study" + (
                  f", {defaults[0]['best_ssim']:.3f} with the defaults in the sweep's {sweep['args']['phase1_steps']} + "
                  f"{sweep['args']['phase2_steps']} steps" if defaults else "") + ".",
              f"* Likely copies, largest share over all {len(study['rows'])} study models: {copies:.3f}.", end]
    return "\n".join(lines)
