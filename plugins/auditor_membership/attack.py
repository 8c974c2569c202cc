"""The ``membership`` attack: calibrated membership inference from queries (threshold scores and population RMIA)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from auditor import (
    Attack,
    AttackOutput,
    AttackResult,
    Capability,
    CapabilityError,
    Figure,
    Finding,
    Metric,
    RunContext,
    Table,
)
from auditor_membership import lira, rmia
from auditor_membership.calibration import class_pvalues, split_reference
from auditor_membership.config import MembershipConfig
from auditor_membership.evaluate import FPRS, ScoreEvaluation, evaluate_score
from auditor_membership.figures import exposed_members_figure, roc_figure
from auditor_membership.severity import SeverityRules, finding
from auditor_membership.signals import SCORES, all_scores

if TYPE_CHECKING:
    from auditor import AuditData, AuditRun, Classifier

SMOKE = {"max_members": 200, "max_reference": 400, "bootstrap_rounds": 50}
SETS = ("members", "calibration", "held_out")


@torch.no_grad()
def query(model: Classifier, images: torch.Tensor, ctx: RunContext, batch_size: int, desc: str) -> np.ndarray:
    """Logits of every image, float64 [N, K], through the query interface only."""
    parts = [model.logits(images[i:i + batch_size]).detach().cpu().double()
             for i in ctx.progress(range(0, len(images), batch_size), desc=desc, total=-(-len(images) // batch_size))]
    return torch.cat(parts).numpy()


def resolve_primary(cfg: MembershipConfig, reference_models: int) -> str:
    """The pre-declared primary score: as configured, or (auto) rmia with offline reference models, lira (online LiRA) with
    online shadow models, and scaled_logit without either."""
    if cfg.primary != "auto":
        return cfg.primary
    if not reference_models:
        return "scaled_logit"
    return "lira" if cfg.reference_mode == "online" else "rmia"


def _subset(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def evaluation_split(n_members: int, reference_labels: np.ndarray, max_members: int, max_reference: int, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded choice of the members scored and of the reference images, and the per-class calibration/held-out split.

    Returns member indices, reference indices, and positions (into the reference indices) of the calibration
    and held-out parts. Public so that a benchmark can hand a peer tool exactly the same evaluation sets.
    """
    rng = np.random.default_rng(seed * 1000003 + 18)
    m_idx = _subset(n_members, max_members, rng)
    r_idx = _subset(len(reference_labels), max_reference, rng)
    cal_pos, held_pos = split_reference(reference_labels[r_idx], fraction, rng)
    return m_idx, r_idx, cal_pos, held_pos


def _cell(est, digits: int = 3, pct: bool = False) -> str:
    if est is None:
        return "not supported"
    f = (lambda v: f"{v:.{max(digits - 2, 1)}%}") if pct else (lambda v: f"{v:.{digits}f}")
    return f"{f(est.value)} [{f(est.low)}, {f(est.high)}]" if np.isfinite(est.low) else f(est.value)


class MembershipInference(Attack):
    """Membership inference calibrated on the auditor's reference set (see the package docstring)."""

    name = "membership"
    summary = ("Calibrated membership inference: loss, confidence, modified entropy, LiRA's scaled logit and population RMIA, "
               "with per-class thresholds, TPR at 1% and 0.1% FPR and confidence intervals.")
    requires = frozenset({Capability.QUERY})
    Config = MembershipConfig
    metrics = (
        Metric(name="auc", label="membership ROC AUC", higher_is_better=False, format=".3f"),
        Metric(name="tpr_at_1pct_fpr", label="TPR at 1% FPR", higher_is_better=False, format=".1%"),
        Metric(name="tpr_at_0.1pct_fpr", label="TPR at 0.1% FPR", higher_is_better=False, format=".2%"),
        Metric(name="members_above_heldout", label="members above every held-out non-member", higher_is_better=False, format="d",
               compare=False),
        Metric(name="exposure_p_value", label="chance of that many without leakage", higher_is_better=None, format=".2g", compare=False),
        Metric(name="balanced_accuracy", label="membership balanced accuracy", higher_is_better=False, format=".3f", compare=False),
        Metric(name="auc_ci_low", higher_is_better=False, format=".3f", compare=False),
        Metric(name="auc_ci_high", higher_is_better=False, format=".3f", compare=False),
        Metric(name="members_scored", higher_is_better=None, format="d", compare=False),
        Metric(name="calibration_scored", higher_is_better=None, format="d", compare=False),
        Metric(name="heldout_scored", higher_is_better=None, format="d", compare=False),
        Metric(name="reference_models", higher_is_better=None, format="d", compare=False),
    )

    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        cfg: MembershipConfig = self.config  # type: ignore[assignment]
        limits = {k: min(getattr(cfg, k), v) if ctx.smoke else getattr(cfg, k) for k, v in SMOKE.items()}
        if data.reference is None or len(data.reference) < 4:
            raise CapabilityError("membership inference needs non-member reference data (--reference): part of it sets the "
                                  "thresholds and the rest measures the false-positive rate")
        m_idx, r_idx, cal_pos, held_pos = evaluation_split(len(data.members), data.reference.labels.numpy(), limits["max_members"],
                                                           limits["max_reference"], cfg.calibration_fraction, ctx.seed)
        images = {"members": data.members.images[m_idx], "calibration": data.reference.images[r_idx[cal_pos]],
                  "held_out": data.reference.images[r_idx[held_pos]]}
        labels = {"members": data.members.labels[m_idx], "calibration": data.reference.labels[r_idx[cal_pos]],
                  "held_out": data.reference.labels[r_idx[held_pos]]}
        if min(len(labels["calibration"]), len(labels["held_out"])) < 2:
            raise CapabilityError(f"too few reference images to split: {len(r_idx)} given, need at least 2 per part")
        logits = {s: query(model, images[s], ctx, cfg.batch_size, s.replace("_", "-")) for s in SETS}
        y = {s: labels[s].numpy() for s in SETS}
        scores = {s: all_scores(logits[s], y[s]) for s in SETS}
        notes, ref_count = self._rmia(model, data, images, labels, scores, ctx, cfg)
        names = (*SCORES, "rmia") + (("lira",) if ref_count else ())
        primary = resolve_primary(cfg, ref_count)
        if primary not in names:
            raise CapabilityError(f"primary score {primary!r} needs reference models (reference_models > 0); none were trained")
        level = cfg.confidence_level
        evaluations = {n: evaluate_score(n, scores["members"][n], y["members"], scores["calibration"][n], y["calibration"],
                                         scores["held_out"][n], y["held_out"], rounds=limits["bootstrap_rounds"], level=level,
                                         rng=np.random.default_rng(ctx.seed + i), per_class=cfg.per_class_thresholds)
                       for i, n in enumerate(names)}
        ctx.check_deadline()
        counts = {"members_scored": len(m_idx), "calibration_scored": len(cal_pos), "heldout_scored": len(held_pos),
                  "reference_models": ref_count}
        accuracy = {f"{'heldout' if s == 'held_out' else s}_accuracy": float((logits[s].argmax(1) == y[s]).mean()) for s in SETS}
        metrics = {k: float(v) for k, v in (counts | accuracy).items()}
        for n, ev in evaluations.items():
            metrics |= ev.metrics(f"{n}_")
        metrics |= evaluations[primary].metrics("")
        notes += self._support_notes(evaluations[primary], primary)
        notes.append(self._exposure_note(evaluations[primary], len(m_idx), len(held_pos)))
        figures = [roc_figure({n: (scores["members"][n], scores["held_out"][n]) for n in names}, primary, len(held_pos))]
        tables = [self._table(evaluations, primary, len(m_idx), len(cal_pos), len(held_pos), level)]
        if cfg.exposed_members:
            figure, table = self._exposed(data, m_idx, scores, y, primary, cfg.exposed_members)
            figures.append(figure)
            tables.append(table)
        notes.insert(0, f"Primary score: {primary} (declared before the run: "
                        f"{'configured' if cfg.primary != 'auto' else 'rmia with offline reference models, lira with online ones, scaled_logit without'}); "
                        "picking the best score after the fact would bias the result upwards.")
        return AttackOutput(metrics=metrics, tables=tables, figures=figures, notes=notes, score=False)

    def _rmia(self, model: Classifier, data: AuditData, images: dict, labels: dict, scores: dict, ctx: RunContext,
              cfg: MembershipConfig) -> tuple[list[str], int]:
        """Adds ``scores[set]["rmia"]`` (population = the calibration non-members) and, with reference models, ``["lira"]``.
        Returns notes and the reference-model count."""
        log_p = {s: scores[s]["loss"] for s in SETS}  # log p_y under the target
        log_out, notes, count, marginal = dict(log_p), [], 0, None
        if cfg.reference_models and cfg.reference_mode == "online":
            from auditor_membership.online import add_online_scores

            notes, count, marginal = add_online_scores(model, images, labels, scores, ctx=ctx, cfg=cfg)
        elif cfg.reference_models:
            from auditor_membership.reference import matched_out_mask, reference_scaled_logits, resolve_factory, train_reference_models

            target_loss = float(-scores["members"]["loss"].mean()) if cfg.reference_fit == "match" else None
            nets, in_mask, facts = train_reference_models(
                model, resolve_factory(cfg.reference_factory, model), images["calibration"], labels["calibration"],
                cfg.reference_models, epochs=cfg.reference_epochs, lr=cfg.reference_lr, batch_size=cfg.reference_batch_size,
                budget_s=cfg.reference_time_budget_s, ctx=ctx, train_size=cfg.reference_train_size, target_loss=target_loss,
                weight_decay=cfg.reference_weight_decay)
            count = len(nets)
            if count:
                fits = ", ".join(f"{f['epochs']:.0f} ep / {f['train_loss']:.2g}" for f in facts)
                goal = f"until its mean training loss reached the target's member loss {target_loss:.3g} or " if target_loss else ""
                notes.append(f"Reference models ({cfg.reference_factory}): each trained {goal}{cfg.reference_epochs} epochs "
                             f"(epochs / final mean training loss: {fits}).")
            if count:
                rng = np.random.default_rng(ctx.seed + 77)
                for s in SETS:
                    phi = reference_scaled_logits(nets, images[s], labels[s], cfg.batch_size)
                    out_mask = matched_out_mask(in_mask if s == "calibration" else np.zeros(phi.shape, dtype=bool), rng)
                    log_out[s] = rmia.log_mean_probability(-np.logaddexp(0.0, -phi), out_mask)  # log p_y = -log(1 + e^-φ)
                    scores[s]["lira"] = lira.offline_scores(scores[s]["scaled_logit"], phi, out_mask)
                notes.append(f"RMIA: {count} reference models trained on halves of the calibration non-members, one OUT model per "
                             "pair for every scored example "
                             f"(Pr(x) = ((1+a)·Pr_OUT(x) + 1 - a)/2, a = {cfg.rmia_a:g}, γ = {cfg.rmia_gamma:g}); offline LiRA "
                             "from the same models (scaled logit minus its mean over the OUT models, fixed variance).")
            else:
                notes.append(f"RMIA: no reference model finished within {cfg.reference_time_budget_s:g} s; population RMIA without them.")
        if not count:
            notes.append("RMIA without reference models: Pr(x) is approximated from the target's own p_y "
                         f"(Pr(x) = ((1+a)·p_y + 1 - a)/2, a = {cfg.rmia_a:g}), so RMIA ranks like the loss attack; "
                         "see docs/membership.md.")
        ratio = {s: log_p[s] - marginal[s] if marginal is not None else rmia.log_ratio(log_p[s], log_out[s], cfg.rmia_a)
                 for s in SETS}
        for s in SETS:
            own = np.arange(len(ratio[s])) if s == "calibration" else None
            scores[s]["rmia"] = rmia.rmia_scores(ratio[s], ratio["calibration"], cfg.rmia_gamma, own)
        return notes, count

    @staticmethod
    def _support_notes(ev: ScoreEvaluation, primary: str) -> list[str]:
        out = []
        for alpha, point in ev.points.items():
            if point.thresholds.reason:
                out.append(f"{primary} at {alpha:.1%} FPR: {point.thresholds.reason}.")
        return out

    @staticmethod
    def _exposure_note(ev: ScoreEvaluation, n_members: int, n_held: int) -> str:
        """How many members the primary score places above every held-out non-member, with its exact chance under no leakage."""
        if not ev.exposed:
            return (f"Exposed members: none of the {n_members} members scores above every one of the {n_held} held-out "
                    f"non-members on {ev.name}.")
        return (f"Exposed members: {ev.exposed} of the {n_members} members score above every one of the {n_held} held-out "
                f"non-members on {ev.name}: identified with no false positive among them. If the score said nothing about "
                f"membership, that many would rank above every non-member with probability {ev.exposure_p:.2g} (the top "
                f"{ev.exposed} of the {n_members + n_held} pooled scores all members: C(n, k) / C(n + m, k)). The level is "
                "set by the TPR and AUC rules, not by this count.")

    @staticmethod
    def _exposed(data: AuditData, m_idx: np.ndarray, scores: dict, y: dict, primary: str, count: int) -> tuple[Figure, Table]:
        """The most exposed members: their picture (private) and a table of their positions in the member set, so that they
        can be found and removed or deduplicated."""
        member_scores = scores["members"][primary]
        p = class_pvalues(scores["calibration"][primary], y["calibration"], member_scores, y["members"])
        order = np.lexsort((-member_scores, p))[:count]
        names = [data.class_name(c) for c in y["members"][order]]
        top = float(scores["held_out"][primary].max())
        table = Table(title="Most exposed members", columns=["member index", "class", f"{primary} score", "class p-value",
                                                             "above every held-out non-member"],
                      rows=[[int(m_idx[i]), names[j], round(float(member_scores[i]), 4), float(f"{p[i]:.3g}"),
                             "yes" if member_scores[i] > top else "no"] for j, i in enumerate(order)],
                      caption="Member index: the position in the member set the audit was given (0-based). Class p-value: the "
                              "share of the class's calibration non-members scoring at least as member-like. Ordered as the figure.")
        figure = exposed_members_figure(data.members.images[torch.from_numpy(m_idx[order])], names, p[order], primary)
        return figure, table

    @staticmethod
    def _table(evaluations: dict[str, ScoreEvaluation], primary: str, n_m: int, n_c: int, n_h: int, level: float) -> Table:
        columns = ["score", "AUC", "best balanced accuracy"]
        for alpha in FPRS:
            columns += [f"TPR @ {alpha:.1%} FPR", f"held-out FPR @ {alpha:.1%}", f"thresholds @ {alpha:.1%}"]
        rows = []
        for n, ev in evaluations.items():
            row = [n + (" (primary)" if n == primary else ""), _cell(ev.auc), _cell(ev.balanced_accuracy)]
            for alpha in FPRS:
                pt = ev.points[alpha]
                row += [_cell(pt.tpr, 4, pct=True), _cell(pt.fpr, 4, pct=True), pt.thresholds.mode.replace("_", " ")]
            rows.append(row)
        return Table(title="Membership inference: members vs held-out non-members", columns=columns, rows=rows,
                     caption=f"{n_m} members, {n_h} held-out non-members; thresholds and RMIA's population from {n_c} calibration "
                             f"non-members. Brackets: {level:.0%} intervals (AUC, balanced accuracy: percentile bootstrap; TPR, FPR: "
                             "exact Clopper-Pearson). Balanced accuracy is at the best threshold on the evaluation data (optimistic). "
                             "Chance: AUC 0.5, TPR equal to the FPR.")

    def assess(self, result: AttackResult, run: AuditRun | None = None) -> list[Finding]:
        """One finding from the primary score, by the rules in :mod:`auditor_membership.severity`."""
        cfg: MembershipConfig = self.config  # type: ignore[assignment]
        if "auc" not in result.metrics or "auc_ci_low" not in result.metrics:
            return []
        primary = resolve_primary(cfg, int(result.metrics.get("reference_models", 0)))
        rules = SeverityRules(fprs=cfg.severity_fprs, high_ratio=cfg.high_ratio, medium_ratio=cfg.medium_ratio,
                              auc_high=cfg.auc_high, auc_medium=cfg.auc_medium)
        return [finding(self.name, primary, result.metrics, rules, cfg.confidence_level)]
