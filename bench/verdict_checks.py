"""What the verdict ladder must show, computed from bench/results/verdict.json only, and its markdown section."""
from __future__ import annotations

import math
from typing import Any

from scipy.stats import spearmanr

RHO_BAR = 0.9
RECONSTRUCTION_ORDER = ("kkt", "tldr", "inversion")
CANARY_CONTROL = "mlp-1000"   # bench/verdict_ladder.py: the canary model's CANARY_BASE images and steps, without canaries


def _spearman(rows: list[dict], key: str) -> float | None:
    pairs = [(r[key], -math.log(r["n_train"])) for r in rows if r.get(key) is not None]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2:
        return None
    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    # rounded: Spearman's rho is a ratio of integers, and 1 - 6*2/(5*24) came out as 0.8999999999999998
    return None if math.isnan(rho) else round(float(rho), 9)


def _dataset(entry: dict) -> str:
    return entry.get("dataset", "mnist")   # rows written before the Fashion-MNIST ladder are MNIST


def _family(entry: dict) -> str:
    """A ladder's name: the architecture, prefixed by the dataset when it is not MNIST."""
    return entry["arch"] if _dataset(entry) == "mnist" else f"{_dataset(entry)} {entry['arch']}"


SEVERITY_RANK = {"none": 0, "info": 1, "low": 2, "medium": 3, "high": 4}


def _rho(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def checks(entries: list[dict]) -> list[dict[str, Any]]:
    """One dict per bar: name, value, target, passed, by how much it was missed, and what it covers."""
    out = []
    for arch in sorted({_family(e) for e in entries if e["kind"] == "ladder"}):
        rows = [e for e in entries if e["kind"] == "ladder" and _family(e) == arch]
        rho = _spearman(rows, "score")
        tpr_rho = _spearman(rows, "membership_tpr_at_1pct_fpr")
        recon_rho = _spearman(rows, "reconstruction_score")
        auc_rho = _spearman(rows, "membership_auc")
        level_rho = _spearman([{**e, "level": SEVERITY_RANK.get(e["highest"] or "none", 0)} for e in rows], "level")
        sizes = ", ".join(f"{e['n_train']:,}" for e in sorted(rows, key=lambda e: e["n_train"]))
        out.append({"check": f"Spearman(score, -log n) for {arch} >= {RHO_BAR}", "value": rho, "target": RHO_BAR,
                    "passed": rho is not None and rho >= RHO_BAR, "miss": None if rho is None else max(0.0, RHO_BAR - rho),
                    "covers": f"sizes {sizes}" + ("" if rho is not None else " (fewer than 3 sizes, or every score tied)"),
                    "aside": f"Spearman of the reconstruction score alone (the first ladder's score): {_rho(recon_rho)}, of the "
                             f"membership AUC: {_rho(auc_rho)}, of its TPR@1%FPR: {_rho(tpr_rho)}, of the highest finding's level: "
                             f"{_rho(level_rho)}"})
    safe = [e for e in entries if (e["kind"] == "ladder" and e["n_train"] >= 10000) or e["kind"] == "control"]
    alarms = [f"{e['row']}: {a}" for e in safe for a in e["medium_or_above"]]
    out.append({"check": "findings at MEDIUM or above on models of >= 10,000 images and the DP model", "value": len(alarms),
                "target": 0, "passed": not alarms and bool(safe), "miss": len(alarms) if safe else None,
                "covers": ", ".join(e["row"] for e in safe) or "none run yet", "aside": "; ".join(alarms)})
    leakage = {a for e in entries for a, v in e["attacks"].items() if v.get("reconstructions") is not None or "tpr_at_1pct_fpr" in v}
    privacy = [a for a in alarms if a.split(": ")[1] in leakage]
    out.append({"check": "... of which from leakage attacks (scored reconstructions or membership)", "value": len(privacy), "target": 0,
                "passed": not privacy and bool(safe), "miss": len(privacy) if safe else None,
                "covers": ", ".join(sorted(leakage)), "aside": "; ".join(privacy)})
    for e in (x for x in entries if x["kind"] == "known_leak"):
        best = e["attacks"].get(e["score_attack"] or "", {})
        top = _highest(e, leakage)
        out.append({"check": f"{e['row']} gets a HIGH finding from a leakage attack", "value": top or "none", "target": "high",
                    "passed": top == "high", "miss": None if top == "high" else
                    f"highest {top or 'none'}; best attack {e['score_attack']}: {best.get('distinct_members')} distinct members "
                    f"(high needs 3), binomial p {_g(best.get('copy_p_value'))} (high needs <= 0.001)",
                    "covers": e["row"], "aside": f"highest over every attack: {e['highest'] or 'none'}"
                    + "".join(f"; {a}" for a in e["medium_or_above"] if a.split(": ")[0] not in leakage)})
    return out


def _highest(entry: dict, attacks: set[str]) -> str | None:
    order = ["info", "low", "medium", "high"]
    found = [a["highest"] for name, a in entry["attacks"].items() if name in attacks and a.get("highest")]
    return max(found, key=order.index) if found else None


def _g(v: float | None) -> str:
    return "–" if v is None else f"{v:.2g}"


def _attack_cell(a: dict | None) -> str:
    if a is None:
        return "–"
    if a["status"] != "completed":
        return a["status"]
    sev = a["highest"] or "none"
    if a.get("score") is None and not a["findings"]:
        return "no output"  # e.g. kkt with no converged candidate: nothing to score, no finding
    if a.get("score") is None:
        extra = f" (TPR {a['tpr_at_1pct_fpr']:.1%})" if a.get("tpr_at_1pct_fpr") is not None else ""
        return f"{sev}{extra}"
    return f"{a['score']:+.3f} ({a.get('distinct_members') or 0} m; {sev})"


def render(payload: dict, profile: str, start: str, end: str, heading: bool = True) -> str:
    """The markdown section of one profile (``full`` or ``quick``), from the JSON only (``heading=False``: run_all titles it)."""
    entries = [e for e in payload["entries"] if e["profile"] == profile]
    if not entries:
        return f"{start}\n## Verdict ladder\n\nNo rows yet: run `python bench/bench_verdict.py`.\n{end}\n"
    attacks = sorted({a for e in entries for a in e["attacks"] if a not in ("preflight", "model-check")},
                     key=lambda a: (RECONSTRUCTION_ORDER.index(a) if a in RECONSTRUCTION_ORDER else 9, a))
    cmd = "python bench/bench_verdict.py" + (" --quick" if profile == "quick" else "")
    title = f"## Verdict ladder{' (quick)' if profile == 'quick' else ''}: models with known leakage, every builtin attack"
    lines = [start, *([title, ""] if heading else []),
             f"`{cmd}` (generated from bench/results/verdict.json, {payload.get('created', '')}; "
             f"{'quick budgets' if profile == 'quick' else 'each attack at its default budget'}; torch threads per audit: "
             f"{entries[0].get('threads')}). Members: each model's exact training set; reference (non-members): "
             f"{_sources(entries)}.{_ladder_options(entries)}", "",
             "**Leakage score** (defined once, `bench/verdict_audit.py`, recomputed for every row from its stored attack "
             "summaries): `D + clip(2·AUC − 1, 0, 0.99)`, where `D` is the most distinct members any reconstruction attack "
             "recovered as likely copies (the calibrated copy rule at α = 1%) and `AUC` the membership plugin's AUC on held-out "
             "non-members. A recovered training image outranks any membership signal; among models with none, the membership "
             "advantage orders them. Attack cells show the per-attack **reconstruction score** `D + clip(G, ±0.49)` (`G`: the "
             "null-centred gap, the reconstructions' member-minus-non-member gap minus the gap held-out real non-members reach "
             "through the same pipeline) as `score (m = distinct members; highest finding)`; it was the score of the first full "
             "ladder and is checked beside the leakage score below. Other attacks: their highest finding.", "",
             "| model | n | train / test acc | " + " | ".join(attacks) + " | leakage score | membership AUC / TPR@1% | highest | gate | audit s | train s |",
             "|---|---|---|" + "---|" * len(attacks) + "---|---|---|---|---|---|"]
    for e in sorted(entries, key=lambda e: (e["kind"] != "ladder", _dataset(e) != "mnist", _family(e), e["n_train"], e["row"])):
        tpr, auc = e.get("membership_tpr_at_1pct_fpr"), e.get("membership_auc")
        cells = " | ".join(_attack_cell(e["attacks"].get(a)) for a in attacks)
        lines.append(f"| {e['row']} | {e['n_train']:,} | {e['train_accuracy']:.3f} / {e['test_accuracy']:.3f} | {cells} | "
                     f"{_score(e['score'])} | {'–' if auc is None else f'{auc:.3f}'} / {'–' if tpr is None else f'{tpr:.1%}'} | **{e['highest'] or 'none'}** | "
                     f"{'fails' if e['fails_gate'] else 'passes'} | {e['audit_seconds']:.0f} | {_s(e.get('train_seconds'))} |")
    lines += ["", "| check (summary, from the JSON) | value | target | result | missed by | covers |", "|---|---|---|---|---|---|"]
    for c in checks(entries):
        value = "n/a" if c["value"] is None else c["value"] if not isinstance(c["value"], float) else f"{c['value']:.2f}"
        miss = "" if c["passed"] else ("not measurable yet" if c["miss"] is None else c["miss"] if not isinstance(c["miss"], float)
                                       else f"{c['miss']:.2f}")
        covers = c["covers"] + (f"; {c['aside']}" if c["aside"] else "")
        lines.append(f"| {c['check']} | {value} | {c['target']} | {'pass' if c['passed'] else '**MISS**'} | {miss} | {covers} |")
    dp = next((e for e in entries if e.get("epsilon") is not None), None)
    if dp:
        lines += ["", f"DP model: ε = {dp['epsilon']:.2f} at δ = {dp['delta']:g}, noise multiplier {dp['noise_multiplier']:.2f} "
                      f"(bench/bench_membership.py's recipe); preflight {'passed' if dp['preflight_passed'] else 'failed'}."]
    canary = next((e for e in entries if e.get("canary")), None)
    if canary:
        c = canary["canary"]
        share = sorted(c["reference_share_at_or_above"])
        near = "; ".join(f"{a}: {v['reconstructions']} nearest a canary, {v['likely_copies']} likely copies, best similarity "
                         f"{_g(v['best_similarity'])}" for a, v in sorted(c["nearest_member_is_canary"].items()))
        member = canary["attacks"].get("membership", {})
        lines += ["", f"Canary model ({len(share)} canaries): each canary's scaled logit under the target alone is reached or "
                      f"exceeded by {share[0]:.0%}–{share[-1]:.0%} of its class's references (median {share[len(share) // 2]:.0%}), "
                      "so no score read from the target alone singles them out; membership "
                      f"({_options_text(canary['options'].get('membership', {})) or 'defaults'}): highest finding "
                      f"{member.get('highest') or 'none'}{_exposure_text(c.get('most_exposed', {}).get('membership'), len(share))}; "
                      f"reconstructions whose nearest member is a canary: {near or 'none scored'}.{_control_text(entries, canary)}"]
    missing = payload.get("missing", {}).get(profile)
    if missing:
        lines += ["", f"Not yet run in this profile (resumable; rerun the command): {', '.join(missing)}."]
    lines.append(end)
    return "\n".join(lines) + "\n"


def _exposure_text(exposed: dict | None, canaries: int) -> str:
    if not exposed:
        return ""
    return (f"; of its {exposed['listed']} most exposed members, {exposed['above_every_heldout']} score above every held-out "
            f"non-member, {exposed['canaries_above_every_heldout']} of them canaries ({exposed['canaries_listed']} of the "
            f"{canaries} canaries are listed)")


def _control_text(entries: list[dict], canary: dict) -> str:
    """The canary model beside its control (the same images and steps without canaries), so that its level is read fairly."""
    control = next((e for e in entries if e["row"] == CANARY_CONTROL), None)
    if control is None:
        return ""
    n = control["n_train"]
    return (f" Its control, {CANARY_CONTROL} (the same {n:,} images and optimiser steps, no canaries): highest finding "
            f"{control['highest'] or 'none'}{_exposed_count(control)}; the canary model: {canary['highest'] or 'none'}"
            f"{_exposed_count(canary)}. Where both are HIGH, the level comes from the {n:,}-image model's own leakage; the "
            "canaries show in which members are exposed.")


def _exposed_count(entry: dict) -> str:
    k = entry["attacks"].get("membership", {}).get("members_above_heldout")
    return "" if k is None else f", {k:.0f} members above every held-out non-member"


def _sources(entries: list[dict]) -> str:
    """Where each row's reference set came from (rows of the same kind of source grouped; the JSON has the counts)."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        source = (e.get("reference_source") or "the 10,000 MNIST test images").split(" (")[0]   # the kind, not the counts
        groups.setdefault(source, []).append(e["row"])
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{src} ({', '.join(rows)})" for src, rows in sorted(groups.items(), key=lambda g: -len(g[1])))


def _options_text(options: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in options.items())


def _ladder_options(entries: list[dict]) -> str:
    """The options every row ran with beyond the profile's budgets (the ladder's own settings), e.g. membership's reference models."""
    common = {a: o for a, o in entries[0].get("options", {}).items() if o and all(e.get("options", {}).get(a) == o for e in entries)}
    return "".join(f" {a}: {_options_text(o)}." for a, o in common.items())


def _score(v: float | None) -> str:
    return "–" if v is None else f"{v:+.3f}"


def _s(v: float | None) -> str:
    return "cached" if v is None else f"{v:.0f}"
