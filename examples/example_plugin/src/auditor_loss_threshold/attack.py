"""The ``membership`` attack: threshold membership inference, calibrated on the auditor's members and non-members."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from auditor import Attack, AttackConfig, AttackOutput, AttackResult, Capability, Finding, RunContext, Severity
from auditor.errors import CapabilityError
from auditor.results import Figure, Table
from auditor_loss_threshold.roc import Roc, roc_curve, roc_figure_png

if TYPE_CHECKING:
    from auditor.data import AuditData, LabeledImages
    from auditor.model import Classifier

SIGNALS = ("loss", "confidence")
SMOKE_MAX_PER_SET = 300


class MembershipConfig(AttackConfig):
    """Options of the ``loss_threshold`` attack (``[attacks.loss_threshold]``, ``--set loss_threshold.KEY=VALUE``)."""

    signal: Literal["best", "loss", "confidence"] = Field(
        "best", description="Score the findings use: loss (needs labels), confidence (max softmax, label-free) or the best of both.")
    max_per_set: int = Field(4000, ge=10, description="Class-balanced cap on the members and on the non-members scored (smoke: 300).")
    batch_size: int = Field(256, ge=1, description="Images per query.")
    auc_medium: float = Field(0.60, gt=0.5, le=1.0, description="ROC AUC at or above which membership leakage is medium.")
    auc_high: float = Field(0.75, gt=0.5, le=1.0, description="ROC AUC at or above which membership leakage is high.")
    tpr_medium: float = Field(0.03, gt=0.0, le=1.0, description="TPR at 1% FPR at or above which leakage is medium (3x chance).")
    tpr_high: float = Field(0.10, gt=0.0, le=1.0, description="TPR at 1% FPR at or above which leakage is high (10x chance).")
    min_reference_for_tpr: int = Field(
        100, ge=1, description="Fewer non-members than this: TPR at 1% FPR is reported but not used for findings.")
    z_min: float = Field(3.0, ge=0.0, description="The AUC must lie this many standard errors above 0.5 for any finding above info.")

    @model_validator(mode="after")
    def _ordered(self) -> MembershipConfig:
        if self.auc_high < self.auc_medium or self.tpr_high < self.tpr_medium:
            raise ValueError("high thresholds must be at least the medium ones "
                             f"(auc {self.auc_medium} / {self.auc_high}, tpr {self.tpr_medium} / {self.tpr_high})")
        return self


def balanced_pair(members: LabeledImages, reference: LabeledImages, num_classes: int, cap: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into members and reference with the same count per class (so class mix cannot fake a signal)."""
    per_class_cap = max(1, cap // num_classes)
    chosen_m, chosen_r = [], []
    for c in range(num_classes):
        pool_m = torch.nonzero(members.labels == c).flatten()
        pool_r = torch.nonzero(reference.labels == c).flatten()
        k = min(len(pool_m), len(pool_r), per_class_cap)
        if k == 0:
            continue
        chosen_m.append(pool_m[torch.randperm(len(pool_m), generator=generator)[:k]])
        chosen_r.append(pool_r[torch.randperm(len(pool_r), generator=generator)[:k]])
    if not chosen_m:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return torch.sort(torch.cat(chosen_m)).values, torch.sort(torch.cat(chosen_r)).values


def query_scores(model: Classifier, images: torch.Tensor, labels: torch.Tensor, ctx: RunContext, batch_size: int,
                 desc: str) -> dict[str, np.ndarray]:
    """Per-image membership scores (higher = more member-like) and correctness, from queries only.

    Scores are log-odds, computed in float64 from the logits so that confident predictions do not all
    round to a loss of 0 (or a confidence of 1): ``loss`` ranks by log(p_y / (1 - p_y)), the same order
    as the cross-entropy loss reversed; ``confidence`` by log(p_max / (1 - p_max)).
    """
    loss_scores, conf_scores, losses, correct = [], [], [], []
    for start in ctx.progress(range(0, len(images), batch_size), desc=desc, total=-(-len(images) // batch_size)):
        y = labels[start:start + batch_size]
        z = model.logits(images[start:start + batch_size]).detach().cpu().double()
        if not torch.isfinite(z).all():
            raise ValueError("the model returned non-finite logits; membership scores would be meaningless")
        loss_scores.append(_log_odds(z, y))
        conf_scores.append(_log_odds(z, z.argmax(1)))
        losses.append(torch.logsumexp(z, 1) - z.gather(1, y[:, None]).squeeze(1))
        correct.append(z.argmax(1) == y)
    return {"loss": torch.cat(loss_scores).numpy(), "confidence": torch.cat(conf_scores).numpy(),
            "raw_loss": torch.cat(losses).numpy(), "correct": torch.cat(correct).numpy()}


def _log_odds(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log(p_t / (1 - p_t)) for the softmax of logits ``z`` at class ``target``, without cancellation."""
    rows = torch.arange(len(z))
    others = z.clone()
    others[rows, target] = -torch.inf
    return z[rows, target] - torch.logsumexp(others, dim=1)


def _threshold_text(signal: str, roc: Roc) -> str:
    """The calibrated 1%-FPR threshold in the signal's own units (loss or probability)."""
    t = roc.threshold_at(0.01)
    if not np.isfinite(t):
        return "– (no threshold flags a member at ≤ 1% FPR)"
    if signal == "loss":
        return f"loss ≤ {float(np.log1p(np.exp(-t))):.4g}"
    return f"confidence ≥ {float(1 / (1 + np.exp(-t))):.6g}"


class MembershipInference(Attack):
    """Membership inference by loss or confidence threshold (Yeom et al. 2018; Salem et al. 2019).

    A model that fits its training images better than unseen ones gives them a lower loss and a higher
    confidence; thresholding that score tells members from non-members. The auditor holds both sets, so
    the attack is evaluated exactly: ROC AUC (0.5 = no signal) and TPR at 1% FPR (how many members are
    exposed when almost no non-member is falsely accused; chance is 1%).
    """

    name = "loss_threshold"
    summary = "Membership inference by loss or confidence threshold, calibrated on members vs non-members (ROC AUC, TPR at 1% FPR)."
    requires = frozenset({Capability.QUERY})
    Config = MembershipConfig

    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        config: MembershipConfig = self.config  # type: ignore[assignment]
        if data.reference is None or len(data.reference) == 0:
            raise CapabilityError("membership inference needs non-member reference data (--reference) to calibrate against")
        cap = min(config.max_per_set, SMOKE_MAX_PER_SET) if ctx.smoke else config.max_per_set
        idx_m, idx_r = balanced_pair(data.members, data.reference, data.num_classes, cap, ctx.generator(17))
        if len(idx_m) < 2:
            raise CapabilityError("members and reference share no class; a calibrated comparison is impossible")
        m = query_scores(model, data.members.images[idx_m], data.members.labels[idx_m], ctx, config.batch_size, "members")
        r = query_scores(model, data.reference.images[idx_r], data.reference.labels[idx_r], ctx, config.batch_size, "non-members")
        curves = {s: roc_curve(m[s], r[s]) for s in SIGNALS}
        used = _chosen_signal(config.signal, curves)
        metrics = {"members_scored": float(len(idx_m)), "reference_scored": float(len(idx_r)),
                   "members_accuracy": float(m["correct"].mean()), "reference_accuracy": float(r["correct"].mean()),
                   "members_mean_loss": float(m["raw_loss"].mean()), "reference_mean_loss": float(r["raw_loss"].mean())}
        for s, roc in curves.items():
            metrics |= {f"{s}_auc": roc.auc, f"{s}_auc_z": roc.null_z(), f"{s}_tpr_at_1pct_fpr": roc.tpr_at(0.01),
                        f"{s}_tpr_at_10pct_fpr": roc.tpr_at(0.10), f"{s}_best_balanced_accuracy": roc.best_balanced_accuracy()}
        metrics |= {"auc": curves[used].auc, "auc_z": curves[used].null_z(), "tpr_at_1pct_fpr": curves[used].tpr_at(0.01)}
        table = Table(title="Membership inference by threshold",
                      columns=["signal", "ROC AUC", "z vs 0.5", "TPR @ 1% FPR", "TPR @ 10% FPR", "best balanced accuracy", "threshold @ 1% FPR"],
                      rows=[[s + (" (used)" if s == used else ""), round(c.auc, 4), round(c.null_z(), 2), round(c.tpr_at(0.01), 4),
                             round(c.tpr_at(0.10), 4), round(c.best_balanced_accuracy(), 4), _threshold_text(s, c)]
                            for s, c in curves.items()],
                      caption=f"{len(idx_m)} members and {len(idx_r)} non-members, the same number per class. "
                              "Chance: AUC 0.5 and TPR equal to the FPR. The threshold is calibrated on the non-members.")
        notes = [f"Findings use the {used} signal ({'chosen as the stronger of loss and confidence' if config.signal == 'best' else 'configured'})."]
        if len(idx_r) < config.min_reference_for_tpr:
            notes.append(f"Only {len(idx_r)} non-members were scored, too few to measure a 1% false-positive rate (1% of them is "
                         f"{len(idx_r) / 100:.2g} images): TPR at 1% FPR is shown but not used for findings "
                         f"(that needs {config.min_reference_for_tpr} non-members).")
        figure = Figure(title="Membership inference ROC", png_base64=roc_figure_png(curves, "Members vs non-members by threshold"),
                        caption="True-positive rate (members found) against false-positive rate (non-members wrongly flagged); "
                                "the dotted diagonal is chance. Right: the same curves on log axes, with the 1% FPR operating point in red.")
        return AttackOutput(metrics=metrics, tables=[table], figures=[figure], notes=notes, score=False)

    def assess(self, result: AttackResult) -> list[Finding]:
        """Findings from the measured AUC and TPR at 1% FPR, by the documented thresholds in :class:`MembershipConfig`."""
        config: MembershipConfig = self.config  # type: ignore[assignment]
        mx = result.metrics
        if "auc" not in mx:
            return []
        auc, z, tpr, n_ref = mx["auc"], mx["auc_z"], mx["tpr_at_1pct_fpr"], int(mx["reference_scored"])
        used = _chosen_signal(config.signal, {s: mx[f"{s}_auc"] for s in SIGNALS})
        tpr_usable = n_ref >= config.min_reference_for_tpr
        facts = (f"ROC AUC {auc:.3f} ({z:.1f} standard errors above chance) and TPR {tpr:.1%} at 1% FPR, "
                 f"on {int(mx['members_scored'])} members and {n_ref} non-members; members' accuracy "
                 f"{mx['members_accuracy']:.1%} vs non-members' {mx['reference_accuracy']:.1%}.")
        if z < config.z_min:
            return [Finding(attack=self.name, title="No membership signal detected by loss or confidence thresholds", severity=Severity.INFO,
                            metric="auc", value=auc, threshold=config.auc_medium,
                            detail=facts + f" The AUC is not significantly above 0.5 (needs z ≥ {config.z_min:g}). "
                                           "Stronger attacks (shadow models, LiRA) may still succeed.")]
        for level, auc_t, tpr_t in ((Severity.HIGH, config.auc_high, config.tpr_high), (Severity.MEDIUM, config.auc_medium, config.tpr_medium)):
            if auc >= auc_t or (tpr_usable and tpr >= tpr_t):
                metric, value, threshold = ("auc", auc, auc_t) if auc >= auc_t else ("tpr_at_1pct_fpr", tpr, tpr_t)
                break
        else:
            level, metric, value, threshold = Severity.LOW, "auc", auc, config.auc_medium
        return [Finding(attack=self.name, title=f"Training-set membership can be inferred from the model's {used}", severity=level,
                        metric=metric, value=value, threshold=threshold,
                        detail=facts + f" Levels: high at AUC ≥ {config.auc_high:g} or TPR@1%FPR ≥ {config.tpr_high:g}; medium at "
                                       f"{config.auc_medium:g} or {config.tpr_medium:g}; low when only significant.")]


def _chosen_signal(signal: str, aucs: dict[str, Roc] | dict[str, float]) -> str:
    if signal != "best":
        return signal
    value = {s: (a.auc if isinstance(a, Roc) else float(a)) for s, a in aucs.items()}
    return max(SIGNALS, key=lambda s: value[s])
