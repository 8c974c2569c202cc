"""Optimising candidates and coefficients against the stationarity residual, with time budgets and restarts."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from auditor_kkt.config import KktConfig
from auditor_kkt.stationarity import Form, prior, residual, weighted_gradient

# A normalised residual above this counts as divergence even while finite: 1 means the candidates explain nothing,
# 1e6 that their weighted gradients are a thousand times the weights' norm (seen climbing to 1e287 without a guard).
DIVERGED_RESIDUAL = 1e6


@dataclass
class Target:
    """The network (surrogate ReLUs) in float32 and float64, with its parameters requiring grad, and the input box."""

    nets: dict[torch.dtype, nn.Module]
    lo: torch.Tensor
    hi: torch.Tensor
    num_classes: int

    @classmethod
    def build(cls, net: nn.Module, lo: torch.Tensor, hi: torch.Tensor, num_classes: int, device: torch.device) -> Target:
        import copy

        nets = {}
        for dtype in (torch.float32, torch.float64):
            twin = copy.deepcopy(net).to(device=device, dtype=dtype).eval()
            for p in twin.parameters():
                p.requires_grad_(True)
            nets[dtype] = twin
        return cls(nets, lo.to(device), hi.to(device), num_classes)

    def params(self, dtype: torch.dtype) -> list[torch.Tensor]:
        return [p for p in self.nets[dtype].parameters() if p.requires_grad]


@dataclass
class Candidates:
    """One run's state: candidates x (float64 master copy), coefficients, optimisers and history."""

    form: Form
    x: torch.Tensor
    coef: torch.Tensor          # lambda (margin) or log-lambda offsets (loss)
    y: torch.Tensor
    lam_scale: float
    opt_x: torch.optim.Optimizer
    opt_l: torch.optim.Optimizer
    steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    last_residual: float = math.inf
    lr_scale: float = 1.0       # halved each time a step diverges (divergence guard)
    diverged: int = 0           # how many times the guard restored the last finite state
    safe: tuple[torch.Tensor, torch.Tensor] | None = None

    def lam(self) -> torch.Tensor:
        return self.lam_scale * self.coef.exp() if self.form == "loss" else self.coef


def new_candidates(form: Form, y: torch.Tensor, shape: tuple[int, ...], num_classes: int, cfg: KktConfig, seed: int,
                   lam_scale: float, device: torch.device) -> Candidates:
    g = torch.Generator().manual_seed(seed)
    m = len(y)
    x = (torch.randn((m, *shape), generator=g, dtype=torch.float64) * cfg.init_scale).to(device).requires_grad_(True)
    if form == "loss":
        coef = torch.zeros(m, dtype=torch.float64)
    elif cfg.lambda_per_class:
        coef = torch.rand((m, num_classes), generator=g, dtype=torch.float64) / max(1, num_classes - 1)
    else:
        coef = torch.rand(m, generator=g, dtype=torch.float64)
    coef = coef.to(device).requires_grad_(True)
    opt_x = (torch.optim.Adam([x], lr=cfg.lr_x) if cfg.optimizer == "adam" else torch.optim.SGD([x], lr=cfg.lr_x, momentum=0.9))
    opt_l = torch.optim.SGD([coef], lr=cfg.lr_lambda, momentum=0.9)
    return Candidates(form, x, coef, y.to(device), lam_scale, opt_x, opt_l)


def step(c: Candidates, target: Target, cfg: KktConfig, dtype: torch.dtype, lr_factor: float, record: bool) -> float:
    """One optimisation step; returns the normalised residual (share of the weights unexplained)."""
    for opt, base in ((c.opt_x, cfg.lr_x), (c.opt_l, cfg.lr_lambda)):
        for group in opt.param_groups:
            group["lr"] = base * lr_factor * c.lr_scale
    net, params = target.nets[dtype], target.params(dtype)
    xs, lam = c.x.to(dtype), c.lam().to(dtype)
    res = residual(params, weighted_gradient(net, params, xs, c.y, lam, c.form))
    loss = res.loss(cfg.layer_normalised) + prior(xs, target.lo.to(dtype), target.hi.to(dtype), lam, cfg.lambda_min, c.form, c.y)
    # gradients for x and lambda only: the weights' own second derivatives are never needed
    gx, gl = torch.autograd.grad(loss, [c.x, c.coef])
    finite = bool(torch.isfinite(loss) and torch.isfinite(gx).all() and torch.isfinite(gl).all())
    if not finite or res.normalised > DIVERGED_RESIDUAL:
        _recover(c)
        return c.last_residual
    if c.steps % 20 == 0:
        c.safe = (c.x.detach().clone(), c.coef.detach().clone())
    c.x.grad, c.coef.grad = gx, gl
    c.opt_x.step()
    c.opt_l.step()
    c.steps += 1
    c.last_residual = res.normalised
    if record:
        c.history.append({"step": float(c.steps), "loss": float(loss.detach()), "residual": c.last_residual,
                          **{f"layer{i}": float(v.detach() / n) for i, (v, n) in enumerate(zip(res.per_layer, res.norms))}})
    return c.last_residual


def _recover(c: Candidates) -> None:
    """Divergence guard (a non-finite step, or a residual above ``DIVERGED_RESIDUAL``): back to the last saved state,
    optimiser momentum cleared, learning rates halved."""
    with torch.no_grad():
        if c.safe is not None:
            c.x.copy_(c.safe[0])
            c.coef.copy_(c.safe[1])
    for opt in (c.opt_x, c.opt_l):
        opt.state.clear()
    c.lr_scale *= 0.5
    c.diverged += 1
    c.steps += 1


def optimise(c: Candidates, target: Target, cfg: KktConfig, seconds: float, steps: int,
             check: Callable[[], None], lr_from: float = 0.0, lr_to: float = 1.0) -> None:
    """Run for ``seconds`` or ``steps``; the schedule covers the fraction [lr_from, lr_to] of the run's whole schedule."""
    start, n = time.monotonic(), 0
    while n < steps:
        frac = max((time.monotonic() - start) / seconds, n / steps)
        if frac >= 1:
            break
        check()
        pos = lr_from + (lr_to - lr_from) * frac
        factor = 1.0 if cfg.schedule == "constant" else cfg.final_lr + (1 - cfg.final_lr) * 0.5 * (1 + math.cos(math.pi * pos))
        float64 = cfg.float64 == "all" or (cfg.float64 == "final" and pos >= 1 - cfg.final_phase)
        step(c, target, cfg, torch.float64 if float64 else torch.float32, factor, record=c.steps % 50 == 0)
        n += 1


def run_stages(c: Candidates, stages: list[Target], cfg: KktConfig, seconds: float, steps: int, check: Callable[[], None],
               lr_from: float = 0.0) -> None:
    """One run through the alpha continuation: an equal share of ``seconds`` and ``steps`` at each stage's surrogate.

    A single stage is plain ``optimise`` over the schedule's [lr_from, 1]; several stages each get a whole schedule."""
    if len(stages) == 1:
        optimise(c, stages[0], cfg, seconds, steps, check, lr_from=lr_from)
        return
    for target in stages:
        optimise(c, target, cfg, seconds / len(stages), max(1, steps // len(stages)), check)


def relu_residual(plain: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, form: Form) -> float:
    """Normalised stationarity residual of candidates on the network with its own ReLUs (no surrogate)."""
    params = [p for p in plain.parameters() if p.requires_grad]
    with torch.enable_grad():
        grads = weighted_gradient(plain, params, x.detach().to(params[0].dtype), y, lam.detach().to(params[0].dtype), form,
                                  create_graph=False)
    return residual(params, grads).normalised


def explained_shares(target: Target, x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, form: Form,
                     plain: nn.Module) -> torch.Tensor:
    """Per candidate: sum_l <theta_l, G_il> / ||theta_l||^2 / L, with G_il its own term of the weighted gradient.

    Computed on the plain network (true ReLUs) with one double backward: with per-candidate weights u (all 1),
    d/du_i <grad_theta sum_i u_i f_i / m, t> = <grad_theta f_i / m, t> for t_l = theta_l / ||theta_l||^2.
    It touches only ``parameters()``, never module names (converted ONNX graphs name modules with '/').
    The shares of all candidates add up to the explained part of the weights.
    """
    from auditor_kkt.stationarity import combined_outputs

    params = list(plain.parameters())
    tangents = [p.detach() / p.detach().pow(2).sum().clamp_min(1e-30) for p in params]
    u = torch.ones(len(x), dtype=x.dtype, device=x.device, requires_grad=True)
    with torch.enable_grad():
        f = (u * combined_outputs(plain(x.detach()), y, lam.detach(), form)).sum() / len(x)
        grads = torch.autograd.grad(f, params, create_graph=True, allow_unused=True)
        dot = sum((g * t).sum() for g, t in zip(grads, tangents) if g is not None)
        (d,) = torch.autograd.grad(dot, u)
    return d.detach() / len(params)
