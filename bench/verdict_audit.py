"""One ladder row of bench_verdict.py: train or load the model, audit it through the core, summarise.

The **leakage score** (docs/benchmarks.md, "verdict" section) is computed here and nowhere else
(:func:`leakage_score`), from a row's stored attack summaries, so that every row is scored the same way::

    score = D + A,    A = clip(2 * AUC - 1, 0, 0.99)

with ``D`` the most distinct members any reconstruction attack recovered as likely copies (the core's calibrated
copy rule) and ``AUC`` the membership plugin's AUC on held-out non-members (its primary score, declared before
the run). A recovered training image outranks any membership signal; among models with none, the membership
advantage orders them. The per-attack **reconstruction score** ``D + clip(G, -0.49, 0.49)`` (``G``: the
null-centred gap, the reconstructions' member-minus-non-member gap minus the one held-out real non-members reach
through the same pipeline) is kept beside it: it was the score of the first full ladder, where the gaps of the
models of 2,000 images and more (0.003-0.014, intervals of about +-0.01) could not order them.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

log = logging.getLogger("bench.verdict")
GAP_CLIP = 0.49
ADVANTAGE_CAP = 0.99   # below 1: one recovered member outranks any membership advantage
# --quick: smaller budgets, set only where the installed attack has the option (a new plugin runs at its defaults)
QUICK_OPTIONS: dict[str, dict[str, Any]] = {
    "tldr": {"inversion_seconds": 12.0, "reconstruction_seconds": 20.0},
    "inversion": {"train_seconds": 20.0},
    "kkt": {"seconds": 30.0},
    "shortcut": {"inversion_seconds": 8.0},
    "membership": {"max_members": 2000},
    "bnn_sat": {"time_limit_s": 5.0},
}


# both profiles: membership with two reference models (the target's architecture re-initialised, trained on halves
# of the calibration non-members). Without them no population score sees a canary: the model's confidence on a
# memorised canary is ordinary among its class's references, and only a model that never saw it tells "this model
# is confident on x" from "any model would be" (the canary diagnostics in the JSON show it).
LADDER_OPTIONS: dict[str, dict[str, Any]] = {"membership": {"reference_models": 2}}


def builtin_attacks() -> list[str]:
    """Attacks of the plugins that ship with auditor (distribution ``auditor``), as installed now."""
    from auditor.engine.plugins import get_plugin_manager, plugin_infos

    return sorted(a for p in plugin_infos(get_plugin_manager()) if p.distribution == "auditor" for a in p.attacks)


def attack_score(scores) -> float | None:
    """The reconstruction score ``D + clip(G, ±0.49)`` for one attack's core scores (None: the attack handed no reconstructions to score)."""
    if scores is None or not scores.samples:
        return None
    gap = 0.0 if scores.gap is None else max(-GAP_CLIP, min(GAP_CLIP, float(scores.gap)))
    return float(scores.distinct_members_recovered or 0) + gap


def leakage_score(entry: dict[str, Any]) -> float | None:
    """``D + clip(2 AUC - 1, 0, 0.99)`` for one ladder row (None: no reconstruction was scored and membership did not run)."""
    recovered = [a.get("distinct_members") or 0 for a in entry["attacks"].values() if a.get("reconstructions") is not None]
    auc = entry.get("membership_auc")
    if not recovered and auc is None:
        return None
    advantage = 0.0 if auc is None else min(ADVANTAGE_CAP, max(0.0, 2.0 * float(auc) - 1.0))
    return float(max(recovered, default=0)) + advantage


def refresh_scores(entry: dict[str, Any]) -> dict[str, Any]:
    """The row with its derived fields recomputed from its attack summaries: the leakage score, the best reconstruction
    score and its attack, and that attack's distinct members."""
    scored = {k: v["score"] for k, v in entry["attacks"].items() if v.get("score") is not None}
    best = max(scored, key=scored.get) if scored else None
    out = {**entry, "reconstruction_score": scored[best] if best else None, "score_attack": best,
           "distinct_members": entry["attacks"][best]["distinct_members"] if best else None}
    return out | {"score": leakage_score(out)}


def summarise(result) -> dict[str, Any]:
    s = result.scores
    top = max((f.severity for f in result.findings), key=lambda v: v.rank, default=None)
    out: dict[str, Any] = {
        "status": result.status, "reason": (result.reason or "").strip().split("\n")[0][:300] or None, "seconds": result.duration_s,
        "highest": top.value if top else None,
        "findings": [{"severity": f.severity.value, "title": f.title, "metric": f.metric, "value": f.value} for f in result.findings],
        "score": attack_score(s)}
    if s is not None:
        out.update(reconstructions=len(s.samples), likely_copies=s.likely_copies, distinct_members=s.distinct_members_recovered,
                   null_copy_rate=s.null_copy_rate, copy_p_value=s.copy_p_value, gap_kind=s.gap_kind, gap=s.gap,
                   gap_ci_low=s.gap_ci_low, gap_ci_high=s.gap_ci_high, raw_gap=s.raw_gap, null_gap=s.null_gap,
                   copy_tpr_at_1pct_null_fpr=s.copy_tpr_at_1pct_null_fpr, alpha=s.alpha, copy_rule_calibrated=s.copy_rule_calibrated,
                   copy_members=sorted({x.nearest_member for x in s.samples if x.likely_copy and x.nearest_member is not None}))
    for key in ("auc", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci_low", "tpr_at_0.1pct_fpr", "members_above_heldout", "exposure_p_value"):
        if key in result.metrics:
            out[key] = result.metrics[key]
    return out


def scaled_logits(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """LiRA's statistic log p_y - log sum_{j != y} p_j, from the model's logits (the membership plugin's own function)."""
    from auditor_membership.signals import log_odds

    with torch.no_grad():
        logits = torch.cat([model.logits(images[i:i + 512]) for i in range(0, len(images), 512)]).double()
    return torch.from_numpy(log_odds(logits.numpy(), labels.numpy()))


def canary_diagnostics(model, data, report, canaries: list[int]) -> dict[str, Any]:
    """How visible the planted canaries are: per canary, the share of its class's references whose scaled logit is at
    least the canary's (small = exposed to membership inference); per reconstruction attack, how many reconstructions
    have a canary as their nearest member, and the best such similarity (the copy rule's comparison)."""
    ref_phi = scaled_logits(model, data.reference.images, data.reference.labels)
    idx = torch.tensor(canaries)
    phi = scaled_logits(model, data.members.images[idx], data.members.labels[idx])
    shares = [float((ref_phi[data.reference.labels == int(y)] >= v).double().mean()) for v, y in zip(phi, data.members.labels[idx])]
    nearest, planted = {}, set(canaries)
    for r in report.results:
        if r.scores is not None and r.scores.samples:
            hits = [x for x in r.scores.samples if x.nearest_member in planted]
            nearest[r.attack] = {"reconstructions": len(hits), "likely_copies": sum(x.likely_copy for x in hits),
                                 "best_similarity": max((x.nearest_member_ssim for x in hits), default=None)}
    exposed = {}
    for r in report.results:   # the membership plugin's table of its most exposed members (by member index)
        table = next((t for t in r.tables if t.title == "Most exposed members"), None)
        if table is not None:
            rows = [dict(zip(table.columns, row)) for row in table.rows]
            exposed[r.attack] = {"listed": len(rows), "canaries_listed": sum(x["member index"] in planted for x in rows),
                                 "above_every_heldout": sum(x["above every held-out non-member"] == "yes" for x in rows),
                                 "canaries_above_every_heldout": sum(x["member index"] in planted and
                                                                     x["above every held-out non-member"] == "yes" for x in rows)}
    return {"scaled_logits": [round(float(v), 2) for v in phi], "reference_share_at_or_above": [round(v, 4) for v in shares],
            "nearest_member_is_canary": nearest, "most_exposed": exposed}


def audit_row(payload: dict[str, Any]) -> dict[str, Any]:
    """Train/load ``payload['row']`` and audit it with ``payload['attacks']``; the JSON entry of that row."""
    from verdict_ladder import FULL, LADDER_VERSION, build

    from auditor.engine.config import AuditConfig
    from auditor.engine.plugins import collect_attacks, get_plugin_manager
    from auditor.engine.runner import run_audit
    from auditor.models.model import ModelSpec

    row = next(r for r in FULL if r.name == payload["row"])
    torch.set_num_threads(payload.get("threads", torch.get_num_threads()))
    model, data, facts = build(row)
    pm = get_plugin_manager()
    available = collect_attacks(pm)
    options = {}
    for name in payload["attacks"]:
        fields = available[name].Config.model_fields
        wanted = {**LADDER_OPTIONS.get(name, {}), **(QUICK_OPTIONS.get(name, {}) if payload["quick"] else {})}
        options[name] = {k: v for k, v in wanted.items() if k in fields}
    config = AuditConfig.model_validate({"model": ModelSpec(source=f"bench:verdict-{row.name}").model_dump(),
                                         "run": {"plugins": payload["attacks"], "show_progress": False, "seed": 0},
                                         "attacks": {k: v for k, v in options.items() if v}})
    start = time.monotonic()
    report = run_audit(config, pm, model=model, data=data)
    seconds = round(time.monotonic() - start, 1)
    attacks = {r.attack: summarise(r) for r in report.results}
    membership = next((v for v in attacks.values() if "tpr_at_1pct_fpr" in v), None)
    top = report.highest_severity()
    return refresh_scores({"row": row.name, "ladder_version": LADDER_VERSION, "dataset": row.dataset, "arch": row.arch, "n_train": row.n, "kind": row.kind, "recipe": row.recipe,
                "quick": payload["quick"], "attacks_run": payload["attacks"], "options": options, **facts,
                "preflight_passed": report.preflight.passed if report.preflight else None,
                "members": len(data.members), "reference": len(data.reference), "attacks": attacks,
                "membership_tpr_at_1pct_fpr": membership["tpr_at_1pct_fpr"] if membership else None,
                "membership_auc": membership.get("auc") if membership else None,
                "highest": top.value if top else None, "exit_code": report.exit_code, "gate": report.fail_on.value if report.fail_on else None,
                "fails_gate": report.exit_code == 1, "verdict": report.verdict,
                "medium_or_above": [f"{f.attack}: {f.severity.value}: {f.title}" for f in report.findings if f.severity.rank >= 2],
                "audit_seconds": seconds, "threads": torch.get_num_threads(),
                **({"canary": canary_diagnostics(model, data, report, facts["canary_members"])} if "canary_members" in facts else {})})
