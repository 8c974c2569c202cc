"""The ``tldr`` attack: inversion, then reconstruction with hot conditioning and training-data priors."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from auditor import (
    Attack,
    AttackConfig,
    AttackOutput,
    AuditData,
    Capability,
    Classifier,
    Metric,
    RunContext,
    Table,
)
from auditor_inversion.engine import (
    InversionSettings,
    build_generator,
    class_grid_figure,
    class_statistics,
    sample,
    statistics_table,
    summary_metrics,
    train_generator,
)
from auditor_tldr.losses import (
    per_sample_gradient_norms,
    perturb,
    perturbed_losses,
    pixel_range_term,
    tv_term,
    weight_gradient_term,
)


class TldrConfig(AttackConfig, InversionSettings):
    inversion_seconds: float = Field(60.0, gt=0, description="Phase 1 (inversion, soft conditioning) time budget.")
    reconstruction_seconds: float = Field(90.0, gt=0, description="Phase 2 (reconstruction, one-hot conditioning) time budget.")
    inversion_steps: int = Field(2000, ge=1, description="Phase 1 step cap.")
    reconstruction_steps: int = Field(3000, ge=1, description="Phase 2 step cap.")
    kl_pert: float = Field(5.0, ge=0, description="α′: KL on perturbed images.")
    ce_pert: float = Field(10.0, ge=0, description="β′: cross-entropy on perturbed images.")
    tv: float = Field(8.0, ge=0, description="η₁: total variation (per-pixel mean; 8 measured best of 2, 8, 20 on MNIST).")
    pix: float = Field(1.0, ge=0, description="η₂: pixel-range penalty on the unclamped output.")
    grad: float = Field(10.0, ge=0, description="η₃: norm of the loss gradient with respect to the classifier's weights (10 measured best of 0, 2, 10, 30).")
    perturbation: float = Field(0.2, ge=0, le=1, description="Scale s of the sign perturbation, in pixel units.")
    grad_batch: int = Field(16, ge=1, description="Images per step used for the (expensive) weight-gradient term.")
    samples_per_class: int = Field(20, ge=2, description="Reconstructions per class.")
    soft_temperature: float = Field(1.0, gt=0, description="Temperature of phase 1's soft conditioning vectors (tldr was tuned with 1).")
    reconstruction_dropout: float | None = Field(None, ge=0, lt=1, description="Dropout rate in phase 2 (None: keep ``dropout``).")
    sample_latent_scale: float = Field(0.5, gt=0, le=1, description="Scale of z when sampling (below 1: truncation, fewer outliers).")
    candidates: int = Field(16, ge=1, le=256, description="Draw this many candidates per kept reconstruction and keep the best by ``select_by``.")
    select_by: Literal["grad", "robust"] = Field(
        "robust", description="Candidate ranking: lowest loss under perturbation, or smallest per-sample weight-gradient norm.")
    batch_size: int = Field(64, ge=2, description="Generator batch per step (smaller batches give more steps per second).")


POOL_BLOCK = 4096  # candidate images sampled and scored at a time


class TrainingLikeDataReconstruction(Attack):
    name = "tldr"
    summary = "Training-like data reconstruction: inversion, then hot-conditioned reconstruction with robustness, prior and weight-gradient terms."
    requires = frozenset({Capability.QUERY, Capability.GRADIENTS})
    zeroth_order = True
    Config = TldrConfig
    metrics = (
        Metric(name="hit_rate_mean", label="tldr hit rate (mean)", higher_is_better=False, format=".1%", compare=False),
        Metric(name="inversion_steps", higher_is_better=None, format="d", compare=False),
        Metric(name="reconstruction_steps", higher_is_better=None, format="d", compare=False),
        Metric(name="train_seconds", higher_is_better=None, format=".1f", compare=False),
    )

    @classmethod
    def demo_options(cls, budget_s: float) -> dict[str, float]:
        return {"inversion_seconds": budget_s * 2 / 3, "reconstruction_seconds": budget_s}

    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        cfg: TldrConfig = self.config  # type: ignore[assignment]
        torch.manual_seed(ctx.seed)
        net = model.module()
        notes: list[str] = []
        weight_grads = True  # gradients with respect to the model's weights can be computed
        if ctx.gradient_mode == "zeroth_order":
            weight_grads = False
            reason = "the model only answers queries, so gradients with respect to its weights are unavailable"
        elif not any(True for _ in net.parameters()):
            weight_grads = False
            reason = "the differentiable model exposes no parameters"
        use_grad = cfg.grad > 0 and weight_grads
        if cfg.grad > 0 and not weight_grads:
            notes.append(f"weight-gradient term dropped: {reason}")
        if cfg.candidates > 1 and cfg.select_by == "grad" and not weight_grads:
            notes.append(f"candidates ranked by robustness instead of weight-gradient norm: {reason}")
        generator = build_generator(model.num_classes, model.input_shape, cfg, output="clamp")
        rng = ctx.generator(offset=99)
        phase1 = train_generator(net, generator, cfg, ctx, steps=cfg.inversion_steps, time_budget_s=cfg.inversion_seconds,
                                 desc="tldr: inversion",
                                 extra_terms=lambda x, logits, y, p: {"pix": pixel_range_term(generator.raw)} if generator.raw is not None else {},
                                 weights={"kl": cfg.kl, "ce": cfg.ce, "cosine": cfg.cosine, "ortho": cfg.ortho, "pix": cfg.pix})

        def reconstruction_terms(x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> dict[str, torch.Tensor]:
            from auditor_inversion.engine import ce_term, kl_term

            terms: dict[str, torch.Tensor] = {}
            if cfg.kl_pert or cfg.ce_pert:
                logits_pert = net(perturb(x, cfg.perturbation, rng))
                terms["kl_pert"] = kl_term(logits_pert, p)
                terms["ce_pert"] = ce_term(logits_pert, y)
            terms["tv"] = tv_term(x)
            if generator.raw is not None:
                terms["pix"] = pixel_range_term(generator.raw)
            if use_grad:
                k = min(cfg.grad_batch, len(x))
                terms["grad"] = weight_gradient_term(net, x[:k], y[:k])
            return terms

        weights = {"kl": cfg.kl, "ce": cfg.ce, "cosine": cfg.cosine, "ortho": cfg.ortho, "kl_pert": cfg.kl_pert, "ce_pert": cfg.ce_pert,
                   "tv": cfg.tv, "pix": cfg.pix, "grad": cfg.grad if use_grad else 0.0}
        if cfg.reconstruction_dropout is not None:
            for m in generator.modules():
                if isinstance(m, torch.nn.Dropout2d):
                    m.p = cfg.reconstruction_dropout
        phase2 = train_generator(net, generator, cfg, ctx, hot=True, weights=weights, extra_terms=reconstruction_terms,
                                 steps=cfg.reconstruction_steps, time_budget_s=cfg.reconstruction_seconds, desc="tldr: reconstruction")
        n = cfg.samples_per_class if not ctx.smoke else 4
        images, labels, selection_note = self._sample_and_select(net, generator, model.num_classes, n, weight_grads, ctx)
        if selection_note:
            notes.append(selection_note)
        stats = class_statistics(model, images, labels, model.num_classes)
        last = phase2.history[-1] if phase2.history else {}
        metrics = {"inversion_steps": float(phase1.steps), "reconstruction_steps": float(phase2.steps),
                   "train_seconds": phase1.seconds + phase2.seconds, **summary_metrics(stats),
                   **{f"final_{k}": float(v) for k, v in last.items() if k != "step"}}
        table = statistics_table("Per-class reconstruction statistics", stats, data.class_names)
        loss_table = Table(title="Loss terms during reconstruction (every 50 steps)",
                           columns=list(phase2.history[0].keys()) if phase2.history else [],
                           rows=[[round(v, 4) for v in h.values()] for h in phase2.history[-10:]])
        figure = class_grid_figure("Reconstructions per class (one-hot conditioning)", images, labels, model.num_classes)
        return AttackOutput(reconstructions=images, labels=labels, metrics=metrics, figures=[figure], tables=[table, loss_table],
                            notes=notes + phase1.notes + phase2.notes)

    def _sample_and_select(self, net: torch.nn.Module, generator: torch.nn.Module, num_classes: int, per_class: int,
                           weight_grads: bool, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor, str]:
        """``per_class`` images for every class, each the best of ``candidates`` by the model's own score.

        Classes are handled in blocks of at most ``POOL_BLOCK`` candidates, so memory does not grow with the
        number of classes; the deadline is checked between blocks. Returns images, their labels, and a note.
        """
        cfg: TldrConfig = self.config  # type: ignore[assignment]
        k = cfg.candidates
        by = cfg.select_by if weight_grads else "robust"
        rng = ctx.generator(offset=7)
        block = max(1, POOL_BLOCK // (k * per_class))
        images, labels = [], []
        for first in ctx.progress(range(0, num_classes, block), desc="tldr: candidates", total=-(-num_classes // block)):
            wanted = torch.arange(first, min(num_classes, first + block)).repeat_interleave(per_class)
            pool_labels = wanted.repeat_interleave(k)
            pool = sample(generator, pool_labels, cfg, hot=True, seed=ctx.seed + 1 + first, device=ctx.device,
                          latent_scale=cfg.sample_latent_scale)
            if k == 1:
                images.append(pool)
                labels.append(pool_labels)
                continue
            score = self._candidate_scores(net, pool, pool_labels, by, rng, ctx.device)
            # the pool is grouped by class: row c holds class c's per_class * k candidates
            grouped = score.view(-1, per_class * k)
            keep = grouped.argsort(dim=1)[:, :per_class] + torch.arange(grouped.shape[0])[:, None] * per_class * k
            images.append(pool[keep.flatten()])
            labels.append(pool_labels[keep.flatten()])
        if k == 1:
            return torch.cat(images), torch.cat(labels), ""
        how = ("smallest per-sample weight-gradient norm" if by == "grad"
               else f"lowest mean cross-entropy under ±{cfg.perturbation} sign perturbations")
        return torch.cat(images), torch.cat(labels), f"each reconstruction is the best of {k} candidates by {how}"

    def _candidate_scores(self, net: torch.nn.Module, pool: torch.Tensor, pool_labels: torch.Tensor, by: str,
                          rng: torch.Generator, device: torch.device, chunk: int = 512) -> torch.Tensor:
        """Lower is more training-like: per-sample weight-gradient norm (``grad``) or perturbed cross-entropy (``robust``)."""
        scale = self.config.perturbation  # type: ignore[attr-defined]
        parts = []
        for i in range(0, len(pool), chunk):
            x, y = pool[i:i + chunk].to(device), pool_labels[i:i + chunk].to(device)
            parts.append(per_sample_gradient_norms(net, x, y) if by == "grad" else perturbed_losses(net, x, y, scale, generator=rng))
        return torch.cat(parts)

