"""The inversion training loop and sampling, reused by ``tldr`` and ``shortcut``: this plugin's public module.

Plugins that build on inversion import from here only (``from auditor_inversion.engine import ...``): the
training loop, sampling, the loss terms and the per-class summaries; the other modules may change.

``train_generator`` fits a :class:`ConditionedGenerator` so that a frozen classifier assigns its
samples to the conditioned class, with the named loss terms of :mod:`auditor_inversion.losses`.
Extra terms (tldr's robustness, priors and weight gradient) plug in through ``extra_terms``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from auditor import RunContext
from auditor_inversion.conditioning import Conditioning, one_hot, soft_vectors
from auditor_inversion.features import tap_features
from auditor_inversion.generator import ConditionedGenerator
from auditor_inversion.losses import (
    WeightedLoss,
    ce_term,
    cosine_term,
    kl_term,
    ortho_term,
)
from auditor_inversion.summaries import class_grid_figure, class_statistics, statistics_table, summary_metrics

__all__ = ["InversionSettings", "TrainLog", "build_generator", "ce_term", "class_grid_figure", "class_statistics", "cosine_term",
           "kl_term", "ortho_term", "sample", "statistics_table", "summary_metrics", "train_generator"]

log = logging.getLogger(__name__)


class InversionSettings(BaseModel):
    """Generator, loss and optimisation settings shared by the inversion-based attacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    conditioning: Conditioning = Field("vector_matrix", description="label, vector (soft), matrix (hot matrix), or vector_matrix.")
    latent_dim: int = Field(64, ge=1, description="Size of the Gaussian latent z.")
    width: int = Field(16, ge=4, description="Generator width (channels of the last up-block; the first map has 4×).")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout2d rate in the up-convolution blocks.")
    sample_dropout: bool = Field(True, description="Keep dropout on when sampling (prevents mode collapse).")
    kl: float = Field(5.0, ge=0, description="Weight of KL(P‖Q) between conditioning vector and classifier output.")
    ce: float = Field(10.0, ge=0, description="Weight of cross-entropy to the conditioned label.")
    cosine: float = Field(10.0, ge=0, description="Weight of mean pairwise feature cosine similarity.")
    ortho: float = Field(7.0, ge=0, description="Weight of the Gram-matrix orthogonality penalty.")
    cosine_within_class: bool = Field(True, description="Cosine term over same-class pairs only (else over the whole batch).")
    feature_layer: str | None = Field(None, description="Layer whose input are the features (default: the last linear layer).")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    batch_size: int = Field(128, ge=2, description="Generator batch per step (spread over the classes).")
    steps: int = Field(3000, ge=1, description="Maximum optimisation steps.")
    train_seconds: float | None = Field(120.0, gt=0, description="Stop training after this many seconds.")
    soft_temperature: float = Field(
        0.3, gt=0, description="Temperature of the soft conditioning vectors (lower: peakier vectors; 0.3 measured best of 1, 0.5, 0.3).")


@dataclass
class TrainLog:
    steps: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


ExtraTerms = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def build_generator(num_classes: int, image_shape: tuple[int, int, int], settings: InversionSettings,
                    output: str = "sigmoid") -> ConditionedGenerator:
    return ConditionedGenerator(num_classes, image_shape, latent_dim=settings.latent_dim, conditioning=settings.conditioning,
                                width=settings.width, dropout=settings.dropout, output=output)


def balanced_labels(n: int, num_classes: int, device: torch.device | None = None) -> torch.Tensor:
    return (torch.arange(n, device=device) % num_classes).long()


def train_generator(net: nn.Module, generator: ConditionedGenerator, settings: InversionSettings, ctx: RunContext, *,
                    hot: bool = False, weights: dict[str, float] | None = None, extra_terms: ExtraTerms | None = None,
                    steps: int | None = None, time_budget_s: float | None = None, desc: str = "inversion") -> TrainLog:
    """Fit ``generator`` against the frozen ``net`` (pixels -> logits). ``hot`` uses one-hot conditioning."""
    device = ctx.device
    num_classes = generator.num_classes
    net.eval()
    generator.to(device).train()
    weights = weights or {"kl": settings.kl, "ce": settings.ce, "cosine": settings.cosine, "ortho": settings.ortho}
    loss = WeightedLoss(weights)
    optimiser = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    rng = ctx.generator(offset=17)
    steps = steps if steps is not None else settings.steps
    budget = time_budget_s if time_budget_s is not None else settings.train_seconds
    if ctx.smoke:
        steps = min(steps, 5)
    log_ = TrainLog()
    start = time.monotonic()
    with tap_features(net, settings.feature_layer) as tap:
        if tap is None and (loss.enabled("cosine") or loss.enabled("ortho")):
            log_.notes.append("no penultimate features available (no linear layer or query-only model): cosine and ortho terms dropped")
            loss = WeightedLoss({**weights, "cosine": 0.0, "ortho": 0.0})
        for step in ctx.progress(range(steps), desc=desc, total=steps):
            if budget is not None and time.monotonic() - start > budget:
                break
            labels = balanced_labels(settings.batch_size, num_classes)[torch.randperm(settings.batch_size, generator=rng)]
            target = one_hot(labels, num_classes) if hot else soft_vectors(labels, num_classes, rng, settings.soft_temperature)
            z = torch.randn((settings.batch_size, settings.latent_dim), generator=rng)
            labels, target, z = labels.to(device), target.to(device), z.to(device)
            images = generator(z, target, labels)
            logits = net(images)
            terms: dict[str, torch.Tensor] = {}
            if loss.enabled("kl"):
                terms["kl"] = kl_term(logits, target)
            if loss.enabled("ce"):
                terms["ce"] = ce_term(logits, labels)
            features = tap.value if tap is not None else None
            if features is not None and loss.enabled("cosine"):
                terms["cosine"] = cosine_term(features, labels if settings.cosine_within_class else None)
            if features is not None and loss.enabled("ortho"):
                terms["ortho"] = ortho_term(features)
            if extra_terms is not None:
                terms.update(extra_terms(images, logits, labels, target))
            total = loss.combine(terms)
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            log_.steps = step + 1
            if step % 50 == 0:
                hit = float((logits.argmax(1) == labels).float().mean())
                log_.history.append({"step": step, "loss": total.item(), "hit_rate": hit, **{k: v.item() for k, v in terms.items()}})
    log_.seconds = time.monotonic() - start
    generator.eval()
    return log_


@torch.no_grad()
def sample(generator: ConditionedGenerator, labels: torch.Tensor, settings: InversionSettings, *, hot: bool = True,
           seed: int = 0, device: torch.device | None = None, latent_scale: float = 1.0, chunk: int = 512) -> torch.Tensor:
    """Images for ``labels`` (on the CPU); dropout stays on when ``settings.sample_dropout`` (batch norm uses running stats).

    ``latent_scale`` < 1 draws z from a narrower Gaussian (the "truncation" trade of fidelity for diversity).
    The generator runs on ``chunk`` images at a time, so memory does not grow with ``len(labels)``.
    """
    rng = torch.Generator().manual_seed(seed)
    device = device or next(generator.parameters()).device
    generator.eval()
    if settings.sample_dropout:
        for m in generator.modules():
            if isinstance(m, nn.Dropout2d):
                m.train()
    target = one_hot(labels, generator.num_classes) if hot else soft_vectors(labels, generator.num_classes, rng, settings.soft_temperature)
    z = latent_scale * torch.randn((len(labels), settings.latent_dim), generator=rng)
    torch.manual_seed(seed)
    parts = [generator(z[i:i + chunk].to(device), target[i:i + chunk].to(device), labels[i:i + chunk].to(device)).cpu()
             for i in range(0, len(labels), chunk)]
    generator.eval()
    return torch.cat(parts) if parts else torch.empty((0, *generator.image_shape))
