"""The tldr-only loss terms; KL, CE, cosine and orthogonality come from ``auditor_inversion``.

* perturbed KL / CE: the same losses on x̃ = clamp(x + s·sign(ε), 0, 1), ε ~ N(0, I), s in pixel units
  (training data is robust to perturbation);
* ``tv``: mean over images and pixels of (x[h+1,w] − x[h,w])² + (x[h,w+1] − x[h,w])², total variation
  (a per-pixel mean, so its weight does not depend on the image size);
* ``pix``: mean of relu(x − u) + relu(l − x) over the valid range [l, u] (on the generator's unclamped output);
* ``grad``: ‖∇_θ CE(f_θ(x), y)‖₂, the norm of the loss gradient with respect to the classifier's weights,
  differentiable in x (``create_graph=True``); training data sits where it is small.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def perturb(images: torch.Tensor, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=generator).to(images.device).sign()
    return (images + scale * noise).clamp(0.0, 1.0)


def tv_term(images: torch.Tensor) -> torch.Tensor:
    dh = images[:, :, 1:, :] - images[:, :, :-1, :]
    dw = images[:, :, :, 1:] - images[:, :, :, :-1]
    return (dh ** 2).mean() + (dw ** 2).mean()


def pixel_range_term(raw: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return (F.relu(raw - high) + F.relu(low - raw)).mean()


@contextmanager
def _weights_requiring_grad(net: nn.Module, purpose: str) -> Iterator[list[torch.Tensor]]:
    """The floating-point parameters of ``net`` with ``requires_grad`` on; the previous flags are restored on exit."""
    params = [p for p in net.parameters() if p.is_floating_point()]
    if not params:
        raise ValueError(f"the classifier exposes no parameters for {purpose}")
    previous = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    try:
        yield params
    finally:
        for p, flag in zip(params, previous):
            p.requires_grad_(flag)


def weight_gradient_term(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """‖∇_θ CE(net(images), labels)‖₂ over the parameters of ``net``, differentiable with respect to ``images``.

    Runs attention with the math kernel: fused scaled-dot-product kernels have no double backward.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with _weights_requiring_grad(net, "the weight-gradient term") as params, sdpa_kernel([SDPBackend.MATH]):
        loss = F.cross_entropy(net(images), labels)
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    squares = [(g ** 2).sum() for g in grads if g is not None]
    return torch.sqrt(torch.stack(squares).sum() + 1e-12)


def per_sample_gradient_norms(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """‖∇_θ CE(f_θ(x_i), y_i)‖₂ for each image separately (no graph kept): the selection score of tldr's candidates."""
    norms = []
    with _weights_requiring_grad(net, "per-sample gradient norms") as params, torch.enable_grad():
        for x, y in zip(images, labels):
            logits = net(x[None])
            loss = F.cross_entropy(logits, y[None].to(logits.device))
            grads = [g for g in torch.autograd.grad(loss, params, allow_unused=True) if g is not None]
            if not grads:
                raise ValueError("the classifier's loss does not depend on any of its parameters")
            norms.append(torch.sqrt(torch.stack([(g.detach() ** 2).sum() for g in grads]).sum()))
    return torch.stack(norms).cpu()


@torch.no_grad()
def perturbed_losses(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, scale: float, repeats: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean cross-entropy of each image under ``repeats`` sign perturbations of size ``scale`` (lower: more robust)."""
    total = torch.zeros(len(images))
    for _ in range(repeats):
        logits = net(perturb(images, scale, generator))
        total += F.cross_entropy(logits, labels.to(logits.device), reduction="none").cpu()
    return total / repeats
