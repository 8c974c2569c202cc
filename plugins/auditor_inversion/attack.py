"""The ``inversion`` attack: a conditioned generator learns the classifier's input space for every class."""
from __future__ import annotations

import torch
from pydantic import Field

from auditor import (
    Attack,
    AttackConfig,
    AttackOutput,
    AuditData,
    Capability,
    Classifier,
    Finding,
    Metric,
    RunContext,
    Severity,
)
from auditor_inversion.engine import (
    InversionSettings,
    build_generator,
    sample,
    train_generator,
)
from auditor_inversion.summaries import (
    class_grid_figure,
    class_statistics,
    statistics_table,
    summary_metrics,
)


class InversionConfig(AttackConfig, InversionSettings):
    samples_per_class: int = Field(20, ge=2, description="Samples generated per class for scoring and the report.")
    sample_hot: bool = Field(True, description="Sample with one-hot conditioning vectors (else soft vectors like training).")
    hit_rate_low: float = Field(0.95, ge=0, le=1, description="Below this per-class hit rate a class is reported as hard to invert.")


class NetworkInversion(Attack):
    name = "inversion"
    summary = "Conditioned-generator network inversion: learns inputs the model assigns to each class, without data."
    requires = frozenset({Capability.QUERY, Capability.GRADIENTS})
    zeroth_order = True
    Config = InversionConfig
    metrics = (
        Metric(name="hit_rate_mean", label="inversion hit rate (mean)", higher_is_better=False, format=".1%",
               description="Share of generated samples the model assigns to the conditioned class, averaged over classes."),
        Metric(name="hit_rate_min", label="inversion hit rate (worst class)", higher_is_better=False, format=".1%", compare=False),
        Metric(name="confidence_mean", higher_is_better=None, compare=False),
        Metric(name="diversity_ssim_mean", higher_is_better=None, compare=False),
        Metric(name="steps", higher_is_better=None, format="d", compare=False),
        Metric(name="train_seconds", higher_is_better=None, format=".1f", compare=False),
        Metric(name="generator_parameters", higher_is_better=None, format="d", compare=False),
    )

    @classmethod
    def demo_options(cls, budget_s: float) -> dict[str, float]:
        return {"train_seconds": budget_s}

    def run(self, model: Classifier, data: AuditData, ctx: RunContext) -> AttackOutput:
        cfg: InversionConfig = self.config  # type: ignore[assignment]
        torch.manual_seed(ctx.seed)
        net = model.module()
        generator = build_generator(model.num_classes, model.input_shape, cfg)
        if ctx.gradient_mode == "zeroth_order":
            cfg = cfg.model_copy(update={"batch_size": min(cfg.batch_size, 4 * model.num_classes)})
        train_log = train_generator(net, generator, cfg, ctx)
        n = cfg.samples_per_class if not ctx.smoke else 4
        labels = torch.arange(model.num_classes).repeat_interleave(n)
        images = sample(generator, labels, cfg, hot=cfg.sample_hot, seed=ctx.seed + 1, device=ctx.device)
        stats = class_statistics(model, images, labels, model.num_classes)
        hit = [s["hit_rate"] for s in stats]
        metrics = {"steps": float(train_log.steps), "train_seconds": train_log.seconds, **summary_metrics(stats),
                   "generator_parameters": float(sum(p.numel() for p in generator.parameters()))}
        table = statistics_table("Per-class inversion statistics", stats, data.class_names,
                                 caption=f"Dropout {'on' if cfg.sample_dropout else 'off'} while sampling; "
                                         f"{'one-hot' if cfg.sample_hot else 'soft'}-vector conditioning.")
        figure = class_grid_figure("Generated samples per class", images, labels, model.num_classes)
        findings = []
        hard = [s["class"] for s in stats if s["hit_rate"] < cfg.hit_rate_low]
        findings.append(Finding(attack=self.name, severity=Severity.INFO, metric="hit_rate_min", value=min(hit), threshold=cfg.hit_rate_low,
                                title="The model can be inverted class by class" if not hard else f"{len(hard)} class(es) resisted inversion",
                                detail=f"Mean hit rate {metrics['hit_rate_mean']:.1%} after {train_log.steps} steps ({train_log.seconds:.0f} s)"
                                       + (f"; below {cfg.hit_rate_low:.0%}: classes {hard}" if hard else "") + "."))
        return AttackOutput(reconstructions=images, labels=labels, metrics=metrics, findings=findings, figures=[figure],
                            tables=[table], notes=train_log.notes)

