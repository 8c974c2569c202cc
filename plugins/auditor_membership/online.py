"""Online LiRA and RMIA (``reference_mode = "online"``): shadow models on random halves of the pool of every scored image.

The pool is the members scored, the calibration non-members and the held-out non-members, all alike. Shadow models
train in pairs on complementary random halves of it (``train_reference_models(..., whole_halves=True)``), so every
image is IN for exactly one model of each pair: half the shadow models trained on it, half did not. The target is
the only model that treats members and non-members differently.

Why the evaluation stays honest: the held-out non-members go through exactly what the members go through (IN for
half the shadows, scored from the same fits), and so do the calibration non-members. A calibration and a held-out
non-member are exchangeable: each score is the same function of the image's own target and shadow scaled logits
and of spreads estimated once over the whole pool. The thresholds set on the calibration part therefore reach
their FPR on the held-out part (which measures it), as offline.

Scores: ``lira`` becomes online LiRA's log likelihood ratio (:func:`auditor_membership.lira.online_scores`), and
``rmia`` uses ``Pr(x)`` = the mean of ``p_y`` over all shadow models, IN and OUT (the paper's online form, no
offline correction ``a``). With ``query_augmentations = "shifts"`` the target and every shadow model are also queried on
shifted copies of each image (:mod:`auditor_membership.augment`) and ``lira`` sums the per-query log likelihood ratios;
``rmia`` keeps the unshifted query.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from auditor_membership import augment, lira, rmia
from auditor_membership.reference import reference_scaled_logits, resolve_factory, train_reference_models

if TYPE_CHECKING:
    from auditor import Classifier, RunContext
    from auditor_membership.config import MembershipConfig

log = logging.getLogger(__name__)
SETS = ("members", "calibration", "held_out")


def add_online_scores(model: Classifier, images: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], scores: dict,
                      cfg: MembershipConfig, ctx: RunContext) -> tuple[list[str], int, dict[str, np.ndarray] | None]:
    """Trains the shadow models, adds ``scores[set]["lira"]`` (online LiRA) and returns notes, the shadow-model count and
    ``log Pr(x)`` per set for RMIA (``None`` when no shadow model finished within the budget)."""
    sizes = [len(labels[s]) for s in SETS]
    pool_x = torch.cat([images[s] for s in SETS])
    pool_y = torch.cat([labels[s] for s in SETS])
    target_loss = float(-scores["members"]["loss"].mean()) if cfg.reference_fit == "match" else None
    nets, in_mask, facts = train_reference_models(
        model, resolve_factory(cfg.reference_factory, model), pool_x, pool_y, cfg.reference_models, epochs=cfg.reference_epochs,
        lr=cfg.reference_lr, batch_size=cfg.reference_batch_size, budget_s=cfg.reference_time_budget_s, ctx=ctx,
        target_loss=target_loss, weight_decay=cfg.reference_weight_decay, whole_halves=True)
    if not nets:
        return [f"Online LiRA: no shadow model finished within {cfg.reference_time_budget_s:g} s; no lira score."], 0, None
    shifts = augment.offsets(cfg.query_augmentations, cfg.query_shift)
    if len(shifts) == 1:
        phi = reference_scaled_logits(nets, pool_x, pool_y, cfg.batch_size)
        phi_target = np.concatenate([scores[s]["scaled_logit"] for s in SETS])
        lr, variance = lira.online_scores(phi_target, phi, in_mask, cfg.lira_variance)
    else:   # the same fixed shifts for the target and every shadow model; one IN/OUT fit per shift, log LRs summed
        phi_all = augment.shadow_scaled_logits(nets, pool_x, pool_y, shifts, cfg.batch_size)
        phi_target = augment.target_scaled_logits(model, pool_x, pool_y, shifts, cfg.batch_size)
        lr, variance = lira.online_scores_augmented(phi_target, phi_all, in_mask, cfg.lira_variance)
        phi = phi_all[:, :, 0]   # the unshifted query (RMIA's Pr(x))
    log_marginal = rmia.log_mean_probability(-np.logaddexp(0.0, -phi))  # log mean_k p_y, p_y = 1 / (1 + e^-φ)
    bounds = np.cumsum([0, *sizes])
    out = {}
    for s, lo, hi in zip(SETS, bounds[:-1], bounds[1:]):
        scores[s]["lira"] = lr[lo:hi]
        out[s] = log_marginal[lo:hi]
    goal = f"until its mean training loss reached the target's member loss {target_loss:.3g} or " if target_loss else ""
    fits = ", ".join(f"{f['epochs']:.0f} ep / {f['train_loss']:.2g} / {f['seconds']:.0f} s" for f in facts)
    notes = [f"Online LiRA ({cfg.reference_factory}): {len(nets)} shadow models in pairs on complementary random halves of a pool "
             f"of {len(pool_y)} images ({sizes[0]} members, {sizes[1]} calibration and {sizes[2]} held-out non-members, treated "
             f"alike), {int(in_mask[:, 0].sum())}–{int(in_mask[:, 1].sum())} images each, so every image is IN for "
             f"{len(nets) // 2} of them; each trained {goal}{cfg.reference_epochs} epochs (epochs / final mean training loss / "
             f"time: {fits}). lira = log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²), {variance.replace('_', '-')} variances"
             + (f", summed over {len(shifts)} queries per image (the image and its shifts by {cfg.query_shift} pixel(s), "
                "zero padding; one IN/OUT fit per query; target and shadows queried alike)." if len(shifts) > 1 else "."),
             "RMIA online: Pr(x) = mean p_y over all shadow models, IN and OUT "
             f"(γ = {cfg.rmia_gamma:g}; the offline constant a does not apply)."]
    return notes, len(nets), out
