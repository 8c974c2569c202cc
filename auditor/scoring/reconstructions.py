"""Score reconstructions against the data the auditor holds, calibrated by real non-members.

Per reconstruction: the nearest same-class member (by the configured comparison, plain or
affine-fit SSIM, see :mod:`auditor.scoring.similarity`), a one-to-one Hungarian match per class, the
nearest calibration non-member, and optionally the LPIPS nearest. The reference images are split
per class into a calibration part and a held-out null part (:mod:`auditor.scoring.reference`);
the null goes through exactly the same path as the reconstructions. From that:

* likely copies: nearest-member similarity above the conformal threshold at ``alpha``
  (:mod:`auditor.scoring.calibration`) and closer to the member than to an equal-size pool of
  non-members; their count against the null's rate by a one-sided binomial test;
* distinct members recovered: the members that likely copies point to;
* the null-centred gap with a subsampling interval (:mod:`auditor.scoring.gap`);
* TPR at the lowest null FPRs the null's size supports.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from auditor.core.results import ClassScore, SampleScore, Scores
from auditor.data.sets import AuditData
from auditor.scoring.calibration import (
    CopyRule,
    copy_p_value,
    fit_copy_rule,
    tpr_at_null_fpr,
)
from auditor.scoring.config import ScoringConfig
from auditor.scoring.gap import GapClass, centred_gap, expected_max, subsample_interval
from auditor.scoring.reference import ReferenceClass, reference_classes, split_reference
from auditor.scoring.similarity import (
    WIN,
    ensure_min_size,
    hungarian_match,
    similarity_matrix,
)

if TYPE_CHECKING:
    from auditor.scoring.lpips_scorer import LpipsScorer

log = logging.getLogger(__name__)


def _validate(recon: torch.Tensor, labels: torch.Tensor, data: AuditData) -> tuple[torch.Tensor, np.ndarray]:
    if recon.dim() != 4 or tuple(recon.shape[1:]) != tuple(data.image_shape):
        raise ValueError(f"reconstructions: expected [N, {', '.join(map(str, data.image_shape))}], got {list(recon.shape)}")
    lab = torch.as_tensor(labels).detach().cpu().reshape(-1).numpy()
    if lab.shape[0] != recon.shape[0]:
        raise ValueError(f"expected one label per reconstruction ({recon.shape[0]}), got {lab.shape[0]}")
    if lab.size and (lab.min() < 0 or lab.max() >= data.num_classes):
        raise ValueError(f"labels must lie in 0..{data.num_classes - 1}, got {lab.min()}..{lab.max()}")
    recon = recon.detach().float().cpu()
    if not torch.isfinite(recon).all():
        raise ValueError("reconstructions contain NaN or infinite pixels")
    return recon.clamp(0.0, 1.0), lab.astype(np.int64)


def _names(data: AuditData, labels: list[int]) -> str:
    return ", ".join(data.class_name(c) for c in labels)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def likely_copy_flags(to_members: np.ndarray, to_reference: np.ndarray, threshold: float) -> np.ndarray:
    """Above the threshold, and closer to the nearest member than to an equal-size pool of non-members.

    The non-member side is the expected best similarity over a random subset of the calibration
    pool as large as the class's member set (all of it when the pool is smaller).
    """
    best = to_members.max(axis=1) if to_members.shape[1] else np.full(to_members.shape[0], -np.inf)
    flags = best > threshold
    if to_reference.shape[1]:
        flags &= best > expected_max(to_reference, min(to_members.shape[1], to_reference.shape[1]))
    return flags


def _lpips_nearest(samples: list[SampleScore], recon: torch.Tensor, data: AuditData, rows: dict[int, np.ndarray],
                   sims: dict[int, np.ndarray], members: dict[int, np.ndarray], scorer: LpipsScorer | None,
                   cfg: ScoringConfig) -> str:
    if scorer is None:
        return "LPIPS not computed: no LPIPS scorer was given."
    if not scorer.available:
        return f"LPIPS not computed: {scorer.reason}"
    for c, sm in sims.items():
        take = min(cfg.lpips_pool, sm.shape[1])
        order = np.argsort(-sm, axis=1, kind="stable")[:, :take].T.ravel()  # round-robin over the rankings
        _, first = np.unique(order, return_index=True)
        pool = members[c][order[np.sort(first)][:take]]
        dist = scorer.matrix(recon[rows[c]], data.members.images[pool]).numpy()
        for i, r in enumerate(rows[c]):
            samples[r].nearest_member_lpips = float(dist[i].min())
    note = (f"LPIPS ({getattr(scorer, 'net', '?')}) nearest member searched among up to {cfg.lpips_pool} members per "
            "class: those most similar to the class's reconstructions.")
    c, h, w = recon.shape[1:]
    if min(h, w) < 32:
        note += f" Images of {h}x{w} px were resized to at least 32 px for LPIPS."
    if c == 1:
        note += " Grey images were repeated to 3 channels for LPIPS."
    return note


def _copy_rule(refs: dict[int, ReferenceClass], data: AuditData, cfg: ScoringConfig, notes: list[str]) -> CopyRule:
    rule = fit_copy_rule({c: k.calibration_best for c, k in refs.items()}, cfg.alpha)
    what = "SSIM after an affine intensity fit a·x + b, a >= 0" if cfg.comparison == "affine" else "plain SSIM"
    notes.append(
        f"Comparison: {what}. A reconstruction is a likely copy when its nearest-member similarity exceeds the conformal "
        f"threshold at alpha = {cfg.alpha:g} (the ceil((n+1)(1-alpha))-th of n calibration non-members' nearest-member "
        "similarities, per class) and it is closer to that member than to an equal-size pool of calibration non-members. "
        "Held-out non-members go through the same rule as the null.")
    text = rule.describe({c: data.class_name(c) for c in refs})
    short = [c for c, k in refs.items() if len(k.members) > len(k.calibration)]
    if short:
        notes.append(f"In classes {_names(data, short)} the members outnumber the calibration pool, so the closer-than check "
                     "compares with the whole (smaller) pool there; the threshold and the null test carry the guarantee.")
    if text:
        notes.append(text.strip())
    return rule


def score_reconstructions(recon: torch.Tensor, labels: torch.Tensor, data: AuditData, *, config: ScoringConfig | None = None,
                          lpips: LpipsScorer | None = None, seed: int = 0, cache: dict[Any, Any] | None = None) -> Scores:
    """Score reconstructions [N, C, H, W] (labels [N]) against the members and reference data.

    Deterministic for a seed. ``cache`` is the audit's scoring cache (see :mod:`auditor.scoring.reference`).

    Raises:
        ValueError: reconstructions or labels disagree with the data.
    """
    cfg = config or ScoringConfig()
    start = time.perf_counter()
    recon, lab = _validate(recon, labels, data)
    notes: list[str] = []
    mem_lab = data.members.labels.numpy()
    s_recon, s_mem = ensure_min_size(recon, WIN), ensure_min_size(data.members.images, WIN)
    s_ref = ensure_min_size(data.reference.images, WIN) if data.reference is not None else None
    if s_recon.shape != recon.shape:
        notes.append(f"Images of {recon.shape[-2]}x{recon.shape[-1]} px were upsampled bilinearly to "
                     f"{s_recon.shape[-2]}x{s_recon.shape[-1]} for SSIM (its Gaussian window needs {WIN} px).")
    samples = [SampleScore(index=i, label=int(c)) for i, c in enumerate(lab)]
    scores = Scores(calibrated=False, comparison=cfg.comparison)
    refs = reference_classes(data, s_mem, s_ref, cfg, seed, cache) if s_ref is not None else {}
    rows: dict[int, np.ndarray] = {}
    to_mem: dict[int, np.ndarray] = {}
    to_ref: dict[int, np.ndarray] = {}
    mem_idx: dict[int, np.ndarray] = {}
    for c in np.unique(lab).tolist():
        rows[c] = np.flatnonzero(lab == c)
        members = np.flatnonzero(mem_lab == c)
        if len(members):
            mem_idx[c] = members
            to_mem[c] = sm = similarity_matrix(s_recon[rows[c]], s_mem[members], cfg.comparison).numpy()
            best = sm.argmax(axis=1)
            for i, r in enumerate(rows[c]):
                samples[r].nearest_member, samples[r].nearest_member_ssim = int(members[best[i]]), float(sm[i, best[i]])
            for i, j in zip(*hungarian_match(sm)):
                samples[rows[c][i]].matched_member, samples[rows[c][i]].matched_member_ssim = int(members[j]), float(sm[i, j])
        if s_ref is not None:
            cal = refs[c].calibration if c in refs else split_reference(
                data.reference.labels.numpy(), c, cfg.baseline_per_class, cfg.calibration_share, seed)[0]
            if not len(cal):
                continue
            to_ref[c] = sq = similarity_matrix(s_recon[rows[c]], s_ref[cal], cfg.comparison).numpy()
            best = sq.argmax(axis=1)
            for i, r in enumerate(rows[c]):
                samples[r].nearest_reference, samples[r].nearest_reference_ssim = int(cal[best[i]]), float(sq[i, best[i]])
    missing = [c for c in rows if c not in mem_idx]
    if missing:
        notes.append(f"Classes {_names(data, missing)} have reconstructions but no member images: their samples "
                     "have no member scores.")
    if s_ref is None:
        notes.append("Uncalibrated: no reference (non-member) images were given, so there is no baseline of the similarity "
                     "real non-member images reach; the similarities cannot be read as leakage and no sample is marked a "
                     "likely copy. Give reference data to calibrate.")
    elif not refs:
        notes.append("Uncalibrated: no reference image shares a class with the members.")
    else:
        _judge(scores, samples, refs, rows, to_mem, to_ref, data, cfg, seed, notes)
    scores.lpips_note = _lpips_nearest(samples, recon, data, rows, to_mem, mem_idx, lpips, cfg)
    _aggregate(scores, samples, rows, data)
    scores.calibration_note = " ".join(notes) if samples else "No reconstructions to score."
    log.info("scored %d reconstructions in %.1f s", len(samples), time.perf_counter() - start)
    return scores


def _judge(scores: Scores, samples: list[SampleScore], refs: dict[int, ReferenceClass], rows: dict[int, np.ndarray],
           to_mem: dict[int, np.ndarray], to_ref: dict[int, np.ndarray], data: AuditData, cfg: ScoringConfig, seed: int,
           notes: list[str]) -> None:
    """Likely copies against the null, the null-centred gap and the ROC at low null FPR."""
    rule = _copy_rule(refs, data, cfg, notes)
    if rule.alpha is None:
        return
    scores.calibrated = True
    scores.alpha, scores.alpha_requested = rule.alpha, rule.alpha_requested
    scores.copy_rule_calibrated, scores.pooled_classes = rule.calibrated_at_requested, sorted(rule.pooled)
    null_flags = {c: likely_copy_flags(k.null_members, k.null_calibration, rule.thresholds[c]) for c, k in refs.items()}
    scores.null_count = int(sum(len(f) for f in null_flags.values()))
    scores.null_likely_copies = int(sum(int(f.sum()) for f in null_flags.values()))
    scores.null_copy_rate = scores.null_likely_copies / scores.null_count if scores.null_count else None
    judged = 0
    for c, r in rows.items():
        if c not in refs or c not in to_mem:
            continue
        flags = likely_copy_flags(to_mem[c], to_ref[c], rule.thresholds[c])
        judged += len(r)
        for i, idx in enumerate(r):
            samples[idx].likely_copy = bool(flags[i])
    copies = [s for s in samples if s.likely_copy]
    scores.likely_copies = len(copies)
    scores.distinct_members_recovered = len({s.nearest_member for s in copies})
    scores.copy_null_rate = max(rule.alpha, scores.null_copy_rate or 0.0)
    scores.copy_expected_by_null = scores.copy_null_rate * judged
    scores.copy_p_value = copy_p_value(len(copies), judged, scores.copy_null_rate)
    notes.append(f"Null: {scores.null_likely_copies} of {scores.null_count} held-out non-members are likely copies "
                 f"({(scores.null_copy_rate or 0.0):.1%}); the binomial test assumes the larger of that and alpha "
                 f"({scores.copy_null_rate:.2%}), so {scores.copy_expected_by_null:.2f} of {judged} reconstructions are "
                 f"expected by chance; one-sided p = {scores.copy_p_value:.3g}.")
    for cs in [c for c in rows if c in refs]:
        k = refs[cs]
        extra = {"calibration_count": len(k.calibration) if cs not in rule.pooled else 0, "threshold_pooled": cs in rule.pooled,
                 "null_count": len(k.null), "null_copy_rate": float(null_flags[cs].mean()) if len(k.null) else None,
                 "copy_threshold": rule.thresholds[cs]}
        scores.per_class.append(ClassScore(label=cs, name=data.class_name(cs), count=len(rows[cs]), **extra))
    null_all = {c: np.concatenate([k.calibration_best, k.null_best]) for c, k in refs.items()}
    best = {c: to_mem[c].max(axis=1) for c in rows if c in to_mem and c in refs}
    scores.roc_null_count = int(sum(len(v) for v in null_all.values()))
    scores.copy_tpr_at_1pct_null_fpr = tpr_at_null_fpr(best, null_all, 0.01)
    scores.copy_tpr_at_0_1pct_null_fpr = tpr_at_null_fpr(best, null_all, 0.001)
    _gap(scores, refs, rows, to_mem, to_ref, data, cfg, seed, notes)


def _gap(scores: Scores, refs: dict[int, ReferenceClass], rows: dict[int, np.ndarray], to_mem: dict[int, np.ndarray],
         to_ref: dict[int, np.ndarray], data: AuditData, cfg: ScoringConfig, seed: int, notes: list[str]) -> None:
    used = [c for c in rows if c in to_mem and c in refs and len(refs[c].null)]
    if not used:
        notes.append("Gap not computed: no class has reconstructions, members, calibration and held-out null images.")
        return
    classes = [GapClass(to_mem[c], to_ref[c], refs[c].null_members, refs[c].null_calibration) for c in used]
    gap = centred_gap(classes)
    scores.gap_kind, scores.gap, scores.raw_gap, scores.null_gap = "null_centred", gap.centred, gap.recon, gap.null
    by_label = {p.label: p for p in scores.per_class}
    for c, g_rec, g_null in zip(used, gap.per_class_recon, gap.per_class_null):
        if c in by_label:
            by_label[c].gap = g_rec - g_null
    if cfg.replicates:
        scores.gap_ci_low, scores.gap_ci_high = subsample_interval(classes, gap.centred, cfg.replicates, cfg.confidence,
                                                                   np.random.default_rng(seed))
    skipped = sorted(set(rows) - set(used))
    notes.append(f"Gap (null-centred): the reconstructions' equal-pool gap (best similarity to a random subset of the class's "
                 f"members as large as the calibration pool, minus best similarity to the calibration pool) {gap.recon:+.3f}, "
                 f"minus the gap held-out non-members reach the same way {gap.null:+.3f}; {cfg.confidence:.0%} interval from "
                 f"{cfg.replicates} delete-half subsamples of reconstructions, members, calibration and null images."
                 + (f" Classes {_names(data, skipped)} are left out of the gap." if skipped else ""))


def _aggregate(scores: Scores, samples: list[SampleScore], rows: dict[int, np.ndarray], data: AuditData) -> None:
    by_label = {p.label: p for p in scores.per_class}
    per_class = []
    for c, r in rows.items():
        mine = [samples[i] for i in r]
        best_vals = [s.nearest_member_ssim for s in mine if s.nearest_member_ssim is not None]
        entry = by_label.get(c) or ClassScore(label=c, name=data.class_name(c), count=len(mine))
        entry.matched_ssim_mean = _mean([s.matched_member_ssim for s in mine])
        entry.best_ssim_mean, entry.best_ssim_max = _mean(best_vals), (max(best_vals) if best_vals else None)
        entry.reference_best_ssim_mean = _mean([s.nearest_reference_ssim for s in mine])
        entry.likely_copies = sum(s.likely_copy for s in mine)
        entry.likely_copy_share = entry.likely_copies / len(mine) if scores.calibrated and entry.copy_threshold is not None else None
        per_class.append(entry)
    scores.per_class = per_class
    best_all = [s.nearest_member_ssim for s in samples if s.nearest_member_ssim is not None]
    scores.matched_ssim_mean = _mean([s.matched_member_ssim for s in samples])
    scores.best_ssim_mean, scores.best_ssim_max = _mean(best_all), (max(best_all) if best_all else None)
    scores.reference_best_ssim_mean = _mean([s.nearest_reference_ssim for s in samples])
    scores.likely_copy_share = scores.likely_copies / len(samples) if scores.calibrated and samples else None
    scores.lpips_best_mean = _mean([s.nearest_member_lpips for s in samples])
    scores.samples = samples
