"""The ``inversion`` attack: a conditioned generator learns the classifier's input space for every class."""
from __future__ import annotations

import torch
from pydantic import Field

from auditor.attack import Attack, AttackConfig, AttackOutput, Capability, RunContext
from auditor.data import AuditData
from auditor.images import make_grid, png_base64, auto_scale
from auditor.model import Classifier
from auditor.results import AttackResult, Figure, Finding, Severity, Table
from auditor.severity import reconstruction_findings
from auditor_inversion.engine import InversionSettings, build_generator, sample, train_generator
from auditor_inversion.features import tap_features


class InversionConfig(AttackConfig, InversionSettings):
    samples_per_class: int = Field(20, ge=2, description="Samples generated per class for scoring and the report.")
    sample_hot: bool = Field(True, description="Sample with one-hot conditioning vectors (else soft vectors like training).")
    hit_rate_low: float = Field(0.95, ge=0, le=1, description="Below this per-class hit rate a class is reported as hard to invert.")


def class_statistics(model: Classifier, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[dict[str, float]]:
    """Per class: hit rate, mean confidence, diversity (mean pairwise SSIM, feature cosine)."""
    from auditor.scoring import ssim_matrix

    logits = model.logits(images)
    probs = logits.softmax(1)
    features = None
    try:
        net = model.module()
        device = next((b.device for b in net.buffers()), torch.device("cpu"))
        with tap_features(net) as tap, torch.no_grad():
            net(images.to(device))
            features = tap.value.cpu() if tap is not None and tap.value is not None else None
    except Exception:  # noqa: BLE001 - query-only models have no features
        features = None
    stats = []
    for k in range(num_classes):
        mask = labels == k
        if not mask.any():
            continue
        x = images[mask]
        sims = ssim_matrix(x, x) if min(x.shape[-2:]) >= 11 else None
        n = len(x)
        off = ~torch.eye(n, dtype=torch.bool)
        row = {"class": k, "n": n, "hit_rate": float((probs[mask].argmax(1) == k).float().mean()),
               "confidence": float(probs[mask, k].mean()),
               "diversity_ssim": float(sims[off].mean()) if sims is not None and n > 1 else float("nan")}
        if features is not None and n > 1:
            f = torch.nn.functional.normalize(features[mask], dim=1)
            row["feature_cosine"] = float((f @ f.T)[off].mean())
        stats.append(row)
    return stats


def summary_metrics(stats: list[dict[str, float]]) -> dict[str, float]:
    """Mean and minimum hit rate, mean confidence and mean diversity over the classes of ``class_statistics``."""
    hit = [s["hit_rate"] for s in stats]
    return {"hit_rate_mean": sum(hit) / len(hit), "hit_rate_min": min(hit),
            "confidence_mean": sum(s["confidence"] for s in stats) / len(stats),
            "diversity_ssim_mean": sum(s["diversity_ssim"] for s in stats) / len(stats)}


def statistics_table(title: str, stats: list[dict[str, float]], class_names: tuple[str, ...], caption: str = "") -> Table:
    """One row per class: samples, hit rate, confidence, diversity (mean pairwise SSIM) and feature cosine."""
    return Table(title=title, columns=["class", "samples", "hit rate", "confidence", "diversity (mean pairwise SSIM)", "feature cosine"],
                 rows=[[f"{s['class']} ({class_names[s['class']]})", s["n"], round(s["hit_rate"], 3), round(s["confidence"], 3),
                        round(s["diversity_ssim"], 3), round(s.get("feature_cosine", float("nan")), 3)] for s in stats],
                 caption=caption)


def class_grid_figure(title: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int, per_row: int = 10) -> Figure:
    rows = []
    for k in range(num_classes):
        x = images[labels == k][:per_row]
        if len(x) < per_row:
            x = torch.cat([x, torch.ones((per_row - len(x), *images.shape[1:]))])
        rows.append(x)
    grid = make_grid(torch.cat(rows), ncol=per_row, scale=auto_scale(images.shape[-1]))
    return Figure(title=title, png_base64=png_base64(grid), caption="One row per class (class 0 at the top).")


class NetworkInversion(Attack):
    name = "inversion"
    summary = "Conditioned-generator network inversion: learns inputs the model assigns to each class, without data."
    requires = frozenset({Capability.QUERY, Capability.GRADIENTS})
    zeroth_order = True
    Config = InversionConfig

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

    def assess(self, result: AttackResult) -> list[Finding]:
        return reconstruction_findings(self.name, result)
