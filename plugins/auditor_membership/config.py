"""Options of the ``membership`` attack (``[attacks.membership]``, ``--set membership.KEY=VALUE``, ``audit schema membership``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from auditor import AttackConfig

Primary = Literal["auto", "loss", "confidence", "modified_entropy", "scaled_logit", "rmia", "lira"]


class MembershipConfig(AttackConfig):
    """Sizes, the pre-declared primary score, RMIA's constants, the severity rules and the optional reference models."""

    max_members: int = Field(5000, ge=10, description="Members scored at most (a seeded random subset; smoke: 200).")
    max_reference: int = Field(10000, ge=20, description="Reference (non-member) images used at most (smoke: 400).")
    calibration_fraction: float = Field(0.5, gt=0.0, lt=1.0, description=(
        "Share of each class of the reference set that sets thresholds and serves as RMIA's population; the rest is "
        "held out to measure FPR and AUC."))
    per_class_thresholds: bool = Field(True, description="Thresholds per class (falls back to one global threshold when a class is too small).")
    primary: Primary = Field("auto", description=(
        "Score behind the findings, declared before looking at results. auto: rmia with offline reference models, lira with "
        "online ones, scaled_logit (LiRA's statistic) without them."))
    rmia_gamma: float = Field(1.0, ge=1.0, description="RMIA's γ: x dominates z when LR(x, z) > γ.")
    rmia_a: float = Field(0.3, ge=0.0, lt=1.0, description="RMIA's offline constant a in Pr(x) = ((1+a)·Pr_OUT(x) + 1 - a)/2.")
    bootstrap_rounds: int = Field(500, ge=0, description="Bootstrap resamples for the AUC and balanced-accuracy intervals (smoke: 50).")
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0, description="Two-sided level of every confidence interval.")
    batch_size: int = Field(256, ge=1, description="Images per query.")
    exposed_members: int = Field(20, ge=0, description="How many of the most exposed members the (private) figure shows.")
    severity_fprs: tuple[Literal[0.01, 0.001], ...] = Field((0.01, 0.001), min_length=1, description=(
        "FPRs at which the severity rules read the TPR (each where the reference set supports it; the highest level wins)."))
    high_ratio: float = Field(10.0, gt=1.0, description="High when the TPR's lower confidence bound exceeds this many times the FPR.")
    medium_ratio: float = Field(3.0, gt=1.0, description="Medium when the TPR's lower confidence bound exceeds this many times the FPR.")
    auc_high: float = Field(0.80, gt=0.5, le=1.0, description="High when the AUC's lower confidence bound reaches this.")
    auc_medium: float = Field(0.65, gt=0.5, le=1.0, description="Medium when the AUC's lower confidence bound reaches this.")
    reference_models: int = Field(0, ge=0, description=(
        "Reference models to train on the calibration non-members (0: none; online: shadow models on the whole pool, see "
        "reference_mode). Even: each pair is trained on complementary halves so every population sample has OUT models. "
        "The architecture: reference_factory."))
    reference_mode: Literal["offline", "online"] = Field("offline", description=(
        "offline: reference models train on the calibration non-members only (members and held-out non-members are OUT "
        "for all). online (LiRA's online attack): shadow models train on random halves of the pool of every scored "
        "image (members, calibration and held-out non-members alike), so each is IN for half of them; the score is "
        "online LiRA's likelihood ratio. Shadow models then train on half the pool each: size the pool (max_members, "
        "max_reference) to about twice the target's training set."))
    lira_variance: Literal["auto", "global", "per_example"] = Field("auto", description=(
        "Online LiRA's Gaussian spreads: one shared per side (global), each example's own (per_example), or auto: per "
        "example once every example has at least 32 IN and 32 OUT shadow models, global below that (as the paper)."))
    query_augmentations: Literal["none", "shifts"] = Field("none", description=(
        "Online LiRA's queries per image: none (the image only) or shifts (the image and its 8 translations by query_shift "
        "pixels, zero padding; LiRA's augmented queries: target and shadows queried alike, one IN/OUT fit per query, log "
        "likelihood ratios summed). Label-preserving for digits (no flips). Online mode only."))
    query_shift: int = Field(1, ge=1, le=4, description="Pixels per shift of query_augmentations = shifts.")
    reference_factory: str | None = Field("clone", description=(
        "'clone' (the target's own architecture, every parameter re-initialised: torch and converted ONNX models), or "
        "module:function returning an untrained torch.nn.Module for (image_shape, num_classes); it receives the "
        "target model's preprocessing in front. A module:function runs your code: use only code you trust."))
    reference_train_size: int | None = Field(None, ge=2, description=(
        "Images per reference model (default: half the calibration set); set it to the target's training-set size."))
    reference_epochs: int = Field(50, ge=1, description="Most epochs of Adam per reference model.")
    reference_fit: Literal["match", "epochs"] = Field("match", description=(
        "match: each reference model trains until its mean loss on its own training images is at most the target's mean "
        "loss on the members (the target's degree of fit, which LiRA's shadow models should imitate), or reference_epochs; "
        "epochs: always reference_epochs."))
    reference_weight_decay: float = Field(0.0, ge=0.0, description="Adam weight decay of the reference models.")
    reference_lr: float = Field(1e-3, gt=0, description="Learning rate of the reference models.")
    reference_batch_size: int = Field(64, ge=2, description="Batch size of the reference models.")
    reference_time_budget_s: float = Field(600.0, gt=0, description="Wall-clock budget for training all reference models.")

    @model_validator(mode="before")
    @classmethod
    def _legacy_severity_fpr(cls, data: object) -> object:
        """``severity_fpr = 0.01`` (one FPR, before 0.1% was read too) means ``severity_fprs = [0.01]``."""
        if isinstance(data, dict) and "severity_fpr" in data:
            data = dict(data)
            data.setdefault("severity_fprs", (data.pop("severity_fpr"),))
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MembershipConfig:
        if self.high_ratio < self.medium_ratio or self.auc_high < self.auc_medium:
            raise ValueError(f"high thresholds must be at least the medium ones (ratio {self.medium_ratio}/{self.high_ratio}, "
                             f"auc {self.auc_medium}/{self.auc_high})")
        if self.reference_models and (self.reference_models % 2 or not self.reference_factory):
            raise ValueError(f"reference_models must be even and come with a reference_factory, got {self.reference_models} "
                             f"and {self.reference_factory!r}")
        if self.reference_mode == "online" and not self.reference_models:
            raise ValueError("reference_mode 'online' needs shadow models: set reference_models (even, at least 2)")
        if self.reference_mode == "online" and self.reference_train_size is not None:
            raise ValueError(f"reference_mode 'online' trains each shadow model on half the pool of scored images; "
                             f"reference_train_size must be unset, got {self.reference_train_size} (size the pool with "
                             "max_members and max_reference instead)")
        if self.query_augmentations != "none" and self.reference_mode != "online":
            raise ValueError(f"query_augmentations {self.query_augmentations!r} applies to online LiRA only; set "
                             f"reference_mode = 'online' (got {self.reference_mode!r}) or query_augmentations = 'none'")
        return self
